"""Plumbing shared by the long-running processes (agent hosts, validator daemons): their listening socket and the
scheduler of their periodic jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

__all__ = ["interval_scheduler", "listen"]


@contextlib.contextmanager
def listen(host: str, port: int, *, backlog: int = 1024) -> Iterator[socket.socket]:
    """A listening TCP socket on ``host:port`` (port 0: a free one), closed on exit.

    Bound before the server starts, so that a process can register or print the port it really serves.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(backlog)
        listener.setblocking(False)
        yield listener
    finally:
        listener.close()


def interval_scheduler(intervals: Mapping[str, float], run: Callable[[str], Awaitable[None]]) -> Any:
    """A started APScheduler on the running loop that calls ``run(name)`` now and then every ``intervals[name]``
    seconds: one run at a time per job, and runs missed while one was long folded into one."""
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    now = datetime.now(UTC)
    for name, seconds in intervals.items():
        scheduler.add_job(
            run,
            "interval",
            seconds=seconds,
            args=(name,),
            id=name,
            name=name,
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.start()
    return scheduler
