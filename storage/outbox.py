"""Outbox repository: the persistent queue of everything the bot sends (SPEC §7)."""

from __future__ import annotations

from typing import Any

from storage import codec
from storage.dbapi import Database, Row
from storage.leadership import OUTBOX_CHANNEL, StaleEpoch
from storage.models import OutboxItem
from storage.util import epoch, placeholders


def _item(row: Row) -> OutboxItem:
    return OutboxItem(id=row["id"], chat_id=row["chat_id"], method=row["method"],
                      payload=codec.loads(row["payload"]), priority=row["priority"],
                      quiet=bool(row["quiet"]), not_before=row["not_before"], ref=row["ref"],
                      attempts=row["attempts"], status=row["status"],
                      message_id=row["message_id"], created_at=row["created_at"],
                      coalesce_key=row["coalesce_key"])


_INSERT = """INSERT INTO outbox (chat_id, method, payload, priority, quiet, not_before,
                                dedupe_key, coalesce_key, ref, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def _fresh(item: OutboxItem, row: Row | None) -> OutboxItem | None:
    if row is None or row["status"] != "pending":
        return None
    changes: dict[str, Any] = {}
    for field in ("chat_id", "priority", "attempts", "not_before"):
        if row[field] != getattr(item, field):
            changes[field] = row[field]
    if row["payload"] is not None:
        payload = codec.loads(row["payload"])
        if payload != item.payload:
            changes["payload"] = payload
    return item.model_copy(update=changes) if changes else item


class OutboxRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(self, chat_id: int, method: str, payload: dict[str, Any], priority: int,
                      *, quiet: bool = False, not_before: float = 0.0,
                      dedupe_key: str | None = None, coalesce_key: str | None = None,
                      ref: str | None = None) -> int | None:
        """Queue one call. A known `dedupe_key` queues nothing (returns None); a pending row
        with the same `coalesce_key` is replaced by the newer payload (live counters).
        The leader's sender, in whichever process, is notified once the transaction commits."""
        if not self.db.in_transaction and self.db.dialect == "postgresql":
            async with self.db.transaction():  # the notification goes with the commit
                return await self.enqueue(chat_id, method, payload, priority, quiet=quiet,
                                          not_before=not_before, dedupe_key=dedupe_key,
                                          coalesce_key=coalesce_key, ref=ref)
        self.db.notify(OUTBOX_CHANNEL)
        body = codec.dumps(payload)
        if coalesce_key is not None:
            row = await self.db.fetchone(
                "SELECT id FROM outbox WHERE coalesce_key = ? AND status = 'pending'",
                (coalesce_key,))
            if row is not None:
                await self.db.execute(
                    "UPDATE outbox SET payload = ?, "
                    "priority = CASE WHEN ? < priority THEN ? ELSE priority END WHERE id = ?",
                    (body, priority, priority, row["id"]))
                return int(row["id"])
        values = (chat_id, method, body, priority, int(quiet), not_before, dedupe_key,
                  coalesce_key, ref, epoch())
        if dedupe_key is not None and self.db.dialect == "postgresql":
            # two transactions at once may queue the same key: the second queues nothing
            row = await self.db.fetchone(_INSERT + " ON CONFLICT (dedupe_key) DO NOTHING "
                                         "RETURNING id", values)
            return None if row is None else int(row["id"])
        if dedupe_key is not None:
            exists = await self.db.fetchval(
                "SELECT id FROM outbox WHERE dedupe_key = ?", (dedupe_key,))
            if exists is not None:
                return None
        return await self.db.execute(_INSERT, values)

    async def get(self, item_id: int) -> OutboxItem | None:
        row = await self.db.fetchone("SELECT * FROM outbox WHERE id = ?", (item_id,))
        return _item(row) if row else None

    async def current_many(self, items: list[OutboxItem], epoch: int | None = None
                           ) -> dict[int, OutboxItem | None]:
        """The items as they stand now, each None once it is no longer pending, in one
        statement (a burst's sends start together). Only a coalescing row's payload can
        change while pending (a newer edit); other payloads are not read again.

        `epoch`: the sender's claim as the leader of that epoch (SPEC §16), checked in the
        same statement: `StaleEpoch` when another replica has taken over since (a former
        leader sends nothing more). None: one process, no check (SQLite)."""
        ids = sorted({item.id for item in items})
        columns = """o.id, o.status, o.chat_id, o.priority, o.attempts, o.not_before,
                     CASE WHEN o.coalesce_key IS NOT NULL THEN o.payload END AS payload"""
        if epoch is None:
            rows = await self.db.fetchall(
                f"SELECT {columns} FROM outbox o WHERE o.id IN ({placeholders(ids)})", ids)
        else:
            rows = await self.db.fetchall(
                f"""SELECT {columns}, l.epoch FROM leadership l
                    LEFT JOIN outbox o ON o.id IN ({placeholders(ids)}) WHERE l.id = 1""", ids)
            now = rows[0]["epoch"] if rows else None
            if now != epoch:
                raise StaleEpoch(f"epoch {epoch} is over (now {now})")
        found = {row["id"]: row for row in rows if row["id"] is not None}
        return {item.id: _fresh(item, found.get(item.id)) for item in items}

    async def pending(self, after_id: int = 0, also: list[int] | None = None
                      ) -> list[OutboxItem]:
        """The pending rows above `after_id`, and those among the ids `also`."""
        if also:
            rows = await self.db.fetchall(
                f"""SELECT * FROM outbox WHERE status = 'pending'
                    AND (id > ? OR id IN ({placeholders(also)})) ORDER BY id""",
                (after_id, *also))
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM outbox WHERE status = 'pending' AND id > ? ORDER BY id",
                (after_id,))
        return [_item(r) for r in rows]

    async def mark_sent(self, item_id: int, message_id: int | None, result: Any) -> None:
        await self.mark_sent_many([(item_id, message_id, result)])

    async def mark_sent_many(self, rows: list[tuple[int, int | None, Any]]) -> None:
        """`mark_sent` for many items in one statement: (id, message_id, result)."""
        now = epoch()
        await self.db.executemany(
            """UPDATE outbox SET status = 'sent', message_id = ?, result = ?, sent_at = ?,
                   attempts = attempts + 1, coalesce_key = NULL WHERE id = ?""",
            [(message_id, codec.dumps(result), now, item_id)
             for item_id, message_id, result in rows])

    async def set_payload(self, item_id: int, payload: dict[str, Any]) -> None:
        await self.db.execute("UPDATE outbox SET payload = ? WHERE id = ?",
                              (codec.dumps(payload), item_id))

    async def payloads_of(self, item_ids: list[int]) -> dict[int, dict[str, Any]]:
        """The payloads of several items, in one statement (those that exist)."""
        if not item_ids:
            return {}
        rows = await self.db.fetchall(
            f"SELECT id, payload FROM outbox WHERE id IN ({placeholders(item_ids)})",
            list(item_ids))
        return {int(r["id"]): codec.loads(r["payload"]) for r in rows}

    async def retry_later(self, item_id: int, not_before: float, error: str,
                          count_attempt: bool = True) -> None:
        await self.db.execute(
            """UPDATE outbox SET not_before = ?, last_error = ?,
                   attempts = attempts + ? WHERE id = ?""",
            (not_before, error, int(count_attempt), item_id))

    async def finish(self, item_id: int, status: str, error: str | None) -> None:
        """End an item that will not be sent: 'failed' (an error) or 'dropped' (moot)."""
        await self.db.execute(
            """UPDATE outbox SET status = ?, last_error = ?, attempts = attempts + 1,
                   coalesce_key = NULL WHERE id = ?""", (status, error, item_id))

    async def drop_chat(self, chat_id: int, reason: str) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT id FROM outbox WHERE chat_id = ? AND status = 'pending'", (chat_id,))
        await self.db.execute(
            """UPDATE outbox SET status = 'dropped', last_error = ?, coalesce_key = NULL
               WHERE chat_id = ? AND status = 'pending'""", (reason, chat_id))
        return [r["id"] for r in rows]

    async def drop_pending_refs(self, ref_prefix: str, reason: str) -> int:
        """Drop what is still queued under a ref prefix (a closed horn's unsent posts)."""
        return await self.db.execute_rowcount(
            """UPDATE outbox SET status = 'dropped', last_error = ?, coalesce_key = NULL
               WHERE status = 'pending' AND ref LIKE ? ESCAPE '\\'""",
            (reason, ref_prefix.replace("%", "\\%").replace("_", "\\_") + "%"))

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        await self.db.execute(
            "UPDATE outbox SET chat_id = ? WHERE chat_id = ? AND status = 'pending'",
            (new_id, old_id))

    async def block_chat(self, chat_id: int, until: float) -> None:
        """Telegram takes no call to `chat_id` before `until` (a 429's retry_after, Unix
        time); a later end already known stays."""
        await self.db.execute(
            """INSERT INTO chat_blocks (chat_id, until) VALUES (?, ?)
               ON CONFLICT(chat_id) DO UPDATE SET until = CASE
                   WHEN excluded.until > chat_blocks.until THEN excluded.until
                   ELSE chat_blocks.until END""",
            (chat_id, until))

    async def chat_blocks(self, now: float) -> dict[int, float]:
        """The blocks that still run at `now` (Unix time); ended ones are forgotten."""
        await self.db.execute("DELETE FROM chat_blocks WHERE until <= ?", (now,))
        rows = await self.db.fetchall("SELECT chat_id, until FROM chat_blocks")
        return {r["chat_id"]: r["until"] for r in rows}

    async def sent_since(self, since: float) -> list[tuple[int, float]]:
        """The calls sent since `since` (Unix time), as (chat, when): a new leader counts
        its predecessor's last minute against the flood limits (SPEC §16)."""
        rows = await self.db.fetchall(
            "SELECT chat_id, sent_at FROM outbox WHERE status = 'sent' AND sent_at >= ?",
            (since,))
        return [(int(r["chat_id"]), float(r["sent_at"])) for r in rows]

    async def counts(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        return {r["status"]: r["n"] for r in rows}
