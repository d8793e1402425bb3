"""The SQLite cursor store on its own: round trips, isolation of names, transactional effects, bad files."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from staking.events import (
    CursorBlock,
    CursorLog,
    CursorPosition,
    CursorState,
    EventCursorError,
    SqliteEventCursor,
)

HASH_7 = "0x" + "07" * 32
HASH_8 = "0x" + "08" * 32


def transfer_log(block_number: int, block_hash: str, log_index: int) -> CursorLog:
    return CursorLog(
        address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        topics=("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",),
        data="0x" + "00" * 31 + "05",
        block_number=block_number,
        block_hash=block_hash,
        transaction_hash="0x" + "ab" * 32,
        transaction_index=0,
        log_index=log_index,
    )


STATE = CursorState(
    position=CursorPosition(8, HASH_8, log_index=1),
    blocks=(
        CursorBlock(7, HASH_7),
        CursorBlock(8, HASH_8, (transfer_log(8, HASH_8, 0), transfer_log(8, HASH_8, 1))),
    ),
)


async def test_a_new_stream_name_loads_an_empty_state(tmp_path: Path) -> None:
    async with SqliteEventCursor(tmp_path / "events.sqlite", "validator") as cursor:
        assert await cursor.load() == CursorState()


async def test_a_saved_state_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    async with SqliteEventCursor(path, "validator") as cursor:
        await cursor.save(STATE)
    async with SqliteEventCursor(path, "validator") as reopened:
        assert await reopened.load() == STATE


async def test_save_replaces_the_whole_state(tmp_path: Path) -> None:
    rewound = CursorState(CursorPosition(7, HASH_7), (CursorBlock(7, HASH_7),))
    async with SqliteEventCursor(tmp_path / "events.sqlite", "validator") as cursor:
        await cursor.save(STATE)
        await cursor.save(rewound)
        assert await cursor.load() == rewound


async def test_streams_sharing_a_file_keep_separate_positions(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    async with SqliteEventCursor(path, "validator") as validator, SqliteEventCursor(path, "agent") as agent:
        await validator.save(STATE)
        assert await agent.load() == CursorState()
        assert await validator.load() == STATE


async def test_effects_commit_in_the_same_transaction_on_a_durable_connection(tmp_path: Path) -> None:
    settings: list[object] = []

    def effects(db: sqlite3.Connection) -> None:
        settings.extend(db.execute("PRAGMA synchronous").fetchone())
        db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY)")
        db.execute("INSERT INTO seen VALUES ('a')")

    path = tmp_path / "events.sqlite"
    async with SqliteEventCursor(path, "validator") as cursor:
        await cursor.save(STATE, effects)
    assert settings == [2]  # FULL: a commit is on disk when save returns
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT key FROM seen").fetchall() == [("a",)]


async def test_failing_effects_write_nothing_and_propagate_unchanged(tmp_path: Path) -> None:
    def effects(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY)")
        raise KeyError("the consumer's own failure")

    async with SqliteEventCursor(tmp_path / "events.sqlite", "validator") as cursor:
        with pytest.raises(KeyError, match="own failure"):
            await cursor.save(STATE, effects)
        assert await cursor.load() == CursorState()
        await cursor.save(STATE, lambda db: db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY)"))
        assert await cursor.load() == STATE


async def test_malformed_rows_raise_a_cursor_error(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    async with SqliteEventCursor(path, "validator") as cursor:
        await cursor.save(STATE)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE event_cursor_block SET logs = '[{\"address\": 1}]'")
    async with SqliteEventCursor(path, "validator") as reopened:
        with pytest.raises(EventCursorError, match="malformed logs"):
            await reopened.load()


async def test_a_path_that_cannot_hold_a_database_raises_a_cursor_error(tmp_path: Path) -> None:
    async with SqliteEventCursor(tmp_path, "validator") as cursor:  # a directory
        with pytest.raises(EventCursorError) as caught:
            await cursor.load()
    assert caught.value.path == str(tmp_path)
