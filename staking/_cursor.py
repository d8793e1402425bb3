"""Where an event stream keeps its place: one SQLite file, safe across crashes and restarts.

A cursor holds, per stream name, the position up to which the consumer has processed events and the recent
blocks the stream has read, each with its hash and the logs delivered from it. The hashes let a restarted stream
find the common ancestor after a reorg; the logs let it tell the consumer which events a reorg removed.

The cursor is plain storage: :class:`~staking.events.EventStream` decides what goes in. Every call runs on one
dedicated thread that owns the connection, so the event loop never waits on a disk write. The database runs in WAL
mode with ``synchronous=FULL``: a committed position survives a power cut, and readers (a status command, the
consumer's own queries) do not block the writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from .errors import StakedError

__all__ = [
    "CursorBlock",
    "CursorLog",
    "CursorPosition",
    "CursorState",
    "Effects",
    "EventCursorError",
    "SqliteEventCursor",
]

_T = TypeVar("_T")

#: Work the consumer commits in the cursor's own transaction: it gets the open connection, must neither commit nor
#: roll back, and runs on the cursor's thread (so it must not touch the event loop). Its result is ignored, so
#: ``lambda db: db.execute(...)`` fits.
Effects = Callable[[sqlite3.Connection], object]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_cursor (
    name TEXT PRIMARY KEY,
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    log_index INTEGER  -- NULL: the whole block is processed
);
CREATE TABLE IF NOT EXISTS event_cursor_block (
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    hash TEXT NOT NULL,
    logs TEXT NOT NULL,  -- JSON list of CursorLog
    PRIMARY KEY (name, number)
);
"""


class EventCursorError(StakedError):
    """The cursor database at ``path`` could not be read or written.

    Attributes:
        path: the SQLite file.
        reason: SQLite's message.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"event cursor {path}: {reason}")
        self.path = path
        self.reason = reason


class CursorLog(BaseModel):
    """A raw log as the node returned it, hex-encoded: enough to decode the event again after a restart."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    topics: tuple[str, ...]
    data: str
    block_number: int
    block_hash: str
    transaction_hash: str
    transaction_index: int
    log_index: int


_LOGS = TypeAdapter(tuple[CursorLog, ...])


@dataclass(frozen=True)
class CursorPosition:
    """Everything up to here is processed: block ``block_number`` whole, or only its logs up to ``log_index``."""

    block_number: int
    block_hash: str
    log_index: int | None = None


@dataclass(frozen=True)
class CursorBlock:
    """A block the stream has read: its hash, and the logs it delivered from it, in order."""

    number: int
    hash: str
    logs: tuple[CursorLog, ...] = ()


@dataclass(frozen=True)
class CursorState:
    """What a cursor holds for one stream. ``position`` is ``None`` before anything was processed."""

    position: CursorPosition | None = None
    #: recent blocks, ascending by number
    blocks: tuple[CursorBlock, ...] = ()


class SqliteEventCursor:
    """The position of one named event stream in a SQLite file; several streams may share the file.

    Example:
        >>> async with SqliteEventCursor(tmp_path / "events.sqlite", "validator") as cursor:  # doctest: +SKIP
        ...     state = await cursor.load()

    Args:
        path: the SQLite file, created when missing; ``":memory:"`` keeps the cursor for this process only.
        name: which stream's position this is.
    """

    def __init__(self, path: str | Path, name: str) -> None:
        self.path = str(path)
        self.name = name
        # One thread owns the connection: SQLite calls block, and a connection must stay on one thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"event-cursor-{name}")
        self._connection: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<SqliteEventCursor {self.path} name={self.name!r}>"

    async def load(self) -> CursorState:
        """The stored state, empty for a stream never saved.

        Raises:
            EventCursorError: the database cannot be opened or holds malformed rows.
        """
        return await self._run(self._load)

    async def save(self, state: CursorState, effects: Effects | None = None) -> None:
        """Replaces the stored state with ``state``, together with ``effects``, in one transaction.

        Args:
            state: the new state.
            effects: the consumer's own writes, committed atomically with the state or not at all.

        Raises:
            EventCursorError: SQLite failed; nothing was written.
            Exception: whatever ``effects`` raised; nothing was written.
        """
        await self._run(lambda connection: self._save(connection, state, effects))

    async def close(self) -> None:
        """Closes the connection and its thread; the cursor cannot be used afterwards."""
        if self._connection is not None:
            await self._run(lambda connection: connection.close())
            self._connection = None
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> SqliteEventCursor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: work(self._connect()))

    def _connect(self) -> sqlite3.Connection:
        """The thread's connection, opened and migrated on first use."""
        if self._connection is None:
            try:
                self._connection = _open(self.path)
            except sqlite3.Error as exc:
                raise EventCursorError(self.path, str(exc)) from exc
        return self._connection

    def _load(self, connection: sqlite3.Connection) -> CursorState:
        try:
            row = connection.execute(
                "SELECT block_number, block_hash, log_index FROM event_cursor WHERE name = ?", (self.name,)
            ).fetchone()
            rows = connection.execute(
                "SELECT number, hash, logs FROM event_cursor_block WHERE name = ? ORDER BY number", (self.name,)
            ).fetchall()
            blocks = tuple(CursorBlock(number, hash_, _LOGS.validate_json(logs)) for number, hash_, logs in rows)
        except sqlite3.Error as exc:
            raise EventCursorError(self.path, str(exc)) from exc
        except ValidationError as exc:
            raise EventCursorError(self.path, f"malformed logs of stream {self.name!r}: {exc}") from exc
        return CursorState(CursorPosition(*row) if row else None, blocks)

    def _save(self, connection: sqlite3.Connection, state: CursorState, effects: Effects | None) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise EventCursorError(self.path, str(exc)) from exc
        try:
            if effects is not None:
                effects(connection)  # the consumer's errors are its own: they roll back and propagate as they are
            self._write(connection, state)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _write(self, connection: sqlite3.Connection, state: CursorState) -> None:
        """Replaces this stream's rows (at most a few dozen blocks) and commits."""
        try:
            connection.execute("DELETE FROM event_cursor WHERE name = ?", (self.name,))
            connection.execute("DELETE FROM event_cursor_block WHERE name = ?", (self.name,))
            if state.position is not None:
                position = state.position
                connection.execute(
                    "INSERT INTO event_cursor VALUES (?, ?, ?, ?)",
                    (self.name, position.block_number, position.block_hash, position.log_index),
                )
            connection.executemany(
                "INSERT INTO event_cursor_block VALUES (?, ?, ?, ?)",
                [(self.name, block.number, block.hash, _LOGS.dump_json(block.logs).decode()) for block in state.blocks],
            )
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            raise EventCursorError(self.path, str(exc)) from exc


def _open(path: str) -> sqlite3.Connection:
    # Autocommit mode: the only transactions are the explicit BEGIN ... COMMIT of a save.
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.executescript(_SCHEMA)
    except BaseException:
        connection.close()
        raise
    return connection
