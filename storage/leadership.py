"""One leader among the replicas (SPEC §16): the lock, the epoch and the shared flood counts.

`LeaderLock` is the leader's own PostgreSQL connection (never one of the pool's: a session
advisory lock lives and dies with its connection): it tries the lock, increments the epoch
when it wins, listens for the outbox's notifications and is checked every second. The server
drops the session of a vanished client within seconds (TCP keepalives set for the session),
and with it the lock, so another replica can take over.

`LeadershipRepo` reads the epoch (the outbox's claims compare it in the same statement) and
keeps `direct_sends`, the direct replies of every replica that the leader's flood gate counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from storage.dbapi import Database
from storage.util import epoch as unix_now

#: the leader's advisory lock: the two-key form ("grid", 1), a key space apart from the
#: one-key locks (chat ids, the migration lock), so they can never meet
LOCK_KEYS = (0x6772_6964, 1)
#: the channel a transaction that queued outbox rows notifies after its commit
OUTBOX_CHANNEL = "gridhorn_outbox"
#: the server drops a dead client's session (and its lock) after idle + interval × count s
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 5, 2, 3
CONNECT_TIMEOUT_S = 5


class StaleEpoch(Exception):
    """Another replica took over: this one's claims are no longer valid."""


class LeaderLock:
    """The leader's dedicated connection (see the module's text). Not safe for concurrent
    use: one task drives it. Any error it raises means the connection is gone or unusable."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None  # psycopg.AsyncConnection (psycopg is imported only here)

    @property
    def backend_pid(self) -> int | None:
        """The server process of this session (tests terminate it to cut the leader off)."""
        return None if self._conn is None else int(self._conn.info.backend_pid)

    async def connect(self) -> None:
        import psycopg

        self._conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, prepare_threshold=None,
            connect_timeout=CONNECT_TIMEOUT_S,
            # our side: notice a dead server or network
            keepalives=1, keepalives_idle=KEEPALIVE_IDLE_S,
            keepalives_interval=KEEPALIVE_INTERVAL_S, keepalives_count=KEEPALIVE_COUNT)
        # the server's side: drop our session (and the lock) soon after we vanish
        await self._conn.execute(
            f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE_S}; "
            f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL_S}; "
            f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}; "
            "SET application_name = 'gridhorn leader'")

    async def try_lock(self) -> bool:
        cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEYS)
        row = await cur.fetchone()
        return bool(row and row[0])

    async def take_over(self, holder: str) -> int:
        """Increment the epoch (we hold the lock: nobody else writes it); the new epoch."""
        cur = await self._conn.execute(
            """UPDATE leadership SET epoch = epoch + 1, holder = %s, since = %s
               WHERE id = 1 RETURNING epoch""", (holder, unix_now()))
        row = await cur.fetchone()
        if row is None:
            raise RuntimeError("the leadership row is missing (migration 015)")
        return int(row[0])

    async def listen(self, channel: str = OUTBOX_CHANNEL) -> None:
        await self._conn.execute(f"LISTEN {channel}")

    async def wait(self, timeout: float) -> int:
        """Wait up to `timeout` s for notifications; how many came (0: none)."""
        received = 0
        async for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            received += 1
        return received

    async def check(self, timeout: float) -> None:
        """The connection answers within `timeout` s (raises otherwise)."""
        async with asyncio.timeout(timeout):
            await self._conn.execute("SELECT 1")

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # already broken: nothing to tell
                pass


class LeadershipRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def epoch(self) -> int:
        return int(await self.db.fetchval("SELECT epoch FROM leadership WHERE id = 1") or 0)

    async def holder(self) -> str | None:
        value = await self.db.fetchval("SELECT holder FROM leadership WHERE id = 1")
        return None if value is None else str(value)

    # direct replies of every replica (the leader's flood gate counts them)

    async def record_direct(self, replica: str, sends: Sequence[tuple[int | None, float]]) -> None:
        """(chat or None, Unix time) of direct calls made by `replica`, in one transaction."""
        if sends:
            async with self.db.transaction():
                await self.db.executemany(
                    "INSERT INTO direct_sends (chat_id, at, replica) VALUES (?, ?, ?)",
                    [(chat_id, at, replica) for chat_id, at in sends])

    async def direct_recent(self, since: float) -> list[tuple[int, int | None, float, str]]:
        """Direct calls recorded with a time after `since` (Unix time): (id, chat or None,
        time, replica). By time, not by id: ids are taken in one order and committed in
        another across replicas, so a reader keeps the ids it has counted instead."""
        rows = await self.db.fetchall(
            "SELECT id, chat_id, at, replica FROM direct_sends WHERE at > ? ORDER BY id",
            (since,))
        return [(int(r["id"]), r["chat_id"], float(r["at"]), str(r["replica"])) for r in rows]

    async def prune_direct(self, before: float) -> int:
        return await self.db.execute_rowcount("DELETE FROM direct_sends WHERE at < ?",
                                              (before,))
