"""Group commit on its own: one SQLite COMMIT per turn of the loop, and what each member sees
when a block or the COMMIT fails."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.groupcommit import GroupCommit, after_commit, alone


@pytest.fixture
def db_path(tmp_path) -> Iterator[Path]:
    path = tmp_path / "g.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    yield path


@pytest.fixture
def writer(db_path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def committed(path: Path) -> list[str]:
    """What another connection sees: only what is committed."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return sorted(row[0] for row in conn.execute("SELECT text FROM notes"))


def fail_next_commit(conn: sqlite3.Connection) -> list[str]:
    """The next COMMIT on `conn` fails (as a full disk would fail it); returns a list that
    records every COMMIT tried."""
    tried: list[str] = []
    armed = [True]

    def authorize(action: int, arg1: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_TRANSACTION and arg1 == "COMMIT":
            tried.append("COMMIT")
            if armed[0]:
                armed[0] = False
                return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    conn.set_authorizer(authorize)
    return tried


async def note(commits: GroupCommit, conn: sqlite3.Connection, text: str, *,
               fail: bool = False, hold: asyncio.Event | None = None,
               ran: list[str] | None = None) -> None:
    async with commits.transaction():
        conn.execute("INSERT INTO notes (text) VALUES (?)", (text,))
        if ran is not None:
            after_commit(lambda: ran.append(text))
        if hold is not None:
            await hold.wait()
        if fail:
            raise RuntimeError(f"{text} failed")


async def test_the_members_of_one_turn_commit_together(writer, db_path):
    commits = GroupCommit(writer)
    seen: list[str] = []
    writer.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    await asyncio.gather(*(note(commits, writer, f"n{i}") for i in range(5)))
    assert committed(db_path) == [f"n{i}" for i in range(5)] and seen == ["COMMIT"]


async def test_a_member_that_raises_rolls_back_alone(writer, db_path):
    commits = GroupCommit(writer)
    results = await asyncio.gather(note(commits, writer, "a"),
                                   note(commits, writer, "b", fail=True),
                                   note(commits, writer, "c"), return_exceptions=True)
    assert isinstance(results[1], RuntimeError) and results[0] is None and results[2] is None
    assert committed(db_path) == ["a", "c"]


async def test_after_commit_callbacks_run_after_the_commit_and_only_for_members_kept(
        writer, db_path):
    commits = GroupCommit(writer)
    ran: list[str] = []
    seen_at_callback: list[list[str]] = []

    async def member() -> None:
        async with commits.transaction():
            writer.execute("INSERT INTO notes (text) VALUES ('x')")
            after_commit(lambda: seen_at_callback.append(committed(db_path)))

    await asyncio.gather(member(), note(commits, writer, "y", fail=True, ran=ran),
                         return_exceptions=True)
    assert seen_at_callback == [["x"]] and ran == []


async def test_a_failed_commit_fails_every_member_and_the_next_group_starts_clean(
        writer, db_path):
    commits = GroupCommit(writer)
    fail_next_commit(writer)
    ran: list[str] = []
    results = await asyncio.gather(note(commits, writer, "a", ran=ran),
                                   note(commits, writer, "b", ran=ran), return_exceptions=True)
    assert all(isinstance(r, sqlite3.DatabaseError) for r in results), results
    assert committed(db_path) == [] and ran == [] and not writer.in_transaction
    await note(commits, writer, "c")
    assert committed(db_path) == ["c"]


async def test_a_transaction_alone_commits_by_itself_and_lets_the_open_group_commit_first(
        writer, db_path):
    commits = GroupCommit(writer)
    tried = fail_next_commit(writer)  # the group's COMMIT fails; the lone one must not share it
    grouped = asyncio.create_task(note(commits, writer, "grouped"))
    await asyncio.sleep(0)  # its block is done; its group waits for the end of the turn
    with alone():
        await note(commits, writer, "alone")
    with pytest.raises(sqlite3.DatabaseError):
        await grouped
    assert committed(db_path) == ["alone"] and tried == ["COMMIT", "COMMIT"]


async def test_a_waiter_cancelled_as_the_lock_reaches_it_still_lets_the_group_commit(
        writer, db_path):
    commits = GroupCommit(writer)
    gate = asyncio.Event()
    first = asyncio.create_task(note(commits, writer, "a", hold=gate))
    await asyncio.sleep(0)
    second = asyncio.create_task(note(commits, writer, "b"))
    await asyncio.sleep(0)
    gate.set()
    asyncio.get_running_loop().call_soon(second.cancel)  # after a's step, before b's
    await asyncio.gather(second, return_exceptions=True)
    done, _ = await asyncio.wait({first}, timeout=2.0)
    assert first in done and committed(db_path) == ["a"]


async def test_close_with_a_block_open_undoes_that_block_and_commits_the_rest(
        writer, db_path):
    commits = GroupCommit(writer)
    inside = asyncio.Event()
    done = asyncio.create_task(note(commits, writer, "done"))

    async def stray() -> None:
        async with commits.transaction():
            writer.execute("INSERT INTO notes (text) VALUES ('stray')")
            inside.set()
            await asyncio.Event().wait()

    open_block = asyncio.create_task(stray())
    await inside.wait()
    commits.close()
    await done
    open_block.cancel()
    await asyncio.gather(open_block, return_exceptions=True)
    assert committed(db_path) == ["done"] and not writer.in_transaction
