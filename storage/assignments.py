"""点将 (SPEC §10): tickets offered from 点将台 to one person each, their answers, and the
hours of the resolved ones.

Each person is asked once per ticket (the unique key refuses a second ask, a decline
included) until the ticket is reopened: an ask withdrawn or resolved before may then be made
again (the same row, its credited hours kept). Every change of an ask's state is a
conditional UPDATE, so the store decides which of two presses came first.
"""

from __future__ import annotations

from storage.dbapi import Database
from storage.models import OPEN_ASKS, REASKABLE, Assignment, AssignmentState
from storage.util import placeholders


class AssignmentRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, ticket_id: int, user_id: int, unit_code: str | None,
                  assigned_by: int | None, at: float) -> Assignment | None:
        """A new ask, or an earlier one withdrawn or resolved made again; None when this
        person's ask for this ticket is still open, accepted or declined."""
        row = await self.db.fetchone(
            f"""INSERT INTO ticket_assignments (ticket_id, user_id, unit_code, assigned_by,
                                                created_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (ticket_id, user_id) DO UPDATE SET
                    state = 'offered', unit_code = excluded.unit_code,
                    assigned_by = excluded.assigned_by, created_at = excluded.created_at,
                    answered_at = NULL
                WHERE ticket_assignments.state IN ({placeholders(REASKABLE)})
                RETURNING *""",
            (ticket_id, user_id, unit_code, assigned_by, at, *REASKABLE))
        return Assignment(**dict(row)) if row else None

    async def get(self, ticket_id: int, user_id: int) -> Assignment | None:
        row = await self.db.fetchone(
            "SELECT * FROM ticket_assignments WHERE ticket_id = ? AND user_id = ?",
            (ticket_id, user_id))
        return Assignment(**dict(row)) if row else None

    async def of_ticket(self, ticket_id: int) -> list[Assignment]:
        rows = await self.db.fetchall(
            "SELECT * FROM ticket_assignments WHERE ticket_id = ? ORDER BY id", (ticket_id,))
        return [Assignment(**dict(r)) for r in rows]

    async def move(self, assignment_id: int, from_state: str, to_state: str, at: float) -> bool:
        """offered → accepted | declined | withdrawn, accepted → withdrawn; False when it was
        no longer `from_state`."""
        return await self.db.execute_rowcount(
            """UPDATE ticket_assignments SET state = ?, answered_at = ?
               WHERE id = ? AND state = ?""", (to_state, at, assignment_id, from_state)) > 0

    async def withdraw(self, ticket_id: int, at: float,
                       states: tuple[AssignmentState, ...] = OPEN_ASKS) -> list[Assignment]:
        """A ticket's asks in `states`, withdrawn, as they were before (by id): those still
        waiting when another accepted; those waiting or accepted when the ticket closes
        otherwise than by its assignee's own resolve, or is reopened."""
        rows = await self.db.fetchall(
            f"""SELECT * FROM ticket_assignments
                WHERE ticket_id = ? AND state IN ({placeholders(states)}) ORDER BY id""",
            (ticket_id, *states))
        withdrawn = []
        for row in (Assignment(**dict(r)) for r in rows):
            # each conditional, as every move of an ask: a press that came first stands
            if await self.move(row.id, row.state, "withdrawn", at):
                withdrawn.append(row)
        return withdrawn

    async def resolve(self, assignment_id: int, hours: float, points: int, at: float) -> bool:
        """accepted → resolved with its hours (a second time, after a reopening: the hours
        of the first stand)."""
        return await self.db.execute_rowcount(
            """UPDATE ticket_assignments SET state = 'resolved',
                      hours = CASE WHEN resolved_at IS NULL THEN ? ELSE hours END,
                      points = CASE WHEN resolved_at IS NULL THEN ? ELSE points END,
                      resolved_at = COALESCE(resolved_at, ?)
               WHERE id = ? AND state = 'accepted'""",
            (hours, points, at, assignment_id)) > 0

    async def open_count(self, user_id: int) -> int:
        """A person's open assignments (asked and not answered, or accepted), their load."""
        return int(await self.db.fetchval(
            f"""SELECT COUNT(*) FROM ticket_assignments
               WHERE user_id = ? AND state IN ({placeholders(OPEN_ASKS)})""",
            (user_id, *OPEN_ASKS)) or 0)

    async def hours_since(self, user_id: int, since: float) -> float:
        """A person's hours since then: horns confirmed (by their close) and assignments
        resolved."""
        horns = await self.db.fetchval(
            """SELECT COALESCE(SUM(c.hours), 0) FROM horn_checkins c
               JOIN horns h ON h.id = c.horn_id
               WHERE c.person_id = ? AND c.state = 'in' AND c.present = 1
                 AND h.confirmed_at IS NOT NULL AND h.confirmed_at >= ?""", (user_id, since))
        tickets = await self.db.fetchval(
            """SELECT COALESCE(SUM(hours), 0) FROM ticket_assignments
               WHERE user_id = ? AND resolved_at IS NOT NULL AND resolved_at >= ?""",
            (user_id, since))
        return float(horns or 0) + float(tickets or 0)
