"""Personal data (SPEC §14): consent, what is kept about a person (for `/mydata`), erasure
(`/forget`, `gridhorn people erase`) and the retention of raw updates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from storage import codec
from storage.dbapi import Database
from storage.people import forget_people

#: Erased persons get an id of their own from here up, above every Telegram id (those fit in
#: 52 bits, and chats are negative): what they leave behind (tickets, hours, check-ins) stays
#: apart per person, names nobody, and can never be the id of a chat to send to.
ERASED_BASE = 2 ** 53


class PrivacyRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # consent

    async def consent(self, user_id: int, at: float) -> bool:
        """Record that the person agreed to the notice; False if they had already."""
        forget_people()
        await self.db.execute(
            "INSERT INTO people (user_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (user_id, _iso(at)))
        return await self.db.execute_rowcount(
            "UPDATE people SET consented_at = ? WHERE user_id = ? AND consented_at IS NULL",
            (at, user_id)) > 0

    async def consented(self, user_id: int) -> bool:
        return await self.db.fetchval(
            "SELECT 1 FROM people WHERE user_id = ? AND consented_at IS NOT NULL",
            (user_id,)) is not None

    # what is kept (read for /mydata; each section of the export reads its own rows)

    async def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Rows as plain dicts (JSON fields decoded), for an export section's query."""
        rows = await self.db.fetchall(sql, list(params))
        out = []
        for row in rows:
            item = {k: row[k] for k in row.keys()}
            for key in ("data", "more_photos"):
                if isinstance(item.get(key), str):
                    item[key] = codec.loads(item[key])
            out.append(item)
        return out

    # erasure

    async def new_erased_id(self, user_id: int, at: float) -> int:
        """Inside the erasure's transaction: the erased person's row, carrying only what the
        boards aggregate (hours, points, building, since when); its id."""
        forget_people()
        tomb = int(await self.db.fetchval(
            "SELECT COALESCE(MAX(user_id), ?) + 1 FROM people WHERE user_id >= ?",
            (ERASED_BASE - 1, ERASED_BASE)))
        old = await self.db.fetchone(
            "SELECT hours, points, building_code, created_at FROM people WHERE user_id = ?",
            (user_id,))
        await self.db.execute(
            """INSERT INTO people (user_id, first_name, hours, points, building_code,
                                   created_at, erased_at) VALUES (?, '', ?, ?, ?, ?, ?)""",
            (tomb, old["hours"] if old else 0, old["points"] if old else 0,
             old["building_code"] if old else None,
             old["created_at"] if old else _iso(at), at))
        return tomb

    async def erase(self, user_id: int, at: float, words: Iterable[str],
                    tomb: int | None = None) -> int:
        """Inside a transaction: erase a person (SPEC §14). Their name, username, language,
        the phone numbers entered for them, their raw updates, drafts, flows and what was
        sent to them go; what they leave in common records (tickets they reported, their
        check-ins and hours, me-too marks, audit rows) moves to a new erased id, their own
        words taken out of it (`words`: the texts to look for in the outbox's copies, which
        are dropped). `tomb`: the erased id made already (`new_erased_id`, so that other
        features moved their rows to it first); None: made here. Returns the erased id."""
        if tomb is None:
            tomb = await self.new_erased_id(user_id, at)
        ex = self.db.execute
        # their own steps on their tickets keep their kind and time, not their words (their
        # answers and comments; staff notes stay, and so do a former staff member's)
        await ex("""UPDATE ticket_events SET note = NULL WHERE actor_id = ? AND ticket_id IN
                        (SELECT id FROM tickets WHERE reporter_id = ?)""", (user_id, user_id))
        # tickets stay; the reporter's words and photos and the caller's details go
        await ex("""UPDATE tickets SET reporter_id = ?, text = '', photo_file_id = NULL,
                        more_photos = '[]', rating_comment = NULL, caller_name = NULL,
                        caller_phone = NULL WHERE reporter_id = ?""", (tomb, user_id))
        await ex("UPDATE tickets SET assignee_id = ? WHERE assignee_id = ?", (tomb, user_id))
        # 点将 (SPEC §10): the asks they answered and the hours stay, by no one
        await ex("UPDATE ticket_assignments SET user_id = ? WHERE user_id = ?", (tomb, user_id))
        await ex("UPDATE ticket_assignments SET assigned_by = ? WHERE assigned_by = ?",
                 (tomb, user_id))
        await ex("UPDATE ticket_events SET actor_id = ? WHERE actor_id = ?", (tomb, user_id))
        # what a former staff member did (their roles were revoked first) stays, by no one
        for table, column in (("horns", "owner_id"), ("horns", "closed_by"),
                              ("horns", "confirmed_by"), ("bindings", "bound_by"),
                              ("themes", "set_by")):
            await ex(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", (tomb, user_id))
        await ex("UPDATE me_too SET user_id = ? WHERE user_id = ?", (tomb, user_id))
        await ex("UPDATE horn_checkins SET person_id = ? WHERE person_id = ?", (tomb, user_id))
        await ex("UPDATE audit_log SET actor_id = ? WHERE actor_id = ?", (tomb, user_id))
        await ex("UPDATE audit_log SET subject_id = ? WHERE subject_id = ?", (tomb, user_id))
        await ex("UPDATE invites SET used_by = ? WHERE used_by = ?", (tomb, user_id))
        await ex("UPDATE invites SET created_by = ? WHERE created_by = ?", (tomb, user_id))
        await ex("UPDATE roles SET granted_by = ? WHERE granted_by = ?", (tomb, user_id))
        await ex("UPDATE whistle_ratings SET rater_id = ?, comment = NULL WHERE rater_id = ?",
                 (tomb, user_id))
        await ex("UPDATE patrols SET user_id = ?, note = NULL WHERE user_id = ?",
                 (tomb, user_id))
        for table in ("roles", "drafts", "flows", "stand_ins"):
            await ex(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        await ex("UPDATE stand_ins SET backup_id = NULL WHERE backup_id = ?", (user_id,))
        await ex("DELETE FROM prompts WHERE user_id = ? OR chat_id = ?", (user_id, user_id))
        # their private chat: the copies of cards and horns there, what was sent there
        for table in ("ticket_cards", "horn_copies", "schedule_posts", "chat_blocks",
                      "direct_sends", "chats"):
            await ex(f"DELETE FROM {table} WHERE chat_id = ?", (user_id,))
        await ex("DELETE FROM outbox WHERE chat_id = ?", (user_id,))
        # copies elsewhere that carried their name or words (cards sent before): the
        # message itself is edited to its erased form by the caller; the stored copy goes
        for needle in {w for w in words if w and len(w) >= 2}:
            pattern = "%" + _like(needle) + "%"
            await ex("""DELETE FROM outbox WHERE status != 'pending'
                        AND (payload LIKE ? ESCAPE '\\' OR result LIKE ? ESCAPE '\\')""",
                     (pattern, pattern))
            await ex("""UPDATE outbox SET status = 'dropped', payload = '{}'
                        WHERE status = 'pending' AND payload LIKE ? ESCAPE '\\'""", (pattern,))
            # others' updates that quoted them (a press on a card naming them), once handled
            await ex("""DELETE FROM inbox WHERE processed_at IS NOT NULL
                        AND payload LIKE ? ESCAPE '\\'""", (pattern,))
        await self.delete_raw_updates(user_id)
        forget_people()
        await ex("DELETE FROM people WHERE user_id = ?", (user_id,))
        return tomb

    async def delete_raw_updates(self, user_id: int) -> int:
        """Every stored update from or about the person (their lane, or naming their id)."""
        ident = str(user_id)
        return await self.db.execute_rowcount(
            """DELETE FROM inbox WHERE lane = ? OR payload LIKE ? OR payload LIKE ?
                   OR payload LIKE ?""",
            (user_id, f'%"id":{ident},%', f'%"id":{ident}}}%', f'%"user_id":{ident}%'))

    # retention

    async def expire_raw(self, received_before: str) -> int:
        """Raw updates handled and received before the ISO time given: deleted (SPEC §14,
        GRIDHORN_RAW_RETENTION). Unhandled ones stay: they are still to be handled."""
        return await self.db.execute_rowcount(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL AND received_at < ?",
            (received_before,))


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
