"""The attribution index: one or more datanets tokenized with the model's tokenizer, in a suffix array on disk.

An index is a directory of memory-mapped numpy files and a manifest::

    tokens.npy                  every contribution's token ids, each followed by the separator (uint16, or uint32
                                for vocabularies of 65,535 ids or more; the separator is the dtype's largest value)
    suffixes.npy                the suffix array: sorted starts of the non-separator suffixes (int32, or int64)
    document_starts.npy         where each contribution's tokens start, and the end of the text (int64)
    document_contributors.npy   each contribution's contributor, as an index into the manifest's list (uint32)
    document_hashes.npy         each contribution's content hash (32 bytes per row)
    index.json                  the manifest: format, tokenizer hash, vocabulary size, parameters, the datanets
                                covered (digest, size), the contributors, the files' SHA-256, and the root

The **root** is keccak256 of the RFC 8785 canonical JSON of the manifest without its ``root`` field, so it covers
every file (through their SHA-256), the parameters, the tokenizer and the datanets. Building is deterministic:
datanets are taken in the order of their digests and the suffix array is a pure function of the tokens, so the
same datanets, tokenizer and parameters always give the same files and the same root, which is what a model is
registered with on chain.

Building, opening and attributing are synchronous CPU work (opening with ``verify`` hashes every file): async code
calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import rfc8785
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field
from tokenizers import Tokenizer

from ._apportion import apportion
from ._suffix import SuffixIndex, build_suffix_array
from ._types import Address, Hash32, hex32
from .datanet import Datanet
from .errors import AttributionIndexError, OutputTokensError, TokenizerError, TokenizerMismatchError
from .protocol import BPS, AttributedSpan, Attribution, ContributorWeight

__all__ = ["AttributionIndex", "IndexParameters", "load_tokenizer", "tokenizer_hash"]

logger = logging.getLogger(__name__)

_MANIFEST = "index.json"
_TOKENS, _SUFFIXES = "tokens.npy", "suffixes.npy"
_STARTS, _CONTRIBUTORS, _HASHES = "document_starts.npy", "document_contributors.npy", "document_hashes.npy"
_ENCODE_BATCH = 1024  # contributions per tokenizer call: the Rust tokenizer parallelises within a batch


class IndexParameters(BaseModel):
    """How spans are found and weighed; part of the index root, so every validator uses the same.

    Example:
        >>> IndexParameters(min_span=12).max_occurrences
        1000

    Attributes:
        min_span: the fewest tokens a span needs to count; shorter runs are everyday phrases, not evidence.
        max_occurrences: a span found more often than this is boilerplate (licence headers, indentation, markup)
            and credits nobody; it also bounds the work of one span.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_span: int = Field(default=8, ge=1, le=4096)
    max_occurrences: int = Field(default=1000, ge=1)


class _CoveredDatanet(BaseModel):
    """A datanet by content (its name is a label, not part of the data: renaming one changes no root)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: Hash32
    contributions: int = Field(ge=0)


class _Manifest(BaseModel):
    """``index.json`` without its root: exactly what the root hashes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["staked-attribution-index/1"] = "staked-attribution-index/1"
    tokenizer: Hash32
    vocab_size: int = Field(gt=0)
    token_dtype: Literal["uint16", "uint32"]
    parameters: IndexParameters
    datanets: tuple[_CoveredDatanet, ...]
    contributors: tuple[Address, ...]
    tokens: int = Field(gt=0)
    documents: int = Field(gt=0)
    files: dict[str, Hash32]

    @property
    def root(self) -> bytes:
        return keccak(rfc8785.dumps(self.model_dump(mode="json")))


def load_tokenizer(source: Tokenizer | str | Path) -> Tokenizer:
    """A tokenizer from a ``tokenizers.Tokenizer``, a ``tokenizer.json`` file, or a model directory holding one.

    Raises:
        TokenizerError: there is no such file, or it is not a tokenizer.
    """
    if isinstance(source, Tokenizer):
        return source
    path = Path(source)
    file = path / "tokenizer.json" if path.is_dir() else path
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # the tokenizers library raises bare Exception for a missing or malformed file
        raise TokenizerError(f"cannot load a tokenizer from {file}: {exc}") from exc


def tokenizer_hash(tokenizer: Tokenizer) -> bytes:
    """keccak256 of the tokenizer's RFC 8785 canonical JSON: equal for equal tokenizers however their files are
    formatted, different as soon as one id maps to another piece.

    Raises:
        TokenizerError: its JSON has no canonical form (an integer beyond 2**53, say).
    """
    try:
        return keccak(rfc8785.dumps(json.loads(tokenizer.to_str())))
    except rfc8785.CanonicalizationError as exc:
        raise TokenizerError(f"the tokenizer's JSON has no RFC 8785 form: {exc}") from exc


class AttributionIndex:
    """Finds the data an output drew on, and who to credit.

    Example:
        >>> index = AttributionIndex.build(Path("index"), [Datanet.open(Path("docs-net"))], Path("tiny-model"))
        ...                                                                          # doctest: +SKIP
        >>> index = AttributionIndex.open(Path("index"), Path("tiny-model"))         # doctest: +SKIP
        >>> attribution = index.attribute(call.output_token_ids)                     # doctest: +SKIP
        >>> receipt_field = attribution.attribution_hash                             # doctest: +SKIP

    **Spans.** For every output position the longest run of output tokens starting there that occurs in the data
    is found; the runs of at least ``min_span`` tokens that no run starting earlier contains are the output's
    maximal spans (two of them may overlap, each counts in full). Matches never cross from one contribution into
    the next.

    **Weights.** A span of ``n`` tokens held by ``d`` contributions has weight ``n / d``: length, times rarity
    (a passage that many contributions hold is evidence for none of them in particular). Spans that occur more
    than ``max_occurrences`` times count for nothing. Each span's weight is split evenly among the distinct
    contributors of the contributions that hold it (a contributor holding it twice gets one share). The weight
    depends on nothing but the span's own occurrences, so adding data that shares no span with an output never
    changes that output's weights. A contributor's weights are summed exactly (fractions) and turned into basis
    points by the largest remainder method, ties to the lower address; contributors at 0 are left out, and the
    rest add up to exactly 10,000.

    Args:
        directory: where the index lives (use :meth:`build` or :meth:`open`, not this constructor).
    """

    def __init__(self, directory: Path, manifest: _Manifest, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.directory = directory
        self._manifest = manifest
        self.root = manifest.root
        self._suffix = SuffixIndex.from_arrays(arrays[_TOKENS], arrays[_SUFFIXES], manifest.vocab_size)
        self._starts = arrays[_STARTS]
        self._contributors = arrays[_CONTRIBUTORS]
        self._hashes = arrays[_HASHES]

    def __repr__(self) -> str:
        return (
            f"<AttributionIndex root=0x{self.root.hex()} documents={self._manifest.documents} "
            f"tokens={self._manifest.tokens} at {self.directory}>"
        )

    @property
    def parameters(self) -> IndexParameters:
        return self._manifest.parameters

    @property
    def vocab_size(self) -> int:
        return self._manifest.vocab_size

    @property
    def tokens(self) -> int:
        """Tokens in the index, one separator per contribution included."""
        return self._manifest.tokens

    @property
    def documents(self) -> int:
        """Contributions in the index."""
        return self._manifest.documents

    @property
    def datanet_digests(self) -> tuple[bytes, ...]:
        """The :attr:`Datanet.digest` of every datanet covered, in index order."""
        return tuple(bytes.fromhex(covered.digest[2:]) for covered in self._manifest.datanets)

    @property
    def size_bytes(self) -> int:
        """The bytes of the index files on disk."""
        return sum((self.directory / name).stat().st_size for name in (*self._manifest.files, _MANIFEST))

    @classmethod
    def build(
        cls,
        directory: Path,
        datanets: Sequence[Datanet],
        tokenizer: Tokenizer | str | Path,
        *,
        parameters: IndexParameters | None = None,
    ) -> AttributionIndex:
        """Tokenizes ``datanets`` with ``tokenizer`` (no special tokens added) and writes the index to
        ``directory``, which must not exist yet (the files appear there at once, complete).

        Raises:
            AttributionIndexError: ``directory`` exists, a datanet is given twice, there is no contribution, or
                the tokenizer emits an id outside its own vocabulary.
            TokenizerError: the tokenizer cannot be loaded, or its vocabulary does not fit in 32 bits.
        """
        where = str(directory)
        if directory.exists():
            raise AttributionIndexError(where, "exists already: remove it or build elsewhere")
        tok = load_tokenizer(tokenizer)
        vocab_size = tok.get_vocab_size(with_added_tokens=True)
        dtype = _token_dtype(vocab_size)
        covered = sorted(
            ((_CoveredDatanet(digest=hex32(net.digest), contributions=len(net)), net) for net in datanets),
            key=lambda pair: pair[0].digest,  # the order they were given in does not matter
        )
        if len({entry.digest for entry, _ in covered}) != len(covered):
            raise AttributionIndexError(where, "a datanet is given twice")
        contributions = [contribution for _, datanet in covered for contribution in datanet]
        if not contributions:
            raise AttributionIndexError(where, "the datanets hold no contribution")

        started = time.perf_counter()
        separator = int(np.iinfo(dtype).max)
        pieces: list[npt.NDArray[np.int64]] = []
        for first in range(0, len(contributions), _ENCODE_BATCH):
            batch = [c.text for c in contributions[first : first + _ENCODE_BATCH]]
            for encoding in tok.encode_batch(batch, add_special_tokens=False):
                pieces.append(np.asarray(encoding.ids, dtype=np.int64))
        lengths = np.array([len(piece) for piece in pieces], dtype=np.int64)
        ids = np.concatenate(pieces) if lengths.sum() else np.zeros(0, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise AttributionIndexError(where, f"the tokenizer emitted an id outside its vocabulary of {vocab_size}")
        starts = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum(lengths + 1, out=starts[1:])
        tokens = np.full(int(starts[-1]), separator, dtype=dtype)
        tokens[np.repeat(starts[:-1], lengths) + _ranks(lengths)] = ids
        tokenized = time.perf_counter()
        suffixes = build_suffix_array(tokens, separator)
        sorted_at = time.perf_counter()

        contributors = sorted({c.contributor for c in contributions}, key=lambda address: int(address, 16))
        number = {address: i for i, address in enumerate(contributors)}
        arrays: dict[str, npt.NDArray[Any]] = {
            _TOKENS: tokens,
            _SUFFIXES: suffixes,
            _STARTS: starts,
            _CONTRIBUTORS: np.array([number[c.contributor] for c in contributions], dtype=np.uint32),
            _HASHES: np.frombuffer(b"".join(c.content_hash for c in contributions), dtype=np.uint8).reshape(-1, 32),
        }
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            for name, array in arrays.items():
                np.save(staging / name, array, allow_pickle=False)
            manifest = _Manifest(
                tokenizer=hex32(tokenizer_hash(tok)),
                vocab_size=vocab_size,
                token_dtype="uint16" if dtype == np.uint16 else "uint32",
                parameters=parameters or IndexParameters(),
                datanets=tuple(entry for entry, _ in covered),
                contributors=tuple(contributors),
                tokens=len(tokens),
                documents=len(contributions),
                files={name: _sha256(staging / name) for name in sorted(arrays)},
            )
            _write_manifest(staging / _MANIFEST, manifest)
            staging.rename(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info(
            "built attribution index %s: %d contributions, %d tokens; tokenize %.2f s, suffix sort %.2f s, root 0x%s",
            directory,
            len(contributions),
            len(tokens),
            tokenized - started,
            sorted_at - tokenized,
            manifest.root.hex(),
        )
        return cls.open(directory, tok, verify=False)

    @classmethod
    def open(cls, directory: Path, tokenizer: Tokenizer | str | Path, *, verify: bool = True) -> AttributionIndex:
        """Opens the index in ``directory`` (memory-mapped) for a model's ``tokenizer``.

        Args:
            verify: re-hash every file against the manifest (what a validator does before trusting an index it
                was handed); the manifest's own root is always checked.

        Raises:
            AttributionIndexError: it is missing or malformed, or a file does not match the root.
            TokenizerMismatchError: the index was built with another tokenizer.
        """
        where = str(directory)
        try:
            document = json.loads((directory / _MANIFEST).read_bytes())
            recorded = document.pop("root")
            manifest = _Manifest.model_validate(document)
        except FileNotFoundError as exc:
            raise AttributionIndexError(where, f"{_MANIFEST} is missing: build the index first") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # JSON, a missing root, pydantic
            raise AttributionIndexError(where, f"{_MANIFEST} is malformed: {exc}") from exc
        if recorded != hex32(manifest.root):
            raise AttributionIndexError(where, f"{_MANIFEST} was edited: its content hashes to another root")
        actual = hex32(tokenizer_hash(load_tokenizer(tokenizer)))
        if actual != manifest.tokenizer:
            raise TokenizerMismatchError(where, manifest.tokenizer, actual)
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name, digest in manifest.files.items():
            path = directory / name
            if verify and (not path.is_file() or _sha256(path) != digest):
                raise AttributionIndexError(where, f"{name} is missing or does not match the index root")
            try:
                arrays[name] = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
            except (OSError, ValueError) as exc:
                raise AttributionIndexError(where, f"{name} cannot be read: {exc}") from exc
        _check_shapes(where, manifest, arrays)
        return cls(directory, manifest, arrays)

    def attribute(self, output_token_ids: Sequence[int]) -> Attribution:
        """The contributors ``output_token_ids`` drew on, with the spans that show it (see the class docstring).

        Args:
            output_token_ids: the exact generated token ids (``ModelCall.output_token_ids``).

        Raises:
            OutputTokensError: an id is outside the index's vocabulary.
        """
        query = np.asarray(output_token_ids, dtype=np.int64).reshape(-1)
        outside = np.flatnonzero((query < 0) | (query >= self.vocab_size))
        if outside.size:
            raise OutputTokensError(int(outside[0]), int(query[outside[0]]), self.vocab_size)
        root = hex32(self.root)
        if not query.size:
            return Attribution(index_root=root, output_tokens=0)
        parameters = self.parameters
        lengths, hits = self._suffix.match_lengths(query)
        previous = np.concatenate((np.zeros(1, dtype=np.int64), lengths[:-1]))
        # A run starting at i lies inside the run starting at i - 1 unless it reaches further: lengths[i] >= that.
        starts = np.flatnonzero((lengths >= parameters.min_span) & (lengths >= previous))
        first, last = self._suffix.occurrences(
            query, starts, lengths[starts], hits[starts], most=parameters.max_occurrences
        )
        spans: list[AttributedSpan] = []
        weights: dict[str, Fraction] = {}
        for start, length, low, high in zip(
            starts.tolist(), lengths[starts].tolist(), first.tolist(), last.tolist(), strict=True
        ):
            if low < 0:  # more than max_occurrences: boilerplate
                continue
            documents = np.unique(np.searchsorted(self._starts, self._suffix.suffixes[low:high], side="right") - 1)
            contributors = [self._manifest.contributors[i] for i in np.unique(self._contributors[documents])]
            share = Fraction(length, len(documents) * len(contributors))
            for contributor in contributors:
                weights[contributor] = weights.get(contributor, Fraction(0)) + share
            spans.append(
                AttributedSpan(
                    start=start,
                    end=start + length,
                    occurrences=high - low,
                    contributions=tuple(sorted(hex32(self._hashes[d].tobytes()) for d in documents.tolist())),
                    contributors=tuple(contributors),  # the manifest lists them by address
                )
            )
        if not spans:
            return Attribution(index_root=root, output_tokens=len(query))
        points = apportion(BPS, weights)
        return Attribution(
            index_root=root,
            output_tokens=len(query),
            spans=tuple(spans),
            weights=tuple(
                ContributorWeight(contributor=address, bps=points[address])
                for address in sorted(points, key=lambda address: int(address, 16))
                if points[address]
            ),
        )


def _token_dtype(vocab_size: int) -> type[np.unsignedinteger[Any]]:
    """The narrowest dtype whose largest value (the separator) is no token id."""
    if vocab_size < 2**16:
        return np.uint16
    if vocab_size < 2**32:
        return np.uint32
    raise TokenizerError(f"a vocabulary of {vocab_size} ids does not fit 32-bit tokens")


def _ranks(lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``0, 1, ..., n - 1`` for every ``n`` in ``lengths``, concatenated: positions within each document."""
    total = int(lengths.sum())
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    ranks: npt.NDArray[np.int64] = np.arange(total, dtype=np.int64) - offsets
    return ranks


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return "0x" + hashlib.file_digest(file, "sha256").hexdigest()


def _write_manifest(path: Path, manifest: _Manifest) -> None:
    document = {**manifest.model_dump(mode="json"), "root": hex32(manifest.root)}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _check_shapes(where: str, manifest: _Manifest, arrays: dict[str, npt.NDArray[Any]]) -> None:
    """The files are those the manifest describes (guards an unverified open against a mixed-up directory)."""
    expected = {
        _TOKENS: ((manifest.tokens,), np.dtype(manifest.token_dtype)),
        _SUFFIXES: ((manifest.tokens - manifest.documents,), None),
        _STARTS: ((manifest.documents + 1,), np.dtype(np.int64)),
        _CONTRIBUTORS: ((manifest.documents,), np.dtype(np.uint32)),
        _HASHES: ((manifest.documents, 32), np.dtype(np.uint8)),
    }
    if set(arrays) != set(expected):
        raise AttributionIndexError(where, f"the manifest lists files {sorted(arrays)}, expected {sorted(expected)}")
    for name, (shape, dtype) in expected.items():
        array = arrays[name]
        if array.shape != shape or (dtype is not None and array.dtype != dtype):
            raise AttributionIndexError(where, f"{name} has shape {array.shape} and dtype {array.dtype}")
