"""One leader among the replicas (SPEC §16): it alone sends the outbox and runs the schedules.

On PostgreSQL each replica campaigns on a connection of its own (`storage.leadership.LeaderLock`,
never a pooled one): as a follower it tries the session advisory lock every `retry_interval`;
the one that gets it increments the epoch in `leadership` and starts the leader's parts (the
outbox sender with that epoch, the scheduler, the due watchers, the cards' backlog, the count
of the other replicas' direct replies; `lead`, given by the runtime) and, in webhook mode, sets
the webhook. As the leader it listens for the outbox's notifications on that connection (each
wakes the sender; a poll every `check_interval` s is the safety net) and checks the connection
every `check_interval` s. Any error there, or the sender finding the epoch moved on, fences it
at once: it is no longer the leader, its parts stop (sending in flight cancelled), the
connection closes, and it campaigns again as a follower. A replica killed outright loses its
session and lock on the server (keepalives of a few seconds): another takes over in seconds.

On SQLite the one process is the leader for ever (role "single", epoch 1): its parts start at
once, as they always did, and nothing else runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from enum import StrEnum

from storage.leadership import LeaderLock

logger = logging.getLogger(__name__)

#: starts the leader's parts for an epoch (None: one process, nothing to fence) and pushes
#: their stops onto the stack
Lead = Callable[[int | None, AsyncExitStack], Awaitable[None]]


class Role(StrEnum):
    SINGLE = "single"       # SQLite: the one process
    LEADER = "leader"
    FOLLOWER = "follower"


def replica_id() -> str:
    """This process among the replicas: host, pid and a random part (a pid is reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leadership:
    """Who leads (see the module's text). `url`: the PostgreSQL store's (None: SQLite)."""

    def __init__(self, url: str | None, *, replica: str | None = None,
                 retry_interval: float = 2.0, check_interval: float = 1.0,
                 check_timeout: float = 2.0,
                 notified: Callable[[], None] = lambda: None,
                 poll: Callable[[], None] = lambda: None) -> None:
        """`notified`: an outbox notification came (the sender reads what is new); `poll`:
        every `check_interval` s while leading (the sender reads what it may have missed)."""
        self.url = url
        self.replica = replica or replica_id()
        self.retry_interval = retry_interval
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.notified = notified
        self.poll = poll
        self.role = Role.SINGLE if url is None else Role.FOLLOWER
        self.epoch: int | None = 1 if url is None else None
        #: true while the parts stop because the lead was lost (sending in flight is cut)
        self.abrupt = False
        self._lead: Lead | None = None
        self._lock: LeaderLock | None = None
        self._parts: AsyncExitStack | None = None
        self._task: asyncio.Task[None] | None = None
        self._fencing: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._telling: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[Role, int | None], None]] = []

    # what the others read

    def is_leader(self) -> bool:
        return self.role in (Role.LEADER, Role.SINGLE)

    @property
    def lock_pid(self) -> int | None:
        """The server process holding our lock connection (tests cut it)."""
        return None if self._lock is None else self._lock.backend_pid

    def on_change(self, listener: Callable[[Role, int | None], None]) -> None:
        self._listeners.append(listener)

    async def wait_for(self, role: Role, timeout: float | None = None,
                       after: int | None = None) -> int | None:
        """Wait until this replica has `role` (with an epoch above `after`); its epoch."""
        def reached() -> bool:
            return self.role == role and (after is None or (self.epoch or 0) > after)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(reached)
            return self.epoch

    # life

    async def start(self, lead: Lead) -> None:
        """SQLite: lead now. PostgreSQL: one try now (a lone replica leads before this
        returns), then campaign in the background."""
        self._lead = lead
        if self.url is None:
            logger.info("leading alone (SQLite): role %s, epoch %s", self.role, self.epoch)
            self._parts = AsyncExitStack()
            try:
                await lead(None, self._parts)
            except BaseException:
                parts, self._parts = self._parts, None
                await parts.aclose()  # what had started stops
                raise
            return
        try:
            await self._try()
        except Exception as exc:
            await self._step_down(f"first try failed: {exc}")
        if self.role != Role.LEADER:
            logger.info("follower (replica %s): another replica leads; trying every %.0f s",
                        self.replica, self.retry_interval)
        self._task = asyncio.create_task(self._campaign(), name="gridhorn:leadership")

    async def stop(self) -> None:
        for task in (self._fencing, self._task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._fencing = None
        if self.role == Role.LEADER:
            self._set(Role.FOLLOWER, self.epoch)
            logger.info("stepping down as the leader of epoch %s (stopping)", self.epoch)
        parts, self._parts = self._parts, None
        try:
            if parts is not None:
                await parts.aclose()
        finally:
            if self._lock is not None:
                await self._lock.close()
                self._lock = None

    def fence(self, reason: str) -> None:
        """Stop leading at once (the sender found another replica's epoch); from any task."""
        if self.role != Role.LEADER or (self._fencing is not None and not self._fencing.done()):
            return
        self._fencing = asyncio.get_running_loop().create_task(self._fence(reason))

    async def _fence(self, reason: str) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._step_down(reason)
        self._task = asyncio.create_task(self._campaign(), name="gridhorn:leadership")

    # the protocol

    async def _campaign(self) -> None:
        while True:
            try:
                if self.role == Role.LEADER:
                    await self._watch()
                else:
                    await asyncio.sleep(self.retry_interval)
                    await self._try()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                first = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
                await self._step_down(f"{type(exc).__name__}: {first}".strip())

    async def _try(self) -> None:
        """As a follower: try the lock once; won, take over."""
        if self._lock is None:
            assert self.url is not None
            lock = LeaderLock(self.url)
            self._lock = lock
            await lock.connect()
        lock = self._lock
        if not await lock.try_lock():
            return
        epoch = await lock.take_over(self.replica)
        await lock.listen()
        self._set(Role.LEADER, epoch)
        assert self._lead is not None
        self._parts = AsyncExitStack()
        await self._lead(epoch, self._parts)

    async def _watch(self) -> None:
        """As the leader: wake the sender on each notification and every interval, and see
        that the lock's connection answers. Raises when it does not."""
        lock = self._lock
        assert lock is not None
        checked = time.monotonic()
        while True:
            if await lock.wait(self.check_interval):
                self.notified()
            now = time.monotonic()
            if now - checked >= self.check_interval:
                await lock.check(self.check_timeout)
                checked = now
                self.poll()

    async def _step_down(self, reason: str) -> None:
        """Fence: no longer the leader, the parts stopped (in-flight sending cut), the
        connection closed (the server frees the lock, if it still held it)."""
        was = self.role == Role.LEADER
        if was:
            self._set(Role.FOLLOWER, self.epoch)
            logger.warning("fenced: no longer the leader of epoch %s (%s)", self.epoch, reason)
        elif self._lock is not None:
            logger.info("campaign for the lead interrupted (%s); trying again", reason)
        parts, self._parts = self._parts, None
        if parts is not None:
            self.abrupt = True
            try:
                await parts.aclose()
            except Exception:
                logger.exception("stopping the leader's parts failed")
            finally:
                self.abrupt = False
        lock, self._lock = self._lock, None
        if lock is not None:
            await lock.close()

    def _set(self, role: Role, epoch: int | None) -> None:
        self.role, self.epoch = role, epoch
        if role == Role.LEADER:
            logger.info("leader now, epoch %s (replica %s)", epoch, self.replica)
        for listener in self._listeners:
            try:
                listener(role, epoch)
            except Exception:
                logger.exception("a leadership listener failed")
        told = asyncio.get_running_loop().create_task(self._tell())
        self._telling.add(told)
        told.add_done_callback(self._telling.discard)

    async def _tell(self) -> None:
        async with self._changed:
            self._changed.notify_all()
