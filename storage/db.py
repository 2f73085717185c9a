"""The SQLite connections, transactions and numbered migrations.

Writes go through one connection, one transaction at a time, committed in groups
(storage/groupcommit.py); reads outside a transaction use a second connection that sees the
last commit (WAL). Inside a transaction every statement, reads included, runs on the write
connection so the transaction sees its own changes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from storage.dbapi import Dialect, Params, Row
from storage.groupcommit import (
    WRITE_BUSY_MS,
    GroupCommit,
    after_commit,
    alone,
    in_transaction,
)

logger = logging.getLogger(__name__)
#: the first line of a migration that rebuilds a table (SQLite: foreign keys off meanwhile)
_FOREIGN_KEYS_OFF = "-- gridhorn: foreign_keys=off"


def _migrations() -> list[tuple[int, str, str]]:
    """Numbered SQL files `NNN_name.sql`, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class SqliteDatabase:
    """An open SQLite store: `execute`/`fetchone`/`fetchall` and `transaction()`.

    Statements run synchronously in the event loop's thread on plain `sqlite3` connections:
    one for writes (every transaction, one at a time, committed in groups), one for reads
    outside a transaction (it sees the last commit; WAL). Each statement takes microseconds;
    a round trip to a connection thread would wait for a turn of the busy event loop instead
    (8–10 ms per transaction under a burst, measured, docs/benchmarks.md). Long reads
    (reports, exports) run on aiosqlite's thread (`fetchall_long`) so that the loop goes on
    answering meanwhile.

    The write connection checkpoints the WAL itself (SQLite's default, every 1,000 pages, a
    few milliseconds in a commit). PASSIVE checkpoints on another thread, racing the commits,
    never find the log fully copied at the start of a write, so the log never restarts:
    under a burst it grew to 165 MB and every read slowed 3–10 fold. RESTART checkpoints on
    another thread keep it small but hold every writer back while they run: the submit burst
    took 25 % longer (all measured, docs/benchmarks.md).
    """

    dialect: Dialect = "sqlite"
    handler_slots = 64  # updates handled at once (bot.intake); their writes take turns

    def __init__(self, path: str) -> None:
        self.path = path
        self._write: sqlite3.Connection | None = None
        self._read: sqlite3.Connection | None = None
        self._background: aiosqlite.Connection | None = None
        self._commits: GroupCommit | None = None

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._write = _connect(self.path)
        self._write.execute("PRAGMA journal_mode=WAL")
        await self.migrate()
        if self.path == ":memory:":  # one private database: everything on one connection
            self._read = self._write
            self._commits = GroupCommit(self._write, each_alone=True)
            return
        # Once BEGIN IMMEDIATE holds the write lock a statement is hardly ever busy (WAL);
        # if one is, a short wait beats failing the update's work.
        self._write.execute(f"PRAGMA busy_timeout={WRITE_BUSY_MS}")
        self._commits = GroupCommit(self._write)
        self._read = _connect(self.path)
        self._background = await aiosqlite.connect(self.path, isolation_level=None)
        self._background.row_factory = aiosqlite.Row
        await self._background.execute("PRAGMA busy_timeout=5000")

    async def close(self) -> None:
        if self._commits is not None:
            self._commits.close()
            self._commits = None
        if self._background is not None:
            await self._background.close()
        for conn in {id(c): c for c in (self._read, self._write) if c is not None}.values():
            conn.close()
        self._read = self._write = self._background = None

    async def migrate(self) -> int:
        """Apply every migration newer than `PRAGMA user_version`, each in one transaction."""
        conn = self._write
        assert conn is not None
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for number, name, sql in _migrations():
            if number <= version:
                continue
            logger.info("applying migration %s", name)
            # A table rebuilt (SQLite's way to change a constraint) needs foreign keys off
            # while it is dropped and renamed; they are checked before the commit.
            rebuild = sql.startswith(_FOREIGN_KEYS_OFF)
            if rebuild:
                conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    conn.execute(statement)
                if rebuild and conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise sqlite3.IntegrityError(f"{name} leaves a broken foreign key")
                conn.execute(f"PRAGMA user_version={number}")
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
            finally:
                if rebuild:
                    conn.execute("PRAGMA foreign_keys=ON")
            version = number
        return version

    def _conn(self) -> sqlite3.Connection:
        conn = self._write if in_transaction() else self._read
        if conn is None:
            raise RuntimeError("the database is not open")
        return conn

    @property
    def in_transaction(self) -> bool:
        return in_transaction()

    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[None]:
        """One write transaction, committed with the others of its turn (group commit,
        storage/groupcommit.py); nested use joins the outer one. `urgent` ones take the next
        turn on the write lock (short bookkeeping only)."""
        if self._commits is None:
            raise RuntimeError("the database is not open")
        return self._commits.transaction(urgent)

    @staticmethod
    def alone() -> AbstractContextManager[None]:
        """Transactions opened inside commit each by itself (see `groupcommit.alone`)."""
        return alone()

    async def lock_row(self, table: str, row_id: int) -> None:
        """Nothing to do: a transaction is the one writer of the database until it commits."""

    def notify(self, channel: str) -> None:
        """One process: its listeners are told in memory (after_commit)."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current transaction commits (at once outside one)."""
        after_commit(callback)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement; returns lastrowid (inserts) — joins or opens a transaction."""
        if not in_transaction():
            async with self.transaction():
                return await self.execute(sql, params)
        return _lastrowid(self._conn(), sql, params)

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        if not in_transaction():
            async with self.transaction():
                return await self.execute_rowcount(sql, params)
        return _rowcount(self._conn(), sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if not in_transaction():
            async with self.transaction():
                return await self.executemany(sql, rows)
        _many(self._conn(), sql, list(rows))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        # Run to the end at once: a cursor left open would hold a read snapshot.
        cur = self._conn().execute(sql, params)
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def fetchall_long(self, sql: str,
                            params: Params = ()) -> list[Row]:
        """A read that may take long (a month's report, an export): on aiosqlite's thread,
        so the loop goes on answering meanwhile. Inside a transaction it must see the
        transaction's own changes, so it runs there."""
        if in_transaction() or self._background is None:
            return await self.fetchall(sql, params)
        return list(await self._background.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _lastrowid(conn: sqlite3.Connection, sql: str, params: Any) -> int:
    cur = conn.execute(sql, params)
    try:
        return cur.lastrowid if cur.lastrowid is not None else 0
    finally:
        cur.close()


def _rowcount(conn: sqlite3.Connection, sql: str, params: Any) -> int:
    cur = conn.execute(sql, params)
    try:
        return cur.rowcount
    finally:
        cur.close()


def _many(conn: sqlite3.Connection, sql: str, rows: Any) -> None:
    conn.executemany(sql, rows).close()


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (no semicolons inside our SQL literals or triggers)."""
    statements, current = [], []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        current.append(line)
        if stripped.endswith(";") and sqlite3.complete_statement("\n".join(current)):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements
