"""Ticket repository: tickets, their timeline, their copies (cards), Me too, and prompts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage import codec
from storage.dbapi import Database, Row
from storage.models import OPEN_STATUSES, Prompt, Ticket, TicketCard, TicketEvent
from storage.util import epoch, placeholders

_TICKET_FIELDS = set(Ticket.model_fields)
#: the column a unit code of `OpenFilters` narrows, by the unit's kind
_FILTER_COLUMNS = {"building": "building_code", "grid": "grid_code",
                   "community": "community_code", "department": "department_code"}


@dataclass(frozen=True)
class OpenFilters:
    """What `/tickets` narrows the open tickets to: a domain, a deadline passed by `due_by`,
    units (`column`: their kind, one of `_FILTER_COLUMNS`; `codes`), tickets a person took
    or acted on (`involving`)."""

    domain: str | None = None
    due_by: float | None = None
    column: str | None = None
    codes: tuple[str, ...] = ()
    involving: int | None = None


def _ticket(row: Row) -> Ticket:
    data = {k: row[k] for k in row.keys() if k in _TICKET_FIELDS}
    data["anonymous"] = bool(data["anonymous"])
    data["service_request"] = bool(data["service_request"])
    data["more_photos"] = tuple(codec.loads(data["more_photos"]))
    return Ticket(**data)


def _event(row: Row) -> TicketEvent:
    return TicketEvent(id=row["id"], ticket_id=row["ticket_id"], at=row["at"],
                       actor_id=row["actor_id"], kind=row["kind"], note=row["note"],
                       data=codec.loads(row["data"]) if row["data"] else None)


class TicketRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        # the minute of a deadline, as migration 010's indexes write it: PostgreSQL's CAST to
        # an integer rounds where SQLite's truncates
        self._minute = ("FLOOR(due_at / 60)" if db.dialect == "postgresql"
                        else "CAST(due_at / 60 AS INTEGER)")

    async def create(self, *, reporter_id: int, anonymous: bool, building_code: str,
                     grid_code: str, community_code: str, domain: str | None, text: str,
                     photo_file_id: str | None, source_update_id: int | None,
                     more_photos: tuple[str, ...] = (),
                     due_kind: str, due_from: float, due_at: float,
                     remind_at: float, cards_pending: bool = False,
                     urgency: str = "routine", source: str = "resident",
                     source_ref: str | None = None, caller_name: str | None = None,
                     caller_phone: str | None = None) -> Ticket | None:
        """Insert a ticket; None when this update already made one (a replay) or, for a case
        staff entered, when its source and reference are already a ticket's (`by_source_ref`
        tells which). One statement (it is on every Submit's path)."""
        now = epoch()
        row = await self.db.fetchone(
            """INSERT INTO tickets (reporter_id, anonymous, building_code, grid_code,
                   community_code, domain, text, photo_file_id, more_photos, source_update_id,
                   due_kind, due_from, due_at, remind_at, created_at, updated_at, cards_pending,
                   urgency, source, source_ref, caller_name, caller_phone)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT DO NOTHING
               RETURNING *""",
            (reporter_id, int(anonymous), building_code, grid_code, community_code, domain, text,
             photo_file_id, codec.dumps(list(more_photos)), source_update_id, due_kind, due_from,
             due_at, remind_at, now, now, int(cards_pending), urgency, source, source_ref,
             caller_name, caller_phone))
        return _ticket(row) if row is not None else None

    async def by_source_ref(self, source: str, source_ref: str) -> Ticket | None:
        """The ticket entered with this source and external reference number, if any."""
        row = await self.db.fetchone(
            "SELECT * FROM tickets WHERE source = ? AND source_ref = ?", (source, source_ref))
        return _ticket(row) if row else None

    async def by_update(self, update_id: int) -> Ticket | None:
        """The ticket an update made (a replayed update finds it)."""
        row = await self.db.fetchone(
            "SELECT * FROM tickets WHERE source_update_id = ?", (update_id,))
        return _ticket(row) if row else None

    async def cards_pending(self, limit: int, skip: Iterable[int] = ()) -> list[int]:
        """New tickets whose staff cards are still to be queued, oldest first."""
        skipped = list(skip)
        rows = await self.db.fetchall(
            "SELECT id FROM tickets WHERE cards_pending = 1"
            + (f" AND id NOT IN ({placeholders(skipped)})" if skipped else "")
            + " ORDER BY id LIMIT ?", (*skipped, limit))
        return [row[0] for row in rows]

    async def take_cards_pending(self, ticket_id: int) -> Ticket | None:
        """Clear the flag: the ticket as it stands now, None when another run already took
        this ticket's cards (one statement: the flag and the fresh row)."""
        row = await self.db.fetchone(
            "UPDATE tickets SET cards_pending = 0 WHERE id = ? AND cards_pending = 1 "
            "RETURNING *", (ticket_id,))
        return _ticket(row) if row else None

    async def get(self, ticket_id: int) -> Ticket | None:
        row = await self.db.fetchone("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return _ticket(row) if row else None

    async def update(self, ticket_id: int, expect_status: Iterable[str] | None = None,
                     **fields: Any) -> bool:
        """Change fields; with `expect_status`, only if the ticket is still in one of them
        (the store decides races: a second Accept finds the status already moved)."""
        fields["updated_at"] = epoch()
        sets = ", ".join(f"{name} = ?" for name in fields)
        params: list[Any] = list(fields.values())
        sql = f"UPDATE tickets SET {sets} WHERE id = ?"
        params.append(ticket_id)
        if expect_status is not None:
            statuses = list(expect_status)
            sql += f" AND status IN ({placeholders(statuses)})"
            params += statuses
        return await self.db.execute_rowcount(sql, params) > 0

    async def claim(self, ticket_id: int, user_id: int) -> bool:
        """The first "Take it" wins."""
        return await self.db.execute_rowcount(
            "UPDATE tickets SET assignee_id = ?, updated_at = ? "
            "WHERE id = ? AND assignee_id IS NULL AND service_request = 1",
            (user_id, epoch(), ticket_id)) > 0

    async def assign(self, ticket_id: int, user_id: int) -> bool:
        """An assignment accepted (点将, SPEC §10) makes the assignee as "Take it" does: the
        first to accept wins."""
        return await self.db.execute_rowcount(
            "UPDATE tickets SET assignee_id = ?, updated_at = ? "
            f"WHERE id = ? AND assignee_id IS NULL AND status IN ({placeholders(OPEN_STATUSES)})",
            (user_id, epoch(), ticket_id, *OPEN_STATUSES)) > 0

    async def count_since(self, reporter_id: int, since: float) -> int:
        """A person's own opinions since then (cases they entered as staff do not count)."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM tickets WHERE reporter_id = ? AND created_at >= ? "
            "AND source = 'resident'", (reporter_id, since)))

    async def of_reporter(self, reporter_id: int, limit: int = 50) -> list[Ticket]:
        rows = await self.db.fetchall(
            "SELECT * FROM tickets WHERE reporter_id = ? ORDER BY id DESC LIMIT ?",
            (reporter_id, limit))
        return [_ticket(r) for r in rows]

    async def open_in(self, building_codes: Iterable[str] | None = None,
                      department_codes: Iterable[str] = (), limit: int = 20,
                      offset: int = 0, *, grid_codes: Iterable[str] = (),
                      community_codes: Iterable[str] = (),
                      filters: OpenFilters | None = None) -> tuple[list[Ticket], int]:
        """Open tickets in these buildings, grids or communities or whistled to these
        departments (everything when `building_codes` is None), narrowed by `filters`,
        soonest deadline first, then most "Me too"."""
        where = [f"status IN ({placeholders(OPEN_STATUSES)})"]
        params: list[Any] = list(OPEN_STATUSES)
        if building_codes is not None:
            scopes = [("building_code", list(building_codes)), ("grid_code", list(grid_codes)),
                      ("community_code", list(community_codes)),
                      ("department_code", list(department_codes))]
            scopes = [(column, codes) for column, codes in scopes if codes]
            if not scopes:
                return [], 0
            where.append("(" + " OR ".join(f"{column} IN ({placeholders(codes)})"
                                           for column, codes in scopes) + ")")
            for _, codes in scopes:
                params += codes
        if filters is not None:
            if filters.domain is not None:
                where.append("domain = ?")
                params.append(filters.domain)
            if filters.due_by is not None:
                where.append("due_at <= ?")
                params.append(filters.due_by)
            if filters.column is not None:
                where.append(f"{_FILTER_COLUMNS[filters.column]} IN "
                             f"({placeholders(filters.codes) or 'NULL'})")
                params += filters.codes
            if filters.involving is not None:
                where.append("(assignee_id = ? OR id IN "
                             "(SELECT ticket_id FROM ticket_events WHERE actor_id = ?))")
                params += [filters.involving, filters.involving]
        clause = " AND ".join(where)
        total = await self.db.fetchval(f"SELECT COUNT(*) FROM tickets WHERE {clause}", params)
        if not total or offset >= total:
            return [], int(total or 0)
        # written as the indexes of migration 010 are: a community's or grid's first page
        # walks one of them and stops, instead of sorting every open ticket
        rows = await self.db.fetchall(
            f"""SELECT * FROM tickets WHERE {clause}
                ORDER BY due_at IS NULL, {self._minute}, me_too DESC, due_at, id
                LIMIT ? OFFSET ?""",
            [*params, limit, offset])
        return [_ticket(r) for r in rows], int(total)

    async def due(self, now: float) -> list[Ticket]:
        statuses = placeholders(OPEN_STATUSES)
        rows = await self.db.fetchall(
            f"""SELECT * FROM tickets WHERE status IN ({statuses})
                AND ((remind_at IS NOT NULL AND remind_at <= ?)
                     OR (due_at IS NOT NULL AND due_at <= ?))
                ORDER BY id""", [*OPEN_STATUSES, now, now])
        return [_ticket(r) for r in rows]

    async def next_due(self) -> float | None:
        statuses = placeholders(OPEN_STATUSES)
        row = await self.db.fetchone(
            f"""SELECT MIN(COALESCE(remind_at, 1e18)), MIN(COALESCE(due_at, 1e18))
                FROM tickets WHERE status IN ({statuses})
                AND (remind_at IS NOT NULL OR due_at IS NOT NULL)""", list(OPEN_STATUSES))
        soonest = [float(v) for v in row if v is not None] if row is not None else []
        return min(soonest) if soonest else None

    # timeline

    async def add_event(self, ticket_id: int, actor_id: int | None, kind: str,
                        note: str | None = None, data: dict[str, Any] | None = None) -> None:
        await self.db.execute(
            "INSERT INTO ticket_events (ticket_id, at, actor_id, kind, note, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, epoch(), actor_id, kind, note,
             codec.dumps(data) if data else None))

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        rows = await self.db.fetchall(
            "SELECT * FROM ticket_events WHERE ticket_id = ? ORDER BY id", (ticket_id,))
        return [_event(r) for r in rows]

    async def events_by(self, actor_id: int, since: float) -> list[TicketEvent]:
        """What one person did on any ticket since a time, in order (AB岗's summary)."""
        rows = await self.db.fetchall(
            "SELECT * FROM ticket_events WHERE actor_id = ? AND at >= ? ORDER BY id",
            (actor_id, since))
        return [_event(r) for r in rows]

    # cards

    async def add_card(self, ticket_id: int, chat_id: int, message_id: int, kind: str) -> None:
        await self.db.execute(
            "INSERT INTO ticket_cards (ticket_id, chat_id, message_id, kind) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (ticket_id, chat_id, message_id, kind))

    async def show_cards(self, chat_id: int, shown: Iterable[tuple[int, int, str]]) -> None:
        """Cards shown in a private chat (`/tickets`, `/ticket N`): each (ticket, message,
        kind) becomes the ticket's live card there, in place of the copy shown before, so a
        person who looks often does not make every later step edit every old copy."""
        for ticket_id, message_id, kind in shown:
            await self.db.execute(
                "DELETE FROM ticket_cards WHERE ticket_id = ? AND chat_id = ? "
                "AND kind IN ('head', 'staff', 'department') AND message_id != ?",
                (ticket_id, chat_id, message_id))
            await self.add_card(ticket_id, chat_id, message_id, kind)

    async def cards(self, ticket_id: int) -> list[TicketCard]:
        rows = await self.db.fetchall(
            "SELECT * FROM ticket_cards WHERE ticket_id = ? ORDER BY kind, chat_id", (ticket_id,))
        return [TicketCard(**dict(r)) for r in rows]

    async def drop_cards(self, ticket_id: int, chat_id: int, kind: str) -> int:
        """Forget a chat's cards of a ticket (no later step edits them again)."""
        return await self.db.execute_rowcount(
            "DELETE FROM ticket_cards WHERE ticket_id = ? AND chat_id = ? AND kind = ?",
            (ticket_id, chat_id, kind))

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        await self.db.execute(
            "UPDATE ticket_cards SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))
        await self.db.execute("UPDATE prompts SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))

    # Me too

    async def add_me_too(self, ticket_id: int, user_id: int) -> int | None:
        """Count a resident once; returns the new count, None when already counted."""
        added = await self.db.execute_rowcount(
            "INSERT INTO me_too (ticket_id, user_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (ticket_id, user_id, epoch()))
        if not added:
            return None
        await self.db.execute("UPDATE tickets SET me_too = me_too + 1 WHERE id = ?", (ticket_id,))
        return int(await self.db.fetchval("SELECT me_too FROM tickets WHERE id = ?",
                                          (ticket_id,)))

    # prompts and relays

    async def add_prompt(self, chat_id: int, message_id: int, user_id: int | None,
                         ticket_id: int, action: str) -> None:
        await self.db.execute(
            "INSERT INTO prompts (chat_id, message_id, user_id, ticket_id, action, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (chat_id, message_id) DO UPDATE SET "
            "user_id = excluded.user_id, ticket_id = excluded.ticket_id, "
            "action = excluded.action, created_at = excluded.created_at",
            (chat_id, message_id, user_id, ticket_id, action, epoch()))

    async def prompt(self, chat_id: int, message_id: int) -> Prompt | None:
        row = await self.db.fetchone(
            "SELECT chat_id, message_id, user_id, ticket_id, action FROM prompts "
            "WHERE chat_id = ? AND message_id = ?", (chat_id, message_id))
        return Prompt(**dict(row)) if row else None

    async def drop_prompts_of(self, user_id: int, keep: tuple[str, ...]) -> int:
        """Forget the prompts waiting for this person's words, except the `keep` actions."""
        return await self.db.execute_rowcount(
            f"DELETE FROM prompts WHERE user_id = ? AND action NOT IN ({placeholders(keep)})",
            (user_id, *keep))

    async def drop_prompt(self, chat_id: int, message_id: int) -> bool:
        return await self.db.execute_rowcount(
            "DELETE FROM prompts WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)) > 0
