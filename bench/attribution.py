"""Proof of Attribution: index build cost and ``attribute()`` latency by index size, against a linear scan.

Run: ``python -m bench.attribution`` (``--large`` adds a 50M-token index; about three more minutes). Corpora need no
download: CPython's ``pydoc_data`` topics (10%, 50% and 100% of them) and, for larger indexes, the ``.py`` files of
the running interpreter's standard library, one contribution per file, tokenized with the tiny model's tokenizer.

For each index it prints the build time end to end (tokenizing, suffix sorting, writing and hashing the files),
the tokenizer's and the suffix sort's share of it (each measured again on its own), the size on disk per token,
and the latency of :meth:`AttributionIndex.attribute` on
256-token outputs that echo the data (windows of the corpus with one token in 24 replaced at random, as a model
that paraphrases its training data would produce). The baseline, in the same run on the same outputs, finds every
occurrence of the same spans by a vectorised linear scan of the token array (first-token candidates, then
filtering by each next token), and the bench checks that both count the same occurrences.
"""

from __future__ import annotations

import argparse
import statistics
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import numpy.typing as npt

from agents import build_tiny_model
from agents.attribution import AttributionIndex, Contribution, Datanet, load_tokenizer
from agents.attribution._suffix import build_suffix_array  # the step the index adds to tokenizing, timed alone

CONTRIBUTORS = tuple(f"0x{number:040x}" for number in range(1, 9))
OUTPUT_TOKENS = 256
SUBSTITUTION_RATE = 1 / 24
OUTPUTS = 200  # per index for attribute()
SCANNED = 20  # of those, how many the linear scan baseline also runs (it is slow on large indexes)
STDLIB_SIZES = (1_000_000, 10_000_000)
LARGE_SIZE = 50_000_000


def pydoc_corpus(fraction: float) -> list[str]:
    keys = sorted(topics)
    return [topics[key] for key in keys[: max(1, round(len(keys) * fraction))]]


def stdlib_corpus(tokens: int, chars_per_token: float = 1.8) -> list[str]:
    """The standard library's UTF-8 ``.py`` files, in path order, until about ``tokens`` tokens (the tiny
    tokenizer makes about one token of 1.8 characters of Python)."""
    texts, chars = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip() and len(text.encode()) <= 2**20:
            texts.append(text)
            chars += len(text)
        if chars >= tokens * chars_per_token:
            break
    return texts


def build(directory: Path, texts: list[str], model_dir: Path) -> tuple[AttributionIndex, float, float, float]:
    """The index of ``texts``, its build seconds, and the seconds tokenizing alone and suffix sorting alone take."""
    net = Datanet.create(directory / "datanet", name=directory.name)
    net.add(Contribution(text=text, contributor=CONTRIBUTORS[n % len(CONTRIBUTORS)]) for n, text in enumerate(texts))
    started = time.perf_counter()
    index = AttributionIndex.build(directory / "index", [net], model_dir)
    built = time.perf_counter() - started
    started = time.perf_counter()
    load_tokenizer(model_dir).encode_batch([c.text for c in net], add_special_tokens=False)
    tokenizing = time.perf_counter() - started
    tokens = np.load(index.directory / "tokens.npy")
    started = time.perf_counter()
    build_suffix_array(tokens, int(np.iinfo(tokens.dtype).max))
    return index, built, tokenizing, time.perf_counter() - started


def outputs(tokens: npt.NDArray[np.unsignedinteger], vocab_size: int, count: int) -> list[list[int]]:
    """``count`` echoing outputs: corpus windows without a separator, some tokens replaced (seeded)."""
    rng = np.random.default_rng(0)
    chosen: list[list[int]] = []
    while len(chosen) < count:
        start = int(rng.integers(0, len(tokens) - OUTPUT_TOKENS))
        window = tokens[start : start + OUTPUT_TOKENS].astype(np.int64)
        if window.max() >= vocab_size:  # crosses into the next contribution
            continue
        replaced = rng.random(OUTPUT_TOKENS) < SUBSTITUTION_RATE
        window[replaced] = rng.integers(0, vocab_size, int(replaced.sum()))
        chosen.append(window.tolist())
    return chosen


def scan(tokens: npt.NDArray[np.unsignedinteger], pattern: list[int]) -> int:
    """Occurrences of ``pattern`` by a linear scan: the baseline."""
    positions = np.flatnonzero(tokens[: len(tokens) - len(pattern) + 1] == pattern[0])
    for offset, token in enumerate(pattern[1:], start=1):
        positions = positions[tokens[positions + offset] == token]
    return len(positions)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Row:
    """The figures of one index."""

    name: str
    contributions: int
    tokens: int
    build_s: float
    tokenize_s: float
    sort_s: float
    bytes_per_token: float
    latency_s: tuple[float, float]  # p50, p99
    spans: float  # per output
    scan_s: tuple[float, float]  # p50, p99
    agree: int  # outputs whose span counts the scan confirms


def measure(name: str, texts: list[str], model_dir: Path, workdir: Path) -> Row:
    index, built, tokenizing, sorting = build(workdir / name.replace(" ", "-"), texts, model_dir)
    tokens = np.load(index.directory / "tokens.npy", mmap_mode="r")
    queries = outputs(tokens, index.vocab_size, OUTPUTS)
    for query in queries[:5]:  # warm the page cache and numpy's first calls
        index.attribute(query)
    latencies, results = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(index.attribute(query))
        latencies.append(time.perf_counter() - started)
    scans, agree = [], 0
    for query, attribution in zip(queries[:SCANNED], results[:SCANNED], strict=True):
        started = time.perf_counter()
        counts = [scan(tokens, query[span.start : span.end]) for span in attribution.spans]
        scans.append(time.perf_counter() - started)
        agree += counts == [span.occurrences for span in attribution.spans]
    return Row(
        name=name,
        contributions=index.documents,
        tokens=index.tokens,
        build_s=built,
        tokenize_s=tokenizing,
        sort_s=sorting,
        bytes_per_token=index.size_bytes / index.tokens,
        latency_s=percentiles(latencies),
        spans=statistics.mean(len(result.spans) for result in results),
        scan_s=percentiles(scans),
        agree=agree,
    )


def main(large: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-attribution-") as directory:
        workdir = Path(directory)
        model_dir = build_tiny_model(workdir / "tiny-model", seed=0)
        corpora = [(f"pydoc {int(f * 100)}%", pydoc_corpus(f)) for f in (0.1, 0.5, 1.0)]
        sizes = (*STDLIB_SIZES, LARGE_SIZE) if large else STDLIB_SIZES
        corpora += [(f"stdlib {size // 1_000_000}M", stdlib_corpus(size)) for size in sizes]
        rows = [measure(name, texts, model_dir, workdir) for name, texts in corpora]

    print("\nattribution: index build (tiny model's tokenizer, one contribution per topic or file)")
    print(f"  {'index':<12} {'contributions':>13} {'tokens':>11} {'build s':>8} {'Mtok/s':>7} {'tokenize s':>10} "
          f"{'sort s':>7} {'sort Mtok/s':>11} {'bytes/token':>11}")  # fmt: skip
    for row in rows:
        print(
            f"  {row.name:<12} {row.contributions:>13,} {row.tokens:>11,} {row.build_s:>8.2f} "
            f"{row.tokens / row.build_s / 1e6:>7.2f} {row.tokenize_s:>10.2f} {row.sort_s:>7.2f} "
            f"{row.tokens / row.sort_s / 1e6:>11.2f} {row.bytes_per_token:>11.2f}"
        )
    print(f"\nattribution: attribute() on {OUTPUT_TOKENS}-token outputs ({OUTPUTS} per index), against a linear scan "
          f"for the same spans ({SCANNED} outputs)")  # fmt: skip
    print(f"  {'index':<12} {'tokens':>11} {'p50 ms':>7} {'p99 ms':>7} {'spans':>6} {'scan p50 ms':>11} "
          f"{'scan p99 ms':>11} {'speed-up':>8} {'same counts':>11}")  # fmt: skip
    for row in rows:
        (p50, p99), (scan50, scan99) = row.latency_s, row.scan_s
        print(
            f"  {row.name:<12} {row.tokens:>11,} {p50 * 1e3:>7.2f} {p99 * 1e3:>7.2f} {row.spans:>6.1f} "
            f"{scan50 * 1e3:>11.2f} {scan99 * 1e3:>11.2f} {scan50 / p50:>7.1f}x {row.agree:>8}/{SCANNED}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help=f"also build a {LARGE_SIZE:,}-token index")
    main(large=parser.parse_args().large)
