"""Map repository: units of the five-level map, departments and chat bindings."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import Binding, Chat, Unit
from storage.util import now_iso, placeholders


def _unit(row: Row) -> Unit:
    return Unit(code=row["code"], kind=row["kind"], name=row["name"],
                parent_code=row["parent_code"],
                domains=tuple(d for d in row["domains"].split(",") if d),
                patrol=row["patrol"], position=row["position"],
                member_type=row["member_type"], property_code=row["property_code"])


def _chat(row: Row) -> Chat:
    return Chat(chat_id=row["chat_id"], type=row["type"], title=row["title"],
                is_forum=bool(row["is_forum"]), active=bool(row["active"]), locale=row["locale"],
                bot_is_admin=bool(row["bot_is_admin"]), can_pin=bool(row["can_pin"]),
                can_manage_topics=bool(row["can_manage_topics"]))


def _binding(row: Row) -> Binding:
    return Binding(unit_code=row["unit_code"], chat_id=row["chat_id"], thread_id=row["thread_id"])


class MapRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._chains: dict[str, tuple[Unit, ...]] = {}
        self._chains_version: int | None = None

    async def get(self, code: str) -> Unit | None:
        row = await self.db.fetchone("SELECT * FROM units WHERE code = ?", (code,))
        return _unit(row) if row else None

    async def all(self) -> list[Unit]:
        rows = await self.db.fetchall("SELECT * FROM units ORDER BY position, code")
        return [_unit(r) for r in rows]

    async def children(self, code: str | None) -> list[Unit]:
        if code is None:
            rows = await self.db.fetchall(
                "SELECT * FROM units WHERE parent_code IS NULL ORDER BY position, code")
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM units WHERE parent_code = ? ORDER BY position, code", (code,))
        return [_unit(r) for r in rows]

    async def ancestors(self, code: str) -> list[Unit]:
        """The unit itself then each parent up to its community.

        Outside a transaction the chain comes from memory while the map is as it was when it
        was read (`map_version`, moved by triggers on any change, from any process). Inside
        one it is read: a transaction may change units and still roll back."""
        if self.db.in_transaction:
            return await self._ancestors(code)
        version = await self.db.fetchval("SELECT version FROM map_version WHERE id = 1")
        if version != self._chains_version:
            self._chains.clear()
            self._chains_version = version
        chain = self._chains.get(code)
        if chain is None:
            chain = self._chains[code] = tuple(await self._ancestors(code))
            if len(self._chains) > 50_000:  # a bound, far above any county's buildings
                self._chains.clear()
        return list(chain)

    async def _ancestors(self, code: str) -> list[Unit]:
        rows = await self.db.fetchall(
            """WITH RECURSIVE up(code, depth) AS (
                   SELECT ?, 0
                   UNION ALL
                   SELECT u.parent_code, up.depth + 1 FROM units u JOIN up ON u.code = up.code
                   WHERE u.parent_code IS NOT NULL)
               SELECT units.* FROM up JOIN units ON units.code = up.code ORDER BY up.depth""",
            (code,))
        return [_unit(r) for r in rows]

    async def descendants(self, code: str, kind: str | None = None) -> list[Unit]:
        """The unit and everything below it (optionally of one kind), in map order."""
        rows = await self.db.fetchall(
            """WITH RECURSIVE down(code) AS (
                   SELECT ? UNION ALL
                   SELECT u.code FROM units u JOIN down ON u.parent_code = down.code)
               SELECT units.* FROM down JOIN units ON units.code = down.code
               WHERE CAST(? AS TEXT) IS NULL OR units.kind = ?
               ORDER BY units.position, units.code""",
            (code, kind, kind))
        return [_unit(r) for r in rows]

    async def upsert(self, unit: Unit) -> None:
        await self.db.execute(
            """INSERT INTO units (code, kind, name, parent_code, domains, patrol, position,
                                  member_type, property_code)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(code) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                   parent_code = excluded.parent_code, domains = excluded.domains,
                   patrol = excluded.patrol, position = excluded.position,
                   member_type = excluded.member_type, property_code = excluded.property_code""",
            (unit.code, unit.kind, unit.name, unit.parent_code, ",".join(unit.domains),
             unit.patrol, unit.position, unit.member_type, unit.property_code))

    async def members(self, community_codes: Iterable[str] | None = None,
                      member_type: str | None = None) -> list[Unit]:
        """Member units (SPEC §10), of some communities and of one type if given, in map order."""
        rows = await self.db.fetchall(
            """SELECT m.* FROM units m JOIN units c ON c.code = m.parent_code
               WHERE m.kind = 'member'
               ORDER BY c.position, c.code, m.position, m.code""")
        wanted = None if community_codes is None else set(community_codes)
        return [u for u in map(_unit, rows)
                if (wanted is None or u.parent_code in wanted)
                and (member_type is None or u.member_type == member_type)]

    async def departments(self) -> list[Unit]:
        rows = await self.db.fetchall(
            "SELECT * FROM units WHERE kind = 'department' ORDER BY position, code")
        return [_unit(r) for r in rows]

    # chats and bindings

    async def chat(self, chat_id: int) -> Chat | None:
        row = await self.db.fetchone("SELECT * FROM chats WHERE chat_id = ?", (chat_id,))
        return _chat(row) if row else None

    async def upsert_chat(self, chat: Chat) -> None:
        await self.db.execute(
            """INSERT INTO chats (chat_id, type, title, is_forum, active, locale, bot_is_admin,
                                  can_pin, can_manage_topics, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(chat_id) DO UPDATE SET type = excluded.type, title = excluded.title,
                   is_forum = excluded.is_forum, active = excluded.active,
                   bot_is_admin = excluded.bot_is_admin, can_pin = excluded.can_pin,
                   can_manage_topics = excluded.can_manage_topics,
                   updated_at = excluded.updated_at""",
            (chat.chat_id, chat.type, chat.title, int(chat.is_forum), int(chat.active),
             chat.locale, int(chat.bot_is_admin), int(chat.can_pin), int(chat.can_manage_topics),
             now_iso()))

    async def set_chat_active(self, chat_id: int, active: bool) -> bool:
        """Returns True when the flag changed."""
        changed = await self.db.execute_rowcount(
            "UPDATE chats SET active = ?, updated_at = ? WHERE chat_id = ? AND active != ?",
            (int(active), now_iso(), chat_id, int(active)))
        return changed > 0

    async def set_chat_locale(self, chat_id: int, locale: str) -> None:
        await self.db.execute("UPDATE chats SET locale = ? WHERE chat_id = ?", (locale, chat_id))

    async def binding(self, unit_code: str) -> Binding | None:
        row = await self.db.fetchone("SELECT * FROM bindings WHERE unit_code = ?", (unit_code,))
        return _binding(row) if row else None

    async def bindings_in_chat(self, chat_id: int) -> list[Binding]:
        rows = await self.db.fetchall(
            "SELECT * FROM bindings WHERE chat_id = ? ORDER BY thread_id", (chat_id,))
        return [_binding(r) for r in rows]

    async def bindings(self, unit_codes: Iterable[str] | None = None) -> list[Binding]:
        if unit_codes is None:
            rows = await self.db.fetchall("SELECT * FROM bindings ORDER BY unit_code")
        else:
            codes = list(unit_codes)
            marks = placeholders(codes)
            rows = await self.db.fetchall(
                f"SELECT * FROM bindings WHERE unit_code IN ({marks}) ORDER BY unit_code", codes)
        return [_binding(r) for r in rows]

    async def bind(self, unit_code: str, chat_id: int, thread_id: int, by: int | None) -> None:
        """Bind a unit to a chat (topic), replacing the unit's and the topic's old bindings."""
        await self.db.execute(
            "DELETE FROM bindings WHERE chat_id = ? AND thread_id = ? AND unit_code != ?",
            (chat_id, thread_id, unit_code))
        await self.db.execute(
            """INSERT INTO bindings (unit_code, chat_id, thread_id, bound_by, bound_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(unit_code) DO UPDATE SET chat_id = excluded.chat_id,
                   thread_id = excluded.thread_id, bound_by = excluded.bound_by,
                   bound_at = excluded.bound_at""",
            (unit_code, chat_id, thread_id, by, now_iso()))

    async def unbind(self, unit_code: str) -> bool:
        return await self.db.execute_rowcount(
            "DELETE FROM bindings WHERE unit_code = ?", (unit_code,)) > 0

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        """Follow a group → supergroup migration: bindings and the chat row move to new_id."""
        await self.db.execute("UPDATE bindings SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))
        row = await self.db.fetchone("SELECT * FROM chats WHERE chat_id = ?", (old_id,))
        if row is not None:
            await self.db.execute(
                """INSERT INTO chats (chat_id, type, title, is_forum, active, locale, bot_is_admin,
                                      can_pin, can_manage_topics, updated_at)
                   SELECT ?, 'supergroup', title, is_forum, 1, locale, bot_is_admin, can_pin,
                          can_manage_topics, ? FROM chats WHERE chat_id = ?
                   ON CONFLICT(chat_id) DO UPDATE SET locale = COALESCE(chats.locale,
                       excluded.locale)""",
                (new_id, now_iso(), old_id))
            await self.db.execute(
                "UPDATE chats SET active = 0, updated_at = ? WHERE chat_id = ?",
                (now_iso(), old_id))
