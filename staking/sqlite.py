"""A SQLite file used from asyncio: the one way the project keeps durable local state.

An agent's receipts journal, a payer's receipts store and a validator's state are each a :class:`SqliteFile`:

* **Off the event loop.** One dedicated thread owns the connection (SQLite calls block, and a connection must stay
  on its thread); every call is queued to it, so the loop never waits on SQLite or on a disk sync. A call whose
  caller is cancelled still completes.
* **Durable.** WAL mode with ``synchronous=FULL``: a committed transaction survives a crash or a power cut.
* **Explicit transactions, committed in groups.** The connection is in autocommit mode; the only transactions are
  those of :meth:`SqliteFile.write`, ``BEGIN IMMEDIATE`` (the write lock at once, so that checks and the writes
  that depend on them are one step, and a writer in another process waits instead of failing half-way). Writes
  that queue up while one commits are committed together: each runs in its own savepoint, in order, so it sees
  the ones before it and a failure undoes only itself, and all share one ``COMMIT`` and so one disk sync. A write
  returns only once its group is durable.
* **Versioned.** The schema's version is ``PRAGMA user_version``; a file of another version is refused, not
  guessed at.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

__all__ = ["Schema", "SqliteFile"]

_T = TypeVar("_T")

#: How long a write waits for another process's transaction (a status command reading the file) to finish.
_BUSY_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Schema:
    """What a file holds, and what is checked whenever it is opened.

    Attributes:
        version: ``PRAGMA user_version`` of ``statements``.
        statements: the ``CREATE`` statements of a new file.
        initialize: fills a new file (its first rows), in the transaction that creates it.
        check: runs at every open, in the same transaction (e.g. that the file belongs to this owner); it raises
            to refuse the file.
    """

    version: int
    statements: Sequence[str]
    initialize: Callable[[sqlite3.Connection], None] | None = None
    check: Callable[[sqlite3.Connection], None] | None = None


class SqliteFile:
    """One SQLite file, its connection and the thread that owns it (see the module docstring).

    Example:
        >>> store = SqliteFile(path, Schema(1, ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)"]), name="kv",
        ...                    error=MyError)                                                  # doctest: +SKIP
        >>> await store.write(lambda c: c.execute("INSERT INTO kv VALUES ('a', 'b')"))          # doctest: +SKIP
        >>> await store.run(lambda c: c.execute("SELECT v FROM kv").fetchone())               # doctest: +SKIP

    Args:
        path: the file, created (with its directory) when missing.
        schema: its schema.
        name: the thread's name, for debugging.
        error: builds the exception a ``sqlite3.Error`` (or an unreadable file) is raised as, from the path and the
            reason.
        foreign_keys: whether SQLite enforces the schema's foreign keys.
    """

    def __init__(
        self,
        path: str | Path,
        schema: Schema,
        *,
        name: str,
        error: Callable[[str, str], Exception],
        foreign_keys: bool = False,
    ) -> None:
        self.path = str(path)
        self._schema = schema
        self._error = error
        self._foreign_keys = foreign_keys
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # guards _queued, shared by the loop and the thread
        self._queued: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []

    def __repr__(self) -> str:
        return f"<SqliteFile {self.path}>"

    async def open(self) -> None:
        """Opens, creates or migrates, and checks the file now (rather than on first use)."""
        await self.run(lambda connection: None)

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Runs ``work`` on the connection's thread, outside any transaction (reads).

        Raises:
            Exception: ``error(path, reason)`` when SQLite fails; whatever ``work`` raised otherwise.
        """
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, work)

    async def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Runs ``work`` in a write transaction: durable once this returns; undone if it raises.

        Raises:
            Exception: ``error(path, reason)`` when SQLite fails (the whole group is undone); whatever ``work``
                raised otherwise (only ``work``'s own writes are undone).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queued.append((work, future))
            start = len(self._queued) == 1  # the first of a group schedules the group's commit
        if start:
            loop.run_in_executor(self._executor, self._commit_group, loop)
        return cast(_T, await future)

    async def close(self) -> None:
        """Closes the connection and its thread; the file cannot be used afterwards."""
        if self._connection is not None:
            await self.run(lambda connection: connection.close())
            self._connection = None
        self._executor.shutdown(wait=False)

    def _commit_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """Runs every queued write in one transaction, each in a savepoint, then settles their futures."""
        with self._lock:
            group, self._queued = self._queued, []
        outcomes: list[tuple[bool, Any]] = []

        def run_all(connection: sqlite3.Connection) -> None:
            for work, _ in group:
                connection.execute("SAVEPOINT write")
                try:
                    outcomes.append((True, work(connection)))
                except BaseException as exc:  # this write's failure is its own: undo it, go on with the group
                    connection.execute("ROLLBACK TO write")
                    outcomes.append((False, self._translated(exc)))
                connection.execute("RELEASE write")

        try:
            self._call(lambda connection: _transaction(connection, run_all))
        except BaseException as exc:  # the group did not commit: every write of it failed
            outcomes = [(False, exc)] * len(group)
        for (_, future), (ok, value) in zip(group, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, ok, value)

    def _translated(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            translated = self._error(self.path, str(exc))
            translated.__cause__ = exc
            return translated
        return exc

    def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            if self._connection is None:
                self._connection = self._open()
            return work(self._connection)
        except sqlite3.Error as exc:
            raise self._error(self.path, str(exc)) from exc

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._error(self.path, str(exc)) from exc
        connection = sqlite3.connect(self.path, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(f"PRAGMA foreign_keys={'ON' if self._foreign_keys else 'OFF'}")
            connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            _transaction(connection, self._migrate)
        except BaseException:
            connection.close()
            raise
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        schema = self._schema
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version == 0:
            for statement in schema.statements:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {int(schema.version)}")
            if schema.initialize is not None:
                schema.initialize(connection)
        elif version != schema.version:
            raise self._error(self.path, f"schema version {version}; this program reads version {schema.version}")
        if schema.check is not None:
            schema.check(connection)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():  # the caller went away; the write stands (or failed) all the same
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T]) -> _T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result
