"""The suffix array and its vectorised searches: the only code that touches token positions.

The text is every contribution's tokens, each followed by the separator (the largest value of the token dtype,
above every token id of the tokenizer), so that no match runs from one contribution into the next. The suffix
array lists the start of every non-separator suffix in lexicographic order of token ids.

Searches run all their rows (say, every start position of an output) at once: a binary search step is a handful of
numpy operations over every row, so a 256-token output costs about ``log2(tokens)`` steps, not 256 times that in
Python. Three things keep the steps few and cheap: each search starts inside the block of suffixes that begin with
the row's first token (blocks come from token counts); a comparison skips the prefix that the row shares with both
ends of its interval (Manber and Myers' "simple accelerant"); and the suffixes that start with a found span are
delimited by galloping outward from one of them, a few steps for a span that occurs a few times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pydivsufsort  # type: ignore[import-untyped]  # ships neither types nor py.typed

__all__ = ["SuffixIndex", "build_suffix_array"]

Int64s = npt.NDArray[np.int64]
Tokens = npt.NDArray[np.unsignedinteger]
Suffixes = npt.NDArray[np.signedinteger]
# Tokens compared per round: most comparisons differ within the first few tokens past the known prefix; a row that
# did not is likely inside a long match, so its later rounds read further at once.
_FIRST_CHUNK, _LATER_CHUNK = 8, 64
# Terminators after a pattern: below every token (a search then ends at the first suffix that starts with the
# pattern) or above every token and the separator (it ends just past the last suffix that starts with it).
_BELOW, _ABOVE = -1, 2**40


def build_suffix_array(tokens: Tokens, separator: int) -> Suffixes:
    """The sorted starts of the non-separator suffixes of ``tokens``: int32 below 2**31 tokens, else int64.

    libdivsufsort sorts bytes; pydivsufsort sorts a wider dtype through its big-endian bytes and keeps the suffixes
    that start on a token boundary, which orders them exactly as the token ids do.
    """
    suffixes = pydivsufsort.divsufsort(tokens)
    kept: Suffixes = suffixes[tokens[suffixes] != separator]
    return kept.astype(np.int64 if len(tokens) >= 2**31 else np.int32, copy=False)


@dataclass(frozen=True)
class SuffixIndex:
    """Token text, its suffix array, and where each first token's block of suffixes starts.

    Attributes:
        tokens: the text, every contribution followed by the separator (so the text ends with one).
        suffixes: the sorted non-separator suffix starts.
        blocks: ``blocks[t]`` is the suffix array index of the first suffix that starts with token ``t``;
            ``blocks[vocab_size] == len(suffixes)``.
    """

    tokens: Tokens
    suffixes: Suffixes
    blocks: Int64s

    @classmethod
    def from_arrays(cls, tokens: Tokens, suffixes: Suffixes, vocab_size: int) -> SuffixIndex:
        counts = np.bincount(tokens, minlength=vocab_size + 1)[:vocab_size]  # the separator is >= vocab_size
        blocks = np.zeros(vocab_size + 1, dtype=np.int64)
        np.cumsum(counts, out=blocks[1:])
        return cls(tokens, suffixes, blocks)

    def match_lengths(self, query: Int64s) -> tuple[Int64s, Int64s]:
        """For each position ``i`` of ``query`` (token ids below the vocabulary size): the length of the longest
        prefix of ``query[i:]`` in the text, and the suffix array index of a suffix that starts with that prefix
        (meaningless where the length is 0).

        That prefix is shared with one of the two suffixes around the place where ``query[i:]`` would sort in, and
        the binary search compares against both of them last, so their common prefix lengths come out of it.
        """
        rows = len(query)
        padded = np.concatenate([query, np.full(rows + 1, _BELOW, dtype=np.int64)])
        patterns = np.lib.stride_tricks.sliding_window_view(padded, rows + 1)[:rows]  # row i: query[i:] + padding
        first, end = self.blocks[query], self.blocks[query + 1]
        # The suffixes just outside a block start with another token: their common prefix with the row's is 0.
        zeros = np.zeros(rows, dtype=np.int64)
        below, lcp_below, above, lcp_above = self._search(patterns, first - 1, end, zeros, zeros.copy())
        longer_above = lcp_above >= lcp_below
        return np.where(longer_above, lcp_above, lcp_below), np.where(longer_above, above, below)

    def occurrences(
        self, query: Int64s, starts: Int64s, lengths: Int64s, hits: Int64s, *, most: int
    ) -> tuple[Int64s, Int64s]:
        """The suffix array ranges ``[first, last)`` of the suffixes that start with each
        ``query[start:start+length]``, for the spans that occur at most ``most`` times; ``first == last == -1`` for
        the others (the search stops as soon as it has seen more).

        Args:
            hits: for each span, the suffix array index of one suffix that starts with it (from
                :meth:`match_lengths`).
        """
        rows = len(starts)
        direction = np.repeat(np.array([-1, 1], dtype=np.int64), rows)  # lower bounds, then upper bounds
        patterns = np.empty((2 * rows, int(lengths.max(initial=0)) + 1), dtype=np.int64)
        patterns[:rows], patterns[rows:] = _BELOW, _ABOVE
        for row, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
            patterns[row, :length] = patterns[rows + row, :length] = query[start : start + length]
        lengths2 = np.tile(lengths, 2)
        first, end = self.blocks[patterns[:, 0]], self.blocks[patterns[:, 0] + 1]
        edge = np.where(direction < 0, first - 1, end)  # the first index outside the span's first-token block
        origin = np.tile(hits, 2)
        inside = origin.copy()  # the farthest suffix known to start with the span, in the row's direction
        outside = edge.copy()
        step = np.ones(2 * rows, dtype=np.int64)
        active = np.arange(2 * rows)
        while active.size:  # gallop: probe 1, 2, 4, ... suffixes away until one does not start with the span
            probe = inside[active] + direction[active] * step[active]
            beyond = (probe - edge[active]) * direction[active] >= 0
            _, lcp = self._compare(
                patterns, active, np.where(beyond, inside[active], probe), np.zeros(active.size, dtype=np.int64)
            )
            found = ~beyond & (lcp >= lengths2[active])
            inside[active[found]] = probe[found]
            outside[active[~found & ~beyond]] = probe[~found & ~beyond]
            step[active] *= 2
            active = active[found & (np.abs(inside[active] - origin[active]) < most)]  # past `most`: common
        # Binary searches between the farthest suffix that starts with the span and the first probe that did not.
        zeros = np.zeros(2 * rows, dtype=np.int64)
        lower = direction < 0
        _, _, bounds, _ = self._search(
            patterns,
            np.where(lower, outside, inside),
            np.where(lower, inside, outside),
            np.where(lower, zeros, lengths2),
            np.where(lower, lengths2, zeros),
        )
        first_found, last_found = bounds[:rows], bounds[rows:]
        common = last_found - first_found > most
        return np.where(common, -1, first_found), np.where(common, -1, last_found)

    def _search(
        self, patterns: Int64s, below: Int64s, above: Int64s, lcp_below: Int64s, lcp_above: Int64s
    ) -> tuple[Int64s, Int64s, Int64s, Int64s]:
        """Binary searches, one per row of ``patterns``, for where the row would sort among the suffixes strictly
        between ``below`` and ``above``, whose common prefixes with the row are at least ``lcp_below`` and
        ``lcp_above``.

        Returns ``(below, lcp_below, above, lcp_above)`` narrowed to neighbours (``above`` is the insertion point),
        with the row's exact common prefix lengths with those two suffixes where the search compared them.
        """
        active = np.arange(len(patterns))
        while True:
            active = active[above[active] - below[active] > 1]
            if not active.size:
                return below, lcp_below, above, lcp_above
            middle = (below[active] + above[active]) // 2
            known = np.minimum(lcp_below[active], lcp_above[active])  # shared by every suffix between the two ends
            greater, lcp = self._compare(patterns, active, middle, known)
            up, down = active[greater], active[~greater]
            below[up], lcp_below[up] = middle[greater], lcp[greater]
            above[down], lcp_above[down] = middle[~greater], lcp[~greater]

    def _compare(
        self, patterns: Int64s, rows: Int64s, indexes: Int64s, known: Int64s
    ) -> tuple[npt.NDArray[np.bool_], Int64s]:
        """Whether each pattern of ``rows`` sorts after the suffix at suffix array index ``indexes``, and their
        common prefix length, comparing from ``known`` (a prefix they are known to share) on.

        Every pattern row ends with (and is padded by) a terminator that no token equals, and the text's final
        separator differs from every pattern token, so each comparison ends within the row; reads past the text's
        end are clamped onto that final separator and only ever serve rows already decided.
        """
        positions = self.suffixes[indexes].astype(np.int64)
        lcp = known.copy()
        greater = np.zeros(len(rows), dtype=bool)
        pending = np.arange(len(rows))
        chunk = _FIRST_CHUNK
        last_token, last_column = len(self.tokens) - 1, patterns.shape[1] - 1
        while pending.size:
            at = lcp[pending, None] + np.arange(chunk, dtype=np.int64)
            text = self.tokens[np.minimum(positions[pending, None] + at, last_token)]
            pattern = patterns[rows[pending, None], np.minimum(at, last_column)]
            differ = text != pattern
            decided = differ.any(axis=1)
            where = np.flatnonzero(decided)
            first = differ[where].argmax(axis=1)
            lcp[pending[where]] += first
            greater[pending[where]] = pattern[where, first] > text[where, first]
            lcp[pending[~decided]] += chunk
            pending = pending[~decided]
            chunk = _LATER_CHUNK
        return greater, lcp
