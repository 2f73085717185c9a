"""Inbox repository: the durable intake of Telegram updates, and small key/values."""

from __future__ import annotations

import contextvars
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from storage import codec
from storage.dbapi import Database
from storage.util import now_iso

if TYPE_CHECKING:
    from storage.pg import SessionLocks


def lane_of(raw: dict[str, Any]) -> int:
    """Updates sharing a lane are handled one after another, in order: its private chat or
    group, or the person who pressed a button or typed an inline query (0: the rest)."""
    try:
        for key in ("message", "edited_message", "my_chat_member", "chat_member"):
            if key in raw:
                return int(raw[key]["chat"]["id"])
        for key in ("callback_query", "inline_query", "pre_checkout_query"):
            if key in raw:
                return int(raw[key]["from"]["id"])
    except (KeyError, TypeError, ValueError):
        pass  # not as Telegram sends them (a test's stub): stored all the same
    return 0


class UpdateMark:
    """The update being handled, whether a commit has marked it processed, and whether a
    commit of its work failed (its work is lost: it stays unprocessed, for a replay)."""

    __slots__ = ("update_id", "done", "lost", "answered", "memo")

    def __init__(self, update_id: int) -> None:
        self.update_id = update_id
        #: rows read while handling it, read again by the next handler of the same update
        #: (the sender's person: five reads of a Submit were one); see `update_memo`
        self.memo: dict[Any, Any] = {}
        self.done = False
        self.lost = False
        self.answered = False  # a tap: its answer went out (bot.rawapi.answer_callback)


# Set by the intake around each update's handlers; the store's transactions read it.
current_update: contextvars.ContextVar[UpdateMark | None] = contextvars.ContextVar(
    "current_update", default=None)


def update_memo() -> dict[Any, Any] | None:
    """The reads kept for the update being handled (None outside one). A repository that
    keeps a row here forgets it when it writes that table; a transaction that fails empties
    it (`Store.transaction`): what was read inside may never have been committed."""
    mark = current_update.get()
    return None if mark is None else mark.memo


class InboxRepo:
    KEEP = 10_000  # handled updates kept (for looking back); older ones go as new ones come
    PRUNE_EVERY = 256  # by webhook: the old ones go when an update_id is a multiple of this

    def __init__(self, db: Database) -> None:
        self.db = db
        #: whether several processes may handle this inbox (PostgreSQL): updates are then
        #: claimed per lane (`lane_locks`, `claim`) instead of handed over in memory
        self.shared = db.dialect == "postgresql"

    async def store(self, updates: list[dict[str, Any]], *, polled: bool = True) -> set[int]:
        """Keep a batch of raw updates (each with its lane) and, when `polled`, the next
        offset, in one transaction. Returns the ids to handle: those new here or stored
        before and not handled yet; an update handled before (Telegram resending it after a
        lost answer, even to a restarted process) is not among them. Posted by webhook
        (`polled=False`) there is no offset to keep: every delivery writing the one offset
        row made the deliveries of all replicas wait for each other's commits."""
        if not updates:
            return set()
        if not polled and self.shared:
            # PostgreSQL, a webhook's delivery: its one statement commits by itself (a
            # transaction around it was two more round trips per update)
            return await self._store(updates, polled)
        # urgent: Telegram is not told the batch was received until it is stored
        async with self.db.transaction(urgent=True):
            return await self._store(updates, polled)

    async def _store(self, updates: list[dict[str, Any]], polled: bool) -> set[int]:
        now = now_iso()
        # one statement that also says which rows are new (as cheap as the plain
        # INSERT it replaced: SQLite's hot path gains nothing measurable)
        rows = await self.db.fetchall(
            "INSERT INTO inbox (update_id, payload, received_at, lane) VALUES "
            + ", ".join(["(?, ?, ?, ?)"] * len(updates))
            + " ON CONFLICT DO NOTHING RETURNING update_id",
            [v for u in updates for v in (u["update_id"], codec.dumps(u), now, lane_of(u))])
        fresh = {r[0] for r in rows}
        if len(fresh) < len(updates):  # some stored before: those not handled yet too
            known = list({u["update_id"] for u in updates} - fresh)
            if known:
                rows = await self.db.fetchall(
                    "SELECT update_id FROM inbox WHERE processed_at IS NULL AND update_id "
                    f"IN ({', '.join('?' * len(known))})", known)
                fresh.update(r[0] for r in rows)
        next_offset = max(u["update_id"] for u in updates) + 1
        if polled:
            await self.db.execute(
                """INSERT INTO meta (key, value) VALUES ('intake_offset', ?)
                   ON CONFLICT(key) DO UPDATE SET value = CASE
                       WHEN CAST(excluded.value AS BIGINT) > CAST(meta.value AS BIGINT)
                       THEN excluded.value ELSE meta.value END""", (str(next_offset),))
        if polled or any(u["update_id"] % self.PRUNE_EVERY == 0 for u in updates):
            await self.prune(next_offset - self.KEEP)
        return fresh

    async def next_offset(self) -> int | None:
        value = await self.db.fetchval("SELECT value FROM meta WHERE key = 'intake_offset'")
        return int(value) if value is not None else None

    async def pending(self, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        rows = await self.db.fetchall(
            "SELECT update_id, payload FROM inbox WHERE processed_at IS NULL "
            "ORDER BY update_id LIMIT ?", (limit,))
        return [(r["update_id"], codec.loads(r["payload"])) for r in rows]

    async def mark_processed(self, update_ids: list[int]) -> None:
        if not update_ids:
            return
        now = now_iso()
        await self.db.executemany(
            "UPDATE inbox SET processed_at = ? WHERE update_id = ?", [(now, i) for i in update_ids])

    async def is_processed(self, update_id: int) -> bool:
        return await self.db.fetchval(
            "SELECT 1 FROM inbox WHERE update_id = ? AND processed_at IS NOT NULL",
            (update_id,)) is not None

    async def mark_once(self, update_id: int) -> bool:
        """Mark an update processed unless it is already (PostgreSQL: a replica whose lane
        lock was lost meanwhile may race another for it; the row's lock makes the second
        wait for the first's commit, then find it marked). False: it was marked before (an
        update the inbox does not hold, as a service called outside the intake, is not)."""
        if await self.db.execute_rowcount(
                "UPDATE inbox SET processed_at = ? WHERE update_id = ? AND processed_at IS NULL",
                (now_iso(), update_id)) == 1:
            return True
        return await self.db.fetchval(
            "SELECT 1 FROM inbox WHERE update_id = ?", (update_id,)) is None

    # --- processing on any replica (PostgreSQL, SPEC §16) ---

    def lane_locks(self) -> LaneLocks:
        """This replica's lane locks (PostgreSQL: its own connection; close it at the end)."""
        from storage.pg import SessionLocks

        url = getattr(self.db, "url", None)
        if not self.shared or not isinstance(url, str):
            raise RuntimeError("lane locks are for a PostgreSQL store")
        return LaneLocks(SessionLocks(url))

    async def claim(self, lane: int, skip: Collection[int] = ()
                    ) -> tuple[int, dict[str, Any], bool] | None:
        """The lowest unprocessed update of a lane (but `skip`: those given up here), to be
        handled by the holder of the lane's lock, and whether another follows it (if not,
        the holder need not ask again). SKIP LOCKED: a row whose processed mark is being
        committed right now is not waited for (it is being handled)."""
        rows = await self.db.fetchall(
            "SELECT update_id, payload FROM inbox WHERE lane = ? AND processed_at IS NULL "
            + _not_in(skip) + " ORDER BY update_id LIMIT 2 FOR UPDATE SKIP LOCKED",
            (lane, *skip))
        if not rows:
            return None
        return rows[0]["update_id"], codec.loads(rows[0]["payload"]), len(rows) > 1

    async def has_pending(self, lane: int, skip: Collection[int] = ()) -> bool:
        return await self.db.fetchval(
            "SELECT 1 FROM inbox WHERE lane = ? AND processed_at IS NULL " + _not_in(skip)
            + " LIMIT 1", (lane, *skip)) is not None

    async def pending_lanes(self, limit: int = 10_000, received_before: str | None = None
                            ) -> list[int]:
        """The lanes with unprocessed updates (the sweeper's round); with `received_before`
        (an ISO time as `now_iso` writes it), only those with one received before then."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT lane FROM inbox WHERE processed_at IS NULL AND lane IS NOT NULL "
            + ("AND received_at < ? " if received_before else "") + "LIMIT ?",
            (received_before, limit) if received_before else (limit,))
        return [r[0] for r in rows]

    async def prune(self, below: int) -> None:
        """Forget handled updates older than `below` (unhandled ones stay: they are redone)."""
        await self.db.execute(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL AND update_id < ?", (below,))


def _not_in(skip: Collection[int]) -> str:
    return f"AND update_id NOT IN ({', '.join('?' * len(skip))})" if skip else ""


class LaneLocks:
    """Per-lane advisory locks of one replica (PostgreSQL). Session-level, on a connection
    of their own (`storage.pg.SessionLocks`), not transaction-level: a lane's lock must be
    held across all of its update's handling, whose work commits in transactions of its own
    on pooled connections (one or more, interleaved with calls to Telegram); a transaction
    kept open beside them would hold a pooled connection per lane being handled and could
    end early. One connection holds the locks of every lane of the replica, and the server
    frees them when the replica dies."""

    def __init__(self, locks: SessionLocks) -> None:
        from storage.pg import advisory_key

        self._locks = locks
        self._key = advisory_key
        self._held: dict[int, int] = {}  # lane → generation of the connection it was taken on

    async def try_lock(self, lane: int) -> bool:
        if not await self._locks.try_lock(self._key(f"lane:{lane}")):
            return False
        self._held[lane] = self._locks.generation
        return True

    async def unlock(self, lane: int) -> None:
        generation = self._held.pop(lane, None)
        if generation == self._locks.generation:  # else the connection and its locks are gone
            await self._locks.unlock(self._key(f"lane:{lane}"))

    async def close(self) -> None:
        await self._locks.close()


class MetaRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        value = await self.db.fetchval("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
