"""Group commit: the transactions of one turn of the event loop share one SQLite COMMIT.

Every write transaction is a savepoint in a shared SQLite transaction on the one write
connection, and that transaction commits at the end of the event loop's turn (or at
`GROUP_MAX` members). A burst of handlers then writes each page of the log once per turn
instead of once each (a commit per Submit was a third of its store time, docs/benchmarks.md).

- A member's block is left only once the group's COMMIT has succeeded: a caller never goes on
  before its changes are durable. Its after-commit callbacks run after that COMMIT.
- A member whose block raises rolls back to its savepoint: the rest of the group commits.
- A failed COMMIT fails every member (SQLite rolled the whole group back). Work that must
  not wait for a restart is then done again `alone()`: in its own transaction, committed by
  itself, so one member's fault cannot undo it a second time.
- Members hold the write lock one at a time (a transaction spans awaits, so two must not
  interleave on one connection); `urgent` ones take the next turn.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from storage.backoff import Backoff

logger = logging.getLogger(__name__)

GROUP_MAX = 200  # transactions committed together at most
WRITE_BUSY_MS = 100  # the writer's busy timeout (none while it begins a transaction)
BEGIN_WAIT_S = 5.0  # how long BEGIN waits for another process's write transaction

_in_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar("in_tx", default=False)
_after_commit: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "after_commit", default=None)
_alone: contextvars.ContextVar[bool] = contextvars.ContextVar("alone", default=False)


def in_transaction() -> bool:
    """The current task is inside a write transaction (its statements go to the writer)."""
    return _in_transaction.get()


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Transactions opened inside commit each by itself, in no group: used to redo the work
    of a group whose COMMIT failed (another member's fault must not undo it again)."""
    token = _alone.set(True)
    try:
        yield
    finally:
        _alone.reset(token)


def is_alone() -> bool:
    """Inside `alone()`."""
    return _alone.get()


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current transaction commits (at once outside one)."""
    callbacks = _after_commit.get()
    if callbacks is None or not _in_transaction.get():
        callback()
    else:
        callbacks.append(callback)


class Slots:
    """At most `size` holders at once, FIFO, but urgent waiters go first.

    The write lock (one slot): short bookkeeping transactions that unblock much other work
    (the outbox recording what went out, the intake storing a batch of updates before
    confirming it) must not queue behind a burst of handlers' transactions. The intake's
    handler slots: a tap must not wait behind a burst of messages (bot.intake)."""

    def __init__(self, size: int = 1) -> None:
        self._free = size
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, urgent: bool = False) -> None:
        if self._free > 0 and not self._urgent and not self._normal:
            self._free -= 1
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
                    waiter.set_result(None)  # the slot passes on, still taken
                    return
        self._free += 1

    @asynccontextmanager
    async def taken(self, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent)
        try:
            yield
        finally:
            self.release()

    @property
    def locked(self) -> bool:
        """No slot is free."""
        return self._free == 0

    @property
    def waiting(self) -> int:
        """Tasks waiting for a slot."""
        return len(self._urgent) + len(self._normal)


#: the one writer's turn: a single slot
WriteLock = Slots


class _Group:
    """Transactions that commit together: their after-commit callbacks, a future for all."""

    __slots__ = ("committed", "callbacks", "members", "scheduled", "alone")

    def __init__(self, committed: asyncio.Future[None], alone: bool) -> None:
        self.committed = committed
        self.callbacks: list[Callable[[], None]] = []
        self.members = 0
        self.scheduled = False
        self.alone = alone  # one member, committed as it leaves

    def fail(self, exc: BaseException) -> None:
        """Every member's block raises `exc` (the group's work is rolled back)."""
        if not self.committed.done():
            self.committed.set_exception(exc)
            self.committed.exception()  # retrieved: members may all have been cancelled


class GroupCommit:
    """The write connection's transactions, committed in groups (see the module's text).

    `each_alone`: every transaction commits as it leaves (an in-memory database has one
    connection, so reads would see a group's uncommitted work)."""

    def __init__(self, conn: sqlite3.Connection, *, each_alone: bool = False,
                 max_members: int = GROUP_MAX) -> None:
        self._conn = conn
        self._each_alone = each_alone
        self._max_members = max_members
        self._lock = WriteLock()
        self._group: _Group | None = None  # the open shared transaction
        self._commit_at_release = False

    @asynccontextmanager
    async def transaction(self, urgent: bool = False) -> AsyncIterator[None]:
        """One write transaction; nested use joins the outer one. `urgent` ones take the
        next turn on the write lock (short bookkeeping only)."""
        if _in_transaction.get():
            yield
            return
        conn = self._conn
        solo = self._each_alone or _alone.get()
        callbacks: list[Callable[[], None]] = []
        try:
            await self._lock.acquire(urgent)
        except BaseException:
            # cancelled as the lock was handed over: the end of the turn may have left the
            # group's commit to whoever held the lock, which was this waiter
            if self._commit_at_release and not self._lock.locked and self._group is not None:
                self._commit()
            raise
        try:
            if solo and self._group is not None:
                self._commit()  # the others' group goes first: this one is on its own
            if self._group is None:
                await self._begin()
                self._group = _Group(asyncio.get_running_loop().create_future(), solo)
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
                    self._fail(sqlite3.OperationalError("the transaction was rolled back"))
                raise
            else:
                conn.execute("RELEASE tx")
                group.callbacks += callbacks
                group.members += 1
            finally:
                _in_transaction.reset(token)
                _after_commit.reset(hooks)
        finally:
            current = self._group
            if current is not None:
                if self._commit_at_release or current.alone or \
                        current.members >= self._max_members:
                    self._commit()
                elif not current.scheduled:
                    current.scheduled = True
                    asyncio.get_running_loop().call_soon(self._end_of_turn)
            self._lock.release()
        await asyncio.shield(group.committed)

    def close(self) -> None:
        """Commit the open group; a block still in its body (a stray task) is undone."""
        if self._group is None:
            return
        if self._lock.locked and self._conn.in_transaction:
            with contextlib.suppress(sqlite3.OperationalError):
                self._conn.execute("ROLLBACK TO tx")
                self._conn.execute("RELEASE tx")
        self._commit()

    def _end_of_turn(self) -> None:
        """The loop's turn is over: commit the group, or have the member that holds the
        lock (its block awaited something real) commit it as it leaves."""
        if self._lock.locked:
            self._commit_at_release = True
        elif self._group is not None:
            self._commit()

    def _commit(self) -> None:
        group, self._group = self._group, None
        self._commit_at_release = False
        assert group is not None
        try:
            self._conn.execute("COMMIT")
        except Exception as exc:
            logger.warning("a group of %d transactions failed to commit: %s", group.members,
                           exc)
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            finally:
                group.fail(exc)
            return
        group.committed.set_result(None)
        for callback in group.callbacks:
            try:
                callback()
            except Exception:
                logger.exception("an after-commit callback failed")

    def _fail(self, exc: BaseException) -> None:
        group, self._group = self._group, None
        self._commit_at_release = False
        if group is not None:
            group.fail(exc)

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE; while another process holds the write lock, wait without
        blocking the loop (no busy timeout for this statement), for up to `BEGIN_WAIT_S`."""
        conn = self._conn
        backoff = Backoff(first=0.001, cap=0.05)
        waited = 0.0
        while True:
            conn.execute("PRAGMA busy_timeout=0")
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or waited >= BEGIN_WAIT_S:
                    raise
            finally:
                conn.execute(f"PRAGMA busy_timeout={WRITE_BUSY_MS}")
            delay = backoff.next()
            await asyncio.sleep(delay)
            waited += delay
