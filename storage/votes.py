"""The residents' quarterly vote 群众评单 (SPEC §10): vote posts and ballots, and the member
units' score figures for a period (horn hours, post slots, resources, meetings, votes)."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import UnitVote, VoteTally
from storage.util import placeholders


def _vote(row: Row) -> UnitVote:
    return UnitVote(id=row["id"], period=row["period"], building_code=row["building_code"],
                    unit_code=row["unit_code"], chat_id=row["chat_id"],
                    thread_id=row["thread_id"], message_id=row["message_id"],
                    opened_at=row["opened_at"], closes_at=row["closes_at"],
                    closed_at=row["closed_at"])


class VoteRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self, period: str, building_code: str, unit_code: str, chat_id: int,
                   thread_id: int, opened_at: float, closes_at: float) -> UnitVote | None:
        """A building's vote of a period; None when it has one already (the store decides
        "one vote post per building chat per quarter")."""
        row = await self.db.fetchone(
            """INSERT INTO unit_votes (period, building_code, unit_code, chat_id, thread_id,
                                       opened_at, closes_at)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *""",
            (period, building_code, unit_code, chat_id, thread_id, opened_at, closes_at))
        return _vote(row) if row is not None else None

    async def get(self, vote_id: int) -> UnitVote | None:
        row = await self.db.fetchone("SELECT * FROM unit_votes WHERE id = ?", (vote_id,))
        return _vote(row) if row else None

    async def set_message(self, vote_id: int, message_id: int) -> None:
        await self.db.execute("UPDATE unit_votes SET message_id = ? WHERE id = ?",
                              (message_id, vote_id))

    async def cast(self, vote_id: int, user_id: int, stars: int, at: float) -> bool:
        """A resident's ballot; True when it is their first (else their vote changed)."""
        first = await self.db.fetchval(
            "SELECT 1 FROM unit_ballots WHERE vote_id = ? AND user_id = ?",
            (vote_id, user_id)) is None
        await self.db.execute(
            """INSERT INTO unit_ballots (vote_id, user_id, stars, at) VALUES (?, ?, ?, ?)
               ON CONFLICT(vote_id, user_id) DO UPDATE SET stars = excluded.stars,
                   at = excluded.at""", (vote_id, user_id, stars, at))
        return first

    async def ballot(self, vote_id: int, user_id: int) -> int | None:
        value = await self.db.fetchval(
            "SELECT stars FROM unit_ballots WHERE vote_id = ? AND user_id = ?",
            (vote_id, user_id))
        return int(value) if value is not None else None

    async def tally(self, vote_ids: Iterable[int]) -> VoteTally:
        ids = list(vote_ids)
        if not ids:
            return VoteTally()
        row = await self.db.fetchone(
            f"""SELECT COUNT(*) AS votes, COALESCE(SUM(stars), 0) AS stars FROM unit_ballots
                WHERE vote_id IN ({placeholders(ids)})""", ids)
        assert row is not None
        return VoteTally(votes=int(row["votes"]), stars=int(row["stars"]))

    async def due(self, now: float) -> list[UnitVote]:
        """Open votes whose seven days are over."""
        rows = await self.db.fetchall(
            "SELECT * FROM unit_votes WHERE closed_at IS NULL AND closes_at <= ? ORDER BY id",
            (now,))
        return [_vote(r) for r in rows]

    async def close(self, vote_id: int, at: float) -> bool:
        """Close a vote, once: False when it was closed already."""
        return await self.db.execute_rowcount(
            "UPDATE unit_votes SET closed_at = ? WHERE id = ? AND closed_at IS NULL",
            (at, vote_id)) > 0

    async def closed_between(self, start: float, end: float) -> list[UnitVote]:
        rows = await self.db.fetchall(
            """SELECT * FROM unit_votes WHERE closed_at IS NOT NULL AND closed_at >= ?
                 AND closed_at < ? ORDER BY id""", (start, end))
        return [_vote(r) for r in rows]

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: its votes' posts and results follow it."""
        await self.db.execute("UPDATE unit_votes SET chat_id = ? WHERE chat_id = ?",
                              (new_id, old_id))

    async def erase_person(self, user_id: int, erased_id: int) -> None:
        """SPEC §14: ballots stay counted, by no one."""
        await self.db.execute("UPDATE unit_ballots SET user_id = ? WHERE user_id = ?",
                              (erased_id, user_id))

    # the score's other figures, per member unit, in [start, end)

    async def horn_hours(self, start: float, end: float) -> dict[str, float]:
        """Confirmed people-hours on horns confirmed in the period."""
        rows = await self.db.fetchall(
            """SELECT hu.unit_code, SUM(hu.confirmed * hu.hours) AS hours FROM horn_units hu
               JOIN horns h ON h.id = hu.horn_id
               WHERE hu.hours IS NOT NULL AND h.confirmed_at >= ? AND h.confirmed_at < ?
               GROUP BY hu.unit_code""", (start, end))
        return {r["unit_code"]: float(r["hours"] or 0) for r in rows}

    async def resources_provided(self, start: float, end: float) -> dict[str, int]:
        """Requests for each unit's resources accepted in the period."""
        rows = await self.db.fetchall(
            """SELECT r.unit_code, COUNT(*) AS n FROM resource_requests rr
               JOIN resources r ON r.id = rr.resource_id
               WHERE rr.state = 'accepted' AND rr.answered_at >= ? AND rr.answered_at < ?
               GROUP BY r.unit_code""", (start, end))
        return {r["unit_code"]: int(r["n"]) for r in rows}

    async def slots_held(self, start: float, end: float
                         ) -> list[tuple[str, float, float | None]]:
        """Post slots units held at some time in [start, end): (unit, from, until or None)."""
        rows = await self.db.fetchall(
            """SELECT unit_code, held_from, held_until FROM post_spans
               WHERE held_from < ? AND (held_until IS NULL OR held_until > ?)
               ORDER BY unit_code, held_from""", (end, start))
        return [(r["unit_code"], float(r["held_from"]),
                 None if r["held_until"] is None else float(r["held_until"])) for r in rows]
