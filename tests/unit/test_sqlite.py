"""staking.sqlite.SqliteFile: versioned schemas, translated errors, and group commits that behave like serial ones."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from staking.sqlite import Schema, SqliteFile

SCHEMA = Schema(1, ["CREATE TABLE item (n INTEGER PRIMARY KEY, label TEXT NOT NULL)"])


class StoreError(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def store(path: Path, schema: Schema = SCHEMA) -> SqliteFile:
    return SqliteFile(path, schema, name="test", error=StoreError)


def insert(n: int, label: str = "x") -> object:
    def work(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO item VALUES (?, ?)", (n, label))
        return n

    return work


def count(connection: sqlite3.Connection) -> int:
    return int(connection.execute("SELECT COUNT(*) FROM item").fetchone()[0])


async def test_concurrent_writes_commit_in_groups_and_each_failure_undoes_only_itself(tmp_path: Path) -> None:
    file = store(tmp_path / "a" / "store.sqlite")
    commits = 0

    def counting(connection: sqlite3.Connection) -> None:
        nonlocal commits
        commits += 1

    try:
        await file.run(lambda connection: connection.set_trace_callback(
            lambda statement: counting(connection) if statement == "COMMIT" else None
        ))  # fmt: skip
        # 200 writes at once, every 10th repeating the key of the one before: those fail, alone.
        works = [insert(n - 1 if n % 10 == 9 else n) for n in range(200)]
        results = await asyncio.gather(*(file.write(work) for work in works), return_exceptions=True)  # type: ignore[arg-type]
        failures = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(f, StoreError) and "UNIQUE" in str(f) for f in failures)
        assert len(failures) == 20
        assert [r for r in results if not isinstance(r, BaseException)] == [n for n in range(200) if n % 10 != 9]
        assert await file.run(count) == 180
        assert commits < 100  # grouped: far fewer disk syncs than writes
    finally:
        await file.close()


async def test_a_write_sees_the_writes_queued_before_it(tmp_path: Path) -> None:
    file = store(tmp_path / "store.sqlite")
    try:
        first = file.write(insert(1, "first"))
        second = file.write(lambda connection: connection.execute("SELECT label FROM item WHERE n = 1").fetchone())
        assert await asyncio.gather(first, second) == [1, ("first",)]
    finally:
        await file.close()


async def test_an_exception_of_the_work_itself_propagates_as_it_is(tmp_path: Path) -> None:
    file = store(tmp_path / "store.sqlite")

    def fails(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO item VALUES (7, 'gone')")
        raise LookupError("no such thing")

    try:
        with pytest.raises(LookupError, match="no such thing"):
            await file.write(fails)
        assert await file.run(count) == 0
    finally:
        await file.close()


async def test_writes_survive_reopening_and_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    file = store(path)
    await file.write(insert(1))
    await file.close()
    reopened = store(path)
    assert await reopened.run(count) == 1
    await reopened.close()
    newer = store(path, Schema(2, SCHEMA.statements))
    with pytest.raises(StoreError, match="schema version 1; this program reads version 2"):
        await newer.open()
    await newer.close()


async def test_initialize_runs_once_and_check_runs_at_every_open(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    seen: list[str] = []
    schema = Schema(
        1,
        SCHEMA.statements,
        initialize=lambda connection: seen.append("initialize"),
        check=lambda connection: seen.append("check"),
    )
    for _ in range(2):
        file = store(path, schema)
        await file.open()
        await file.close()
    assert seen == ["initialize", "check", "check"]
