"""Proof of Attribution: index build cost and ``attribute()`` latency by index size, against a linear scan.

Run: ``python -m bench.attribution`` (``--large`` adds a 50M-token index; about three more minutes), or
``python -m bench --only attribution`` for the report files. Corpora need no download: CPython's ``pydoc_data``
topics (10%, 50% and 100% of them) and, for larger indexes, the ``.py`` files of the running interpreter's standard
library, one contribution per file, tokenized with the tiny model's tokenizer.

For each index it reports the build time end to end (tokenizing, suffix sorting, writing and hashing the files), the
tokenizer's and the suffix sort's share of it (each measured again on its own), the size on disk per token, and the
latency of :meth:`AttributionIndex.attribute` on 256-token outputs that echo the data (windows of the corpus with
one token in 24 replaced at random, as a model that paraphrases its training data would produce). The baseline, in
the same run on the same outputs, finds every occurrence of the same spans by a vectorised linear scan of the token
array (first-token candidates, then filtering by each next token), and the bench checks that both count the same
occurrences.
"""

from __future__ import annotations

import argparse
import functools
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
from bench.report import Baseline, Better, Figure, Headline, LineChart, Section, Series, Table
from bench.runner import percentiles, run_alone

SUITE = "attribution"
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


def main(large: bool = False) -> Section:
    with tempfile.TemporaryDirectory(prefix="bench-attribution-") as directory:
        workdir = Path(directory)
        model_dir = build_tiny_model(workdir / "tiny-model", seed=0)
        corpora = [(f"pydoc {int(f * 100)}%", pydoc_corpus(f)) for f in (0.1, 0.5, 1.0)]
        sizes = (*STDLIB_SIZES, LARGE_SIZE) if large else STDLIB_SIZES
        corpora += [(f"stdlib {size // 1_000_000}M", stdlib_corpus(size)) for size in sizes]
        rows = [measure(name, texts, model_dir, workdir) for name, texts in corpora]
    return _section(rows)


def _section(rows: list[Row]) -> Section:
    figures = [
        Figure(
            name=f"attribute() p50 on a {OUTPUT_TOKENS}-token output, {row.name} index ({row.tokens:,} tokens)",
            value=row.latency_s[0] * 1e3,
            unit="ms",
            baseline=Baseline(name="linear scan for the same spans, p50", value=row.scan_s[0] * 1e3),
            better=Better.LOWER,
            headline=Headline.ATTRIBUTION_LATENCY if row is rows[-1] else None,
        )
        for row in rows
    ]
    build = Table(
        title="Index build (tiny model's tokenizer, one contribution per topic or file)",
        columns=(
            "index",
            "contributions",
            "tokens",
            "build s",
            "Mtok/s",
            "tokenize s",
            "sort s",
            "sort Mtok/s",
            "bytes/token",
        ),
        rows=[
            (
                row.name,
                row.contributions,
                row.tokens,
                row.build_s,
                row.tokens / row.build_s / 1e6,
                row.tokenize_s,
                row.sort_s,
                row.tokens / row.sort_s / 1e6,
                row.bytes_per_token,
            )
            for row in rows
        ],
    )
    latency = Table(
        title=f"attribute() on {OUTPUT_TOKENS}-token outputs ({OUTPUTS} per index), against a linear scan for the "
        f"same spans ({SCANNED} outputs)",
        columns=(
            "index",
            "tokens",
            "p50 ms",
            "p99 ms",
            "spans/output",
            "scan p50 ms",
            "scan p99 ms",
            "speed-up",
            "same counts",
        ),
        rows=[
            (
                row.name,
                row.tokens,
                row.latency_s[0] * 1e3,
                row.latency_s[1] * 1e3,
                row.spans,
                row.scan_s[0] * 1e3,
                row.scan_s[1] * 1e3,
                row.scan_s[0] / row.latency_s[0],
                f"{row.agree}/{SCANNED}",
            )
            for row in rows
        ],
    )
    chart = LineChart(
        name="latency",
        title=f"Attribution latency against index size ({OUTPUT_TOKENS}-token outputs, p50)",
        x_label="index size (tokens)",
        y_label="ms per output",
        x=[row.tokens for row in rows],
        series=[
            Series(name="attribute() (suffix array)", values=[row.latency_s[0] * 1e3 for row in rows]),
            Series(name="linear scan, same spans (baseline)", values=[row.scan_s[0] * 1e3 for row in rows]),
        ],
        log_x=True,
        log_y=True,
    )
    return Section(
        suite=SUITE,
        title="Proof of Attribution: index build and attribute() latency against index size",
        description=(
            "Indexes of CPython's pydoc topics (10%, 50% and 100%) and of the standard library's .py files (about "
            f"{', '.join(f'{size // 1_000_000}M' for size in STDLIB_SIZES)} tokens; 50M more with --large), built "
            "with the tiny model's tokenizer, one contribution per topic or file: build time end to end and the "
            "tokenizer's and the suffix sort's share. attribute() runs on "
            f"{OUTPUT_TOKENS}-token outputs that echo the data (corpus windows with one token in "
            f"{round(1 / SUBSTITUTION_RATE)} replaced at random); the baseline finds every occurrence of the same "
            "spans by a vectorised linear scan of the token array, and both must count the same occurrences."
        ),
        figures=figures,
        tables=[build, latency],
        charts=[chart],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help=f"also build a {LARGE_SIZE:,}-token index")
    run_alone(SUITE, functools.partial(main, large=parser.parse_args().large))
