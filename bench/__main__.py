"""``python -m bench [--only gas,client_tps,...] [--out DIR]``: runs the suites in order and writes one report.

Each section is printed as its suite finishes, and ``report.md``, ``report.json`` and the charts' PNGs are (re)written
into DIR (default ``bench/results/``, ignored by git). A suite that raises is recorded in its section and the
others still run; the exit status is 1 if any failed. Suites are imported when they run, so that one that cannot
even be imported is recorded like any other failure.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.report import Report, render_headline_text, render_text, write_report
from bench.runner import run_suite

#: Every suite, in the order they run: the quick chain suites first, the vLLM ones after.
SUITES = ("gas", "client_tps", "attribution", "agents_backend", "runtime", "validator", "detection", "training")
DEFAULT_OUT = Path(__file__).parent / "results"


def _suites(value: str) -> list[str]:
    chosen = {name.strip() for name in value.split(",") if name.strip()}
    unknown = chosen.difference(SUITES)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown suite(s) {sorted(unknown)}; choose from {', '.join(SUITES)}")
    return [name for name in SUITES if name in chosen]


def _entry(suite: str) -> object:
    return importlib.import_module(f"bench.{suite}").main()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        type=_suites,
        default=list(SUITES),
        metavar="SUITE[,SUITE...]",
        help=f"run these suites only (in the usual order): {', '.join(SUITES)}",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory of the report (default: %(default)s)")
    args = parser.parse_args(argv)
    sections = []
    for suite in args.only:
        section = run_suite(suite, functools.partial(_entry, suite))
        print(render_text(section), end="\n\n", flush=True)
        sections.append(section)
        # Written after every suite, so that an interrupted run of the long suites keeps what it measured.
        report = Report.of(sections)
        path = write_report(report, args.out)
    print(render_headline_text(report))
    print(f"\nreport: {path}")
    if report.failed:
        print(f"failed: {', '.join(section.suite for section in report.failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
