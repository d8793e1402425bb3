"""Running a suite, the one way both ``python -m bench`` and a suite run alone (``python -m bench.gas``) use.

A suite is a module of ``bench`` whose ``main()`` (a coroutine function or a plain one) measures and returns its
:class:`~bench.report.Section`. Run alone, a suite prints its section; ``python -m bench --only SUITE`` also writes
the report files.
"""

from __future__ import annotations

import asyncio
import inspect
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from bench.report import Section, render_text

#: Calls a suite's ``main()``: returns its Section, or a coroutine of it.
Entry = Callable[[], object]


def run_suite(suite: str, entry: Entry) -> Section:
    """Runs one suite to its section, timed; a suite that raises gives a section holding the traceback instead, so
    that the suites after it still run."""
    started = time.perf_counter()
    try:
        result = entry()
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        if not isinstance(result, Section):
            raise TypeError(f"suite {suite!r} returned {type(result).__name__}, not a Section")
    except Exception:
        return Section(
            suite=suite, title="did not finish", error=traceback.format_exc(), seconds=time.perf_counter() - started
        )
    return result.model_copy(update={"seconds": time.perf_counter() - started})


def run_alone(suite: str, entry: Entry) -> NoReturn:
    """A suite's ``if __name__ == "__main__"``: runs it, prints its section and exits non-zero if it failed."""
    section = run_suite(suite, entry)
    print(render_text(section), flush=True)
    sys.exit(1 if section.error is not None else 0)


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """The median and the 99th percentile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
