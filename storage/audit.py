"""The audit log of role changes (SPEC §11): rows are only ever added."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import Record
from storage.util import placeholders


class AuditEntry(Record):
    """One role change: who (`actor_id`, None for the bot itself) did what to whom, where."""

    id: int
    at: float
    actor_id: int | None
    action: str
    unit_code: str
    subject_id: int | None
    detail: str | None


def _entry(row: Row) -> AuditEntry:
    return AuditEntry(**dict(row))


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, at: float, actor_id: int | None, action: str, unit_code: str,
                  subject_id: int | None, detail: str | None) -> None:
        await self.db.execute(
            "INSERT INTO audit_log (at, actor_id, action, unit_code, subject_id, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)", (at, actor_id, action, unit_code, subject_id, detail))

    async def latest(self, unit_codes: Iterable[str], limit: int,
                     offset: int = 0) -> tuple[list[AuditEntry], int]:
        """The entries on these units, newest first, and how many there are in all."""
        codes = list(unit_codes)
        if not codes:
            return [], 0
        where = f"unit_code IN ({placeholders(codes)})"
        total = int(await self.db.fetchval(f"SELECT COUNT(*) FROM audit_log WHERE {where}",
                                           codes))
        rows = await self.db.fetchall(
            f"SELECT * FROM audit_log WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*codes, limit, offset])
        return [_entry(r) for r in rows], total
