"""Evaluation after each monthly theme and the annual assessment (SPEC §12).

Rounds (`evaluation_rounds`), what each rater was asked to rate and what they gave
(`evaluations`), the messages that ask them (`evaluation_messages`), and the read-only
facts of a year the assessment counts (tickets, the people who handled them, horn check-ins).
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import Record
from storage.util import placeholders

GRID = "grid"
WORKER = "worker"
#: the steps that count as handling a ticket (staff or a department acting on it)
HANDLING_EVENTS = ("acknowledged", "urgency", "escalated", "whistled", "accepted", "declined",
                   "resolved", "rejected", "merged", "replied", "offered",
                   "posted_to_building", "taken")
CLOSED = ("resolved", "rated")
OPEN = ("new", "acknowledged", "escalated", "whistled", "accepted")


class Evaluation(Record):
    """One thing a rater was asked to rate in a month: a grid (`subject_id` 0) or a grid
    worker on the grid `unit_code`; `score` None until rated."""

    month: str
    rater_id: int
    kind: str
    unit_code: str
    subject_id: int = 0
    position: int
    score: int | None = None
    note: str | None = None
    rated_at: float | None = None


class EvaluationMessage(Record):
    chat_id: int
    message_id: int
    month: str
    rater_id: int
    first: int
    last: int


class YearTicket(Record):
    """A ticket received in the assessed year, as the assessment sees it."""

    id: int
    grid_code: str
    building_code: str
    department_code: str | None
    status: str
    created_at: float
    due_at: float | None
    rating: int | None
    overdue: bool
    handlers: tuple[int, ...] = ()


class CheckIn(Record):
    """A horn answered: the person checked in (or was confirmed present)."""

    person_id: int
    grid_code: str | None
    at: float


def _evaluation(row: Row) -> Evaluation:
    return Evaluation(**dict(row))


class EvaluationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # rounds

    async def open_round(self, month: str, at: float) -> bool:
        """Open a month's round; False when it was open already."""
        return await self.db.execute_rowcount(
            "INSERT INTO evaluation_rounds (month, opened_at) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING", (month, at)) > 0

    async def opened_at(self, month: str) -> float | None:
        value = await self.db.fetchval(
            "SELECT opened_at FROM evaluation_rounds WHERE month = ?", (month,))
        return float(value) if value is not None else None

    async def latest_round(self) -> tuple[str, float] | None:
        row = await self.db.fetchone(
            "SELECT month, opened_at FROM evaluation_rounds ORDER BY month DESC LIMIT 1")
        return (row["month"], float(row["opened_at"])) if row is not None else None

    # what is asked and given

    async def ask(self, item: Evaluation) -> bool:
        return await self.db.execute_rowcount(
            """INSERT INTO evaluations (month, rater_id, kind, unit_code, subject_id, position)
               VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (item.month, item.rater_id, item.kind, item.unit_code, item.subject_id,
             item.position)) > 0

    async def asked(self, month: str, rater_id: int | None = None,
                    unit_codes: Iterable[str] | None = None) -> list[Evaluation]:
        """A month's rows, of one rater and/or on some grids, in each rater's order."""
        sql = "SELECT * FROM evaluations WHERE month = ?"
        params: list[object] = [month]
        if rater_id is not None:
            sql += " AND rater_id = ?"
            params.append(rater_id)
        if unit_codes is not None:
            codes = list(unit_codes)
            if not codes:
                return []
            sql += f" AND unit_code IN ({placeholders(codes)})"
            params += codes
        rows = await self.db.fetchall(sql + " ORDER BY rater_id, position", params)
        return [_evaluation(r) for r in rows]

    async def get(self, month: str, rater_id: int, unit_code: str,
                  subject_id: int) -> Evaluation | None:
        row = await self.db.fetchone(
            """SELECT * FROM evaluations WHERE month = ? AND rater_id = ? AND unit_code = ?
               AND subject_id = ?""", (month, rater_id, unit_code, subject_id))
        return _evaluation(row) if row is not None else None

    async def rate(self, month: str, rater_id: int, unit_code: str, subject_id: int,
                   score: int, at: float) -> None:
        await self.db.execute(
            """UPDATE evaluations SET score = ?, rated_at = ? WHERE month = ? AND rater_id = ?
               AND unit_code = ? AND subject_id = ?""",
            (score, at, month, rater_id, unit_code, subject_id))

    async def set_note(self, month: str, rater_id: int, unit_code: str, subject_id: int,
                       note: str) -> None:
        await self.db.execute(
            """UPDATE evaluations SET note = ? WHERE month = ? AND rater_id = ?
               AND unit_code = ? AND subject_id = ?""",
            (note, month, rater_id, unit_code, subject_id))

    async def rated_between(self, first_month: str, last_month: str) -> list[Evaluation]:
        """Every rating given for the months first..last (inclusive)."""
        rows = await self.db.fetchall(
            """SELECT * FROM evaluations WHERE month >= ? AND month <= ?
               AND score IS NOT NULL ORDER BY month, unit_code, subject_id, rater_id""",
            (first_month, last_month))
        return [_evaluation(r) for r in rows]

    # the messages that ask

    async def add_message(self, message: EvaluationMessage) -> None:
        await self.db.execute(
            """INSERT INTO evaluation_messages (chat_id, message_id, month, rater_id, first,
                   last) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (message.chat_id, message.message_id, message.month, message.rater_id,
             message.first, message.last))

    async def message(self, chat_id: int, message_id: int) -> EvaluationMessage | None:
        row = await self.db.fetchone(
            "SELECT * FROM evaluation_messages WHERE chat_id = ? AND message_id = ?",
            (chat_id, message_id))
        return EvaluationMessage(**dict(row)) if row is not None else None

    # the year's facts (the annual assessment)

    async def year_tickets(self, start: float, end: float) -> list[YearTicket]:
        """Tickets received in [start, end), each with whether it ever went overdue and
        who handled it (the actors of its handling steps)."""
        rows = await self.db.fetchall_long(
            """SELECT t.id, t.grid_code, t.building_code, t.department_code, t.status,
                      t.created_at, t.due_at, t.rating,
                      EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id
                              AND e.kind = 'overdue') AS overdue
               FROM tickets t WHERE t.created_at >= ? AND t.created_at < ? ORDER BY t.id""",
            (start, end))
        kinds = placeholders(HANDLING_EVENTS)
        acted = await self.db.fetchall_long(
            f"""SELECT DISTINCT e.ticket_id, e.actor_id FROM ticket_events e
                JOIN tickets t ON t.id = e.ticket_id
                WHERE t.created_at >= ? AND t.created_at < ? AND e.actor_id IS NOT NULL
                  AND e.kind IN ({kinds})
                ORDER BY e.ticket_id, e.actor_id""", (start, end, *HANDLING_EVENTS))
        handlers: dict[int, list[int]] = {}
        for row in acted:
            handlers.setdefault(row["ticket_id"], []).append(row["actor_id"])
        return [YearTicket(id=r["id"], grid_code=r["grid_code"],
                           building_code=r["building_code"],
                           department_code=r["department_code"], status=r["status"],
                           created_at=r["created_at"], due_at=r["due_at"], rating=r["rating"],
                           overdue=bool(r["overdue"]),
                           handlers=tuple(handlers.get(r["id"], ())))
                for r in rows]

    async def checkins(self, start: float, end: float) -> list[CheckIn]:
        """Horns answered in [start, end): check-ins still standing, or confirmed present."""
        rows = await self.db.fetchall_long(
            """SELECT c.person_id, h.grid_code, c.at FROM horn_checkins c
               JOIN horns h ON h.id = c.horn_id
               WHERE c.at >= ? AND c.at < ? AND (c.state = 'in' OR c.present = 1)
               ORDER BY c.at""", (start, end))
        return [CheckIn(person_id=r["person_id"], grid_code=r["grid_code"], at=r["at"])
                for r in rows]
