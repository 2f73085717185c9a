"""What `/healthz` and `/metrics` read of the store (SPEC §15): whether it answers, the last
update handled, the outbox's depth, the scheduler's last run per job, the tickets by status."""

from __future__ import annotations

from storage.dbapi import Database


class HealthRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ping(self) -> None:
        """Raises when the store does not answer."""
        await self.db.fetchval("SELECT 1")

    async def last_update_at(self) -> str | None:
        """When the latest update was handled (ISO 8601), None if none ever was."""
        value = await self.db.fetchval("SELECT MAX(processed_at) FROM inbox")
        return None if value is None else str(value)

    async def outbox_depth(self) -> dict[int, int]:
        """Items waiting to go out, by priority."""
        rows = await self.db.fetchall(
            "SELECT priority, COUNT(*) AS n FROM outbox WHERE status = 'pending' "
            "GROUP BY priority")
        return {int(r["priority"]): int(r["n"]) for r in rows}

    async def last_runs(self) -> dict[str, tuple[str, float]]:
        """Each scheduled job's latest period run and when it ran (Unix time)."""
        rows = await self.db.fetchall(
            "SELECT job, period, ran_at FROM schedule_runs r WHERE ran_at = "
            "(SELECT MAX(ran_at) FROM schedule_runs s WHERE s.job = r.job)")
        return {str(r["job"]): (str(r["period"]), float(r["ran_at"])) for r in rows}

    async def tickets_by_status(self) -> dict[str, int]:
        """How many tickets stand in each status (those with none: absent)."""
        rows = await self.db.fetchall(
            "SELECT status, COUNT(*) AS n FROM tickets GROUP BY status")
        return {str(r["status"]): int(r["n"]) for r in rows}
