"""The SQLite connections, transactions and numbered migrations.

Writes go through one connection guarded by a lock (a transaction spans awaits, so two must
not interleave on one connection); reads outside a transaction use a second connection that
sees the last commit (WAL). Inside a transaction every statement, reads included, runs on the
write connection so the transaction sees its own changes.
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

Row = sqlite3.Row
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

    @property
    def locked(self) -> bool:
        return self._locked


WRITE_BUSY_MS = 100  # see Database.open
GROUP_MAX = 200  # transactions committed together at most (see Database.transaction)


class _Group:
    """Transactions that commit together: their after-commit callbacks, a future for all."""

    __slots__ = ("committed", "callbacks", "members", "scheduled")

    def __init__(self, committed: asyncio.Future[None]) -> None:
        self.committed = committed
        self.callbacks: list[Callable[[], None]] = []
        self.members = 0
        self.scheduled = False

    def fail(self, exc: BaseException) -> None:
        """Every member's block raises `exc` (the group's work is rolled back)."""
        if not self.committed.done():
            self.committed.set_exception(exc)
            self.committed.exception()  # retrieved: members may all have been cancelled


class Database:
    """An open SQLite store: `execute`/`fetchone`/`fetchall` and `transaction()`.

    Statements run synchronously in the event loop's thread on plain `sqlite3` connections:
    one for writes (every transaction, under the write lock), one for reads outside a
    transaction (it sees the last commit; WAL). Each statement takes microseconds; a round
    trip to a connection thread waits for a turn of the busy event loop instead (8–10 ms per
    transaction under a burst, measured, docs/benchmarks.md), and a transaction holds the
    write lock through all of its round trips. Long reads (reports, exports) run on
    aiosqlite's thread (`fetchall_long`) so that the loop goes on answering meanwhile.

    The write connection checkpoints the WAL itself (SQLite's default, every 1,000 pages, a
    few milliseconds in a commit). PASSIVE checkpoints on another thread, racing the commits,
    never find the log fully copied at the start of a write, so the log never restarts:
    under a burst it grew to 165 MB and every read slowed 3–10 fold. RESTART checkpoints on
    another thread keep it small but hold every writer back while they run: the submit burst
    took 25 % longer (all measured, docs/benchmarks.md).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._write: sqlite3.Connection | None = None
        self._read: sqlite3.Connection | None = None
        self._background: aiosqlite.Connection | None = None
        self._lock = _WriteLock()
        self._group: _Group | None = None  # the open shared transaction (group commit)
        self._commit_at_release = False

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._write = _connect(self.path)
        self._write.execute("PRAGMA journal_mode=WAL")
        await self.migrate()
        if self.path == ":memory:":  # one private database: everything on one connection
            self._read = self._write
            return
        # Once BEGIN IMMEDIATE holds the write lock a statement is hardly ever busy (WAL);
        # if one is, a short wait beats failing the update's work.
        self._write.execute(f"PRAGMA busy_timeout={WRITE_BUSY_MS}")
        self._read = _connect(self.path)
        self._background = await aiosqlite.connect(self.path, isolation_level=None)
        self._background.row_factory = aiosqlite.Row
        await self._background.execute("PRAGMA busy_timeout=5000")

    async def close(self) -> None:
        if self._group is not None:
            if self._lock.locked and self._write is not None and self._write.in_transaction:
                # a block still in its body (a stray task): its part is undone, the rest
                # of the group committed
                with contextlib.suppress(sqlite3.OperationalError):
                    self._write.execute("ROLLBACK TO tx")
                    self._write.execute("RELEASE tx")
            self._commit_group()
        if self._background is not None:
            await self._background.close()
        for conn in {id(c): c for c in (self._read, self._write) if c is not None}.values():
            conn.close()
        self._read = self._write = self._background = None

    async def migrate(self) -> int:
        """Apply every migration newer than `PRAGMA user_version`, each in one transaction."""
        conn = self._write
        assert conn is not None
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for number, name, sql in _migrations():
            if number <= version:
                continue
            logger.info("applying migration %s", name)
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
            version = number
        return version

    def _conn(self) -> sqlite3.Connection:
        conn = self._write if _in_transaction.get() else self._read
        if conn is None:
            raise RuntimeError("the database is not open")
        return conn

    @property
    def in_transaction(self) -> bool:
        return _in_transaction.get()

    @asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[None]:
        """One write transaction; nested use joins the outer one. `urgent` ones take the
        next turn on the write lock (short bookkeeping only).

        Group commit: each transaction is a savepoint in a shared SQLite transaction that
        commits at the end of the event loop's turn (or at `GROUP_MAX` members), so a burst
        of handlers writes each page of the log once per turn instead of once each (a
        commit per Submit was a third of its store time). Leaving the block waits for that
        commit: a caller never goes on before its changes are durable, and a failed commit
        fails every member. A member that fails alone rolls back to its savepoint only."""
        if _in_transaction.get():
            yield
            return
        conn = self._write
        assert conn is not None, "the database is not open"
        callbacks: list[Callable[[], None]] = []
        try:
            await self._lock.acquire(urgent)
        except BaseException:
            # cancelled as the lock was handed over: the end of the turn may have left the
            # group's commit to whoever held the lock, which was this waiter
            if self._commit_at_release and not self._lock.locked and self._group is not None:
                self._commit_group()
            raise
        try:
            if self._group is None:
                await self._begin(conn)
                self._group = _Group(asyncio.get_running_loop().create_future())
            group = self._group
            conn.execute("SAVEPOINT tx")
            token = _in_transaction.set(True)
            hooks = _after_commit.set(callbacks)
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK TO tx")
                    conn.execute("RELEASE tx")
                else:  # SQLite rolled the whole transaction back (disk full, I/O error)
                    self._fail_group(sqlite3.OperationalError("the transaction was rolled back"))
                raise
            else:
                conn.execute("RELEASE tx")
                group.callbacks += callbacks
                group.members += 1
            finally:
                _in_transaction.reset(token)
                _after_commit.reset(hooks)
        finally:
            if self._group is not None:
                if self._commit_at_release or self._group.members >= GROUP_MAX or \
                        self.path == ":memory:":  # (one connection: reads see the group)
                    self._commit_group()
                elif not self._group.scheduled:
                    self._group.scheduled = True
                    asyncio.get_running_loop().call_soon(self._end_of_turn)
            self._lock.release()
        await asyncio.shield(group.committed)

    def _end_of_turn(self) -> None:
        """The loop's turn is over: commit the group, or have the member that holds the
        lock (its block awaited something real) commit it as it leaves."""
        if self._lock.locked:
            self._commit_at_release = True
        elif self._group is not None:
            self._commit_group()

    def _commit_group(self) -> None:
        group, self._group = self._group, None
        self._commit_at_release = False
        assert group is not None and self._write is not None
        try:
            self._write.execute("COMMIT")
        except Exception as exc:
            try:
                if self._write.in_transaction:
                    self._write.execute("ROLLBACK")
            finally:
                group.fail(exc)
            return
        group.committed.set_result(None)
        for callback in group.callbacks:
            try:
                callback()
            except Exception:
                logger.exception("an after-commit callback failed")

    def _fail_group(self, exc: BaseException) -> None:
        group, self._group = self._group, None
        self._commit_at_release = False
        if group is not None:
            group.fail(exc)

    async def _begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE; while another process holds the write lock, wait without
        blocking the loop (no busy timeout for this statement), for up to 5 s."""
        delay, waited = 0.001, 0.0
        while True:
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or waited >= 5.0:
                    raise
            finally:
                conn.execute(f"PRAGMA busy_timeout={WRITE_BUSY_MS}")
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.05)

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
        return _lastrowid(self._conn(), sql, params)

    async def execute_rowcount(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        if not _in_transaction.get():
            async with self.transaction():
                return await self.execute_rowcount(sql, params)
        return _rowcount(self._conn(), sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if not _in_transaction.get():
            async with self.transaction():
                return await self.executemany(sql, rows)
        _many(self._conn(), sql, list(rows))

    async def fetchone(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        # Run to the end at once: a cursor left open would hold a read snapshot.
        cur = self._conn().execute(sql, params)
        try:
            return cur.fetchall()
        finally:
            cur.close()

    async def fetchall_long(self, sql: str,
                            params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        """A read that may take long (a month's report, an export): on aiosqlite's thread,
        so the loop goes on answering meanwhile. Inside a transaction it must see the
        transaction's own changes, so it runs there."""
        if _in_transaction.get() or self._background is None:
            return await self.fetchall(sql, params)
        return list(await self._background.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
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
