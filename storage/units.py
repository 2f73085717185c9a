"""Member units' records (SPEC §10): 双报到 reports (the units themselves are rows of `units`,
kind 'member', in `storage.map`)."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import DualReport
from storage.util import now_iso, placeholders


def _report(row: Row) -> DualReport:
    return DualReport(user_id=row["user_id"], member_code=row["member_code"],
                      community_code=row["community_code"],
                      skills=tuple(s for s in row["skills"].split(",") if s),
                      reported_at=row["reported_at"])


class UnitRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def report_in(self, user_id: int, member_code: str, community_code: str,
                        skills: Iterable[str]) -> None:
        """Record (or renew) a person's 双报到 to the community where they live."""
        await self.db.execute(
            """INSERT INTO dual_reports (user_id, member_code, community_code, skills,
                                         reported_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(user_id) DO UPDATE SET member_code = excluded.member_code,
                   community_code = excluded.community_code, skills = excluded.skills,
                   reported_at = excluded.reported_at""",
            (user_id, member_code, community_code, ",".join(skills), now_iso()))

    async def dual_report(self, user_id: int) -> DualReport | None:
        row = await self.db.fetchone("SELECT * FROM dual_reports WHERE user_id = ?", (user_id,))
        return _report(row) if row else None

    async def dual_reports(self, community_codes: Iterable[str]) -> list[DualReport]:
        """Those reported to these communities, by user id."""
        codes = list(community_codes)
        if not codes:
            return []
        rows = await self.db.fetchall(
            f"""SELECT * FROM dual_reports WHERE community_code IN ({placeholders(codes)})
                ORDER BY user_id""", codes)
        return [_report(r) for r in rows]
