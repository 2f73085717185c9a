"""AB岗 (SPEC §11): who stands in for whom, and who is away."""

from __future__ import annotations

from storage.dbapi import Database
from storage.models import Record


class StandIn(Record):
    """A holder's backup and absence (`away_since` None: at work)."""

    user_id: int
    backup_id: int | None = None
    away_since: float | None = None
    away_until: float | None = None


class BackupRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: int) -> StandIn | None:
        row = await self.db.fetchone("SELECT * FROM stand_ins WHERE user_id = ?", (user_id,))
        return StandIn(**dict(row)) if row is not None else None

    async def set_backup(self, user_id: int, backup_id: int) -> None:
        await self.db.execute(
            "INSERT INTO stand_ins (user_id, backup_id) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET backup_id = excluded.backup_id",
            (user_id, backup_id))

    async def set_away(self, user_id: int, since: float, until: float | None) -> None:
        """Away from `since` until `until`; a second /away moves the date only (the summary
        on return still covers the whole absence)."""
        await self.db.execute(
            "INSERT INTO stand_ins (user_id, away_since, away_until) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET "
            "away_since = COALESCE(stand_ins.away_since, excluded.away_since), "
            "away_until = excluded.away_until", (user_id, since, until))

    async def end_away(self, user_id: int) -> bool:
        """False when the holder was not away (a second /back, a date already passed)."""
        return await self.db.execute_rowcount(
            "UPDATE stand_ins SET away_since = NULL, away_until = NULL "
            "WHERE user_id = ? AND away_since IS NOT NULL", (user_id,)) > 0

    async def expired(self, now: float) -> list[StandIn]:
        """The holders whose away date has passed (ended by the daily run)."""
        rows = await self.db.fetchall(
            "SELECT * FROM stand_ins WHERE away_since IS NOT NULL AND away_until IS NOT NULL "
            "AND away_until <= ?", (now,))
        return [StandIn(**dict(r)) for r in rows]
