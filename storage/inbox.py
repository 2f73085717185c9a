"""Inbox repository: the durable intake of Telegram updates, and small key/values."""

from __future__ import annotations

import contextvars
from typing import Any

from storage import codec
from storage.dbapi import Database
from storage.util import now_iso


class UpdateMark:
    """The update being handled, whether a commit has marked it processed, and whether a
    commit of its work failed (its work is lost: it stays unprocessed, for a replay)."""

    __slots__ = ("update_id", "done", "lost")

    def __init__(self, update_id: int) -> None:
        self.update_id = update_id
        self.done = False
        self.lost = False


# Set by the intake around each update's handlers; the store's transactions read it.
current_update: contextvars.ContextVar[UpdateMark | None] = contextvars.ContextVar(
    "current_update", default=None)


class InboxRepo:
    KEEP = 10_000  # handled updates kept (for looking back); older ones go as new ones come

    def __init__(self, db: Database) -> None:
        self.db = db

    async def store(self, updates: list[dict[str, Any]]) -> None:
        """Keep a batch of raw updates and the next offset, in one transaction."""
        if not updates:
            return
        now = now_iso()
        # urgent: Telegram is not told the batch was received until it is stored
        async with self.db.transaction(urgent=True):
            await self.db.executemany(
                "INSERT INTO inbox (update_id, payload, received_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(u["update_id"], codec.dumps(u), now) for u in updates])
            next_offset = max(u["update_id"] for u in updates) + 1
            await self.db.execute(
                """INSERT INTO meta (key, value) VALUES ('intake_offset', ?)
                   ON CONFLICT(key) DO UPDATE SET value = CASE
                       WHEN CAST(excluded.value AS BIGINT) > CAST(meta.value AS BIGINT)
                       THEN excluded.value ELSE meta.value END""", (str(next_offset),))
            await self.prune(next_offset - self.KEEP)

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

    async def prune(self, below: int) -> None:
        """Forget handled updates older than `below` (unhandled ones stay: they are redone)."""
        await self.db.execute(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL AND update_id < ?", (below,))


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
