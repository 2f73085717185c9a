"""The SQLite connection pair, transactions and numbered migrations.

Writes go through one connection guarded by a lock (aiosqlite does not serialise transactions
across awaits); reads outside a transaction use a second connection that sees the last commit
(WAL). Inside a transaction every statement, reads included, runs on the write connection so
the transaction sees its own changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

logger = logging.getLogger(__name__)

Row = aiosqlite.Row
_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)
_after_commit: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "after_commit", default=None)


def _migrations() -> list[tuple[int, str, str]]:
    """Numbered SQL files `NNN_name.sql`, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class _WriteLock:
    """A FIFO lock whose urgent waiters go first.

    Short bookkeeping transactions that unblock much other work (the outbox recording what
    went out, the intake storing a batch of updates before confirming it) must not queue
    behind a burst of handlers' transactions: they take the next turn.
    """

    def __init__(self) -> None:
        self._locked = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, urgent: bool = False) -> None:
        if not self._locked and not self._urgent and not self._normal:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the turn was handed over just as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the lock passes on, still held
                    return
        self._locked = False


class Database:
    """An open SQLite store: `execute`/`fetchone`/`fetchall` and `transaction()`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._write: aiosqlite.Connection | None = None
        self._read: aiosqlite.Connection | None = None
        self._lock = _WriteLock()

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._write = await self._connect()
        await self._write.execute("PRAGMA journal_mode=WAL")
        await self.migrate()
        self._read = await self._connect() if self.path != ":memory:" else self._write

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        await conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    async def close(self) -> None:
        for conn in {id(c): c for c in (self._read, self._write) if c is not None}.values():
            await conn.close()
        self._read = self._write = None

    async def migrate(self) -> int:
        """Apply every migration newer than `PRAGMA user_version`, each in one transaction."""
        assert self._write is not None
        async with self._write.execute("PRAGMA user_version") as cur:
            (version,) = await cur.fetchone()  # type: ignore[misc]
        for number, name, sql in _migrations():
            if number <= version:
                continue
            logger.info("applying migration %s", name)
            await self._write.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    await self._write.execute(statement)
                await self._write.execute(f"PRAGMA user_version={number}")
                await self._write.execute("COMMIT")
            except Exception:
                await self._write.execute("ROLLBACK")
                raise
            version = number
        return version

    def _conn(self) -> aiosqlite.Connection:
        conn = self._write if _in_transaction.get() else self._read
        if conn is None:
            raise RuntimeError("the database is not open")
        return conn

    @property
    def in_transaction(self) -> bool:
        return _in_transaction.get()

    @asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[None]:
        """One write transaction (BEGIN IMMEDIATE); nested use joins the outer one.
        `urgent` ones take the next turn on the write lock (short bookkeeping only)."""
        if _in_transaction.get():
            yield
            return
        assert self._write is not None, "the database is not open"
        callbacks: list[Callable[[], None]] = []
        await self._lock.acquire(urgent)
        try:
            token = _in_transaction.set(True)
            hooks = _after_commit.set(callbacks)
            await self._write.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._write.execute("ROLLBACK")
                raise
            else:
                await self._write.execute("COMMIT")
            finally:
                _in_transaction.reset(token)
                _after_commit.reset(hooks)
        finally:
            self._lock.release()
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current transaction commits (at once outside one)."""
        callbacks = _after_commit.get()
        if callbacks is None or not _in_transaction.get():
            callback()
        else:
            callbacks.append(callback)

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one write statement; returns lastrowid (inserts) — joins or opens a transaction."""
        if not _in_transaction.get():
            async with self.transaction():
                return await self.execute(sql, params)
        return await self._write_call(_lastrowid, sql, params)

    async def execute_rowcount(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        if not _in_transaction.get():
            async with self.transaction():
                return await self.execute_rowcount(sql, params)
        return await self._write_call(_rowcount, sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if not _in_transaction.get():
            async with self.transaction():
                return await self.executemany(sql, rows)
        await self._write_call(_many, sql, list(rows))

    async def _write_call(self, run: Callable[[sqlite3.Connection, str, Any], Any], sql: str,
                          params: Any) -> Any:
        """One round trip to the connection's thread: the statement runs and its cursor is
        closed there. (Through aiosqlite's cursor it takes two: execute, then close; inside a
        transaction every round trip waits for a turn of the busy event loop while the write
        lock is held.)"""
        conn = self._conn()
        return await conn._execute(run, conn._conn, sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        # One call on the connection's thread: the statement runs to its end at once. A cursor
        # left open across awaits would hold a read snapshot that other tasks' reads on the
        # same connection then share, and they would miss commits made meanwhile.
        return list(await self._conn().execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


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
        if stripped.endswith(";") and sqlite_complete("\n".join(current)):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements


def sqlite_complete(sql: str) -> bool:
    import sqlite3

    return sqlite3.complete_statement(sql)
