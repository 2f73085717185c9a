"""Report repository: what the monthly report and the leaderboards count, read-only.

Every query takes a period [start, end) in epoch seconds and the grids in scope (None: the
whole city). Tickets belong to the grid they were filed in (`tickets.grid_code`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from storage.dbapi import Database
from storage.models import DepartmentEvent, ReportTicket
from storage.util import placeholders

RATING_EVENTS = ("rated", "reopened")  # 1–2 stars reopen the ticket: a rating all the same
DEPARTMENT_EVENTS = ("whistled", "accepted", "declined", "overdue", "resolved", "rejected",
                     "merged")


def _grid_filter(column: str, grid_codes: Sequence[str] | None) -> tuple[str, list[Any]]:
    if grid_codes is None:
        return "1 = 1", []
    return f"{column} IN ({placeholders(grid_codes)})", list(grid_codes)


class ReportRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        # SQLite before 3.44 has no string_agg
        self._concat = ("string_agg(note, ',')" if db.dialect == "postgresql"
                        else "group_concat(note)")

    async def tickets(self, grid_codes: Sequence[str] | None, start: float,
                      end: float) -> list[ReportTicket]:
        """Every ticket the period touched: received, first resolved, overdue or rated in it."""
        if grid_codes is not None and not grid_codes:
            return []
        where, params = _grid_filter("t.grid_code", grid_codes)
        rating_kinds = placeholders(RATING_EVENTS)
        rows = await self.db.fetchall_long(
            f"""WITH first_resolved AS (
                    SELECT ticket_id, MIN(at) AS at FROM ticket_events
                    WHERE kind = 'resolved' GROUP BY ticket_id),
                touched AS (
                    SELECT DISTINCT ticket_id FROM ticket_events
                    WHERE at >= ? AND at < ? AND kind IN ('overdue', {rating_kinds}))
                SELECT t.id, t.grid_code, t.building_code, t.community_code, t.domain, t.urgency,
                       t.status, t.text, t.created_at, f.at AS first_resolved_at,
                       t.source, t.source_ref, t.caller_name, t.caller_phone,
                       EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id
                               AND e.kind = 'overdue' AND e.at >= ? AND e.at < ?) AS overdue,
                       (SELECT {self._concat} FROM (
                            SELECT e.note FROM ticket_events e WHERE e.ticket_id = t.id
                               AND e.kind IN ({rating_kinds}) AND e.at >= ? AND e.at < ?
                            ORDER BY e.id) AS r) AS ratings
                FROM tickets t LEFT JOIN first_resolved f ON f.ticket_id = t.id
                WHERE {where} AND ((t.created_at >= ? AND t.created_at < ?)
                                   OR (f.at >= ? AND f.at < ?)
                                   OR t.id IN (SELECT ticket_id FROM touched))
                ORDER BY t.id""",
            [start, end, *RATING_EVENTS, start, end, *RATING_EVENTS, start, end, *params,
             start, end, start, end])
        result = []
        for row in rows:
            ratings = tuple(int(n) for n in (row["ratings"] or "").split(",")
                            if n.strip().isdigit() and 1 <= int(n) <= 5)
            result.append(ReportTicket(
                id=row["id"], grid_code=row["grid_code"], building_code=row["building_code"],
                community_code=row["community_code"], domain=row["domain"],
                urgency=row["urgency"], status=row["status"], text=row["text"],
                created_at=row["created_at"], first_resolved_at=row["first_resolved_at"],
                overdue_in_period=bool(row["overdue"]), ratings_in_period=ratings,
                source=row["source"], source_ref=row["source_ref"],
                caller_name=row["caller_name"], caller_phone=row["caller_phone"]))
        return result

    async def department_events(self, grid_codes: Sequence[str] | None,
                                end: float) -> list[DepartmentEvent]:
        """The steps, before `end`, of every ticket in scope that was ever whistled, in order
        per ticket (the departments' board walks each timeline)."""
        if grid_codes is not None and not grid_codes:
            return []
        where, params = _grid_filter("t.grid_code", grid_codes)
        kinds = placeholders(DEPARTMENT_EVENTS)
        rows = await self.db.fetchall_long(
            f"""SELECT e.ticket_id, e.at, e.kind, e.note, e.data FROM ticket_events e
                JOIN tickets t ON t.id = e.ticket_id
                WHERE {where} AND e.at < ? AND e.kind IN ({kinds})
                  AND e.ticket_id IN (SELECT ticket_id FROM ticket_events
                                      WHERE kind = 'whistled' AND at < ?)
                ORDER BY e.ticket_id, e.id""",
            [*params, end, *DEPARTMENT_EVENTS, end])
        return [DepartmentEvent(ticket_id=r["ticket_id"], at=r["at"], kind=r["kind"],
                                note=r["note"],
                                data=json.loads(r["data"]) if r["data"] else None)
                for r in rows]

    async def taken(self, grid_codes: Sequence[str] | None, start: float,
                    end: float) -> dict[int, int]:
        """Service requests taken (接单) per person in the period."""
        if grid_codes is not None and not grid_codes:
            return {}
        where, params = _grid_filter("t.grid_code", grid_codes)
        rows = await self.db.fetchall_long(
            f"""SELECT e.actor_id, COUNT(*) AS n FROM ticket_events e
                JOIN tickets t ON t.id = e.ticket_id
                WHERE {where} AND e.kind = 'taken' AND e.at >= ? AND e.at < ?
                  AND e.actor_id IS NOT NULL
                GROUP BY e.actor_id""", [*params, start, end])
        return {r["actor_id"]: r["n"] for r in rows}
