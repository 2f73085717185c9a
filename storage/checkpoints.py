"""Checkpoints repository: patrol checkpoints 专项巡更点, their visits and the periods that
ended without one (SPEC §13)."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import Checkpoint, CheckpointMiss, CheckpointVisit
from storage.util import epoch, placeholders


def _checkpoint(row: Row) -> Checkpoint:
    return Checkpoint(**{k: row[k] for k in row.keys() if k in Checkpoint.model_fields})


def _visit(row: Row) -> CheckpointVisit:
    return CheckpointVisit(**{k: row[k] for k in row.keys() if k in CheckpointVisit.model_fields})


def _miss(row: Row) -> CheckpointMiss:
    return CheckpointMiss(**{k: row[k] for k in row.keys() if k in CheckpointMiss.model_fields})


class CheckpointRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self, grid_codes: Iterable[str] | None = None, *,
                  retired: bool = False) -> list[Checkpoint]:
        """The checkpoints in service (of the given grids; None: all), by grid, then file
        order; `retired` True: the retired ones too."""
        sql = "SELECT * FROM checkpoints WHERE 1 = 1"
        params: list[object] = []
        if grid_codes is not None:
            codes = list(grid_codes)
            if not codes:
                return []
            sql += f" AND grid_code IN ({placeholders(codes)})"
            params = list(codes)
        if not retired:
            sql += " AND retired_at IS NULL"
        rows = await self.db.fetchall(sql + " ORDER BY grid_code, position, code", params)
        return [_checkpoint(r) for r in rows]

    async def get(self, code: str) -> Checkpoint | None:
        row = await self.db.fetchone("SELECT * FROM checkpoints WHERE code = ?", (code,))
        return _checkpoint(row) if row else None

    async def upsert(self, cp: Checkpoint) -> None:
        """Create or update; an update keeps the checkpoint's creation time and whether it
        is retired (retiring is `retire`'s alone)."""
        await self.db.execute(
            """INSERT INTO checkpoints (code, grid_code, name, matter, lat, lon, radius_m,
                                        frequency, building_code, position, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(code) DO UPDATE SET grid_code = excluded.grid_code,
                   name = excluded.name, matter = excluded.matter, lat = excluded.lat,
                   lon = excluded.lon, radius_m = excluded.radius_m,
                   frequency = excluded.frequency, building_code = excluded.building_code,
                   position = excluded.position""",
            (cp.code, cp.grid_code, cp.name, cp.matter, cp.lat, cp.lon, cp.radius_m,
             cp.frequency, cp.building_code, cp.position, cp.created_at or epoch()))

    async def retire(self, code: str, at: float, by: int | None) -> bool:
        """停用 once: False when it is retired already (the store decides a double press)."""
        return await self.db.execute_rowcount(
            """UPDATE checkpoints SET retired_at = ?, retired_by = ?
               WHERE code = ? AND retired_at IS NULL""", (at, by, code)) > 0

    async def next_position(self, grid_code: str) -> int:
        value = await self.db.fetchval(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM checkpoints WHERE grid_code = ?",
            (grid_code,))
        return int(value or 0)

    # visits

    async def add_visit(self, checkpoint_code: str, user_id: int, at: float, period: str,
                        lat: float, lon: float, distance_m: float,
                        source_update_id: int | None) -> int:
        """Record a visit and return its id; a replayed update finds the one it made."""
        if source_update_id is not None:
            exists = await self.db.fetchval(
                "SELECT id FROM checkpoint_visits WHERE source_update_id = ?",
                (source_update_id,))
            if exists is not None:
                return int(exists)
        return await self.db.execute(
            """INSERT INTO checkpoint_visits (checkpoint_code, user_id, at, period, lat, lon,
                                              distance_m, source_update_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (checkpoint_code, user_id, at, period, lat, lon, distance_m, source_update_id))

    async def visit(self, visit_id: int) -> CheckpointVisit | None:
        row = await self.db.fetchone("SELECT * FROM checkpoint_visits WHERE id = ?",
                                     (visit_id,))
        return _visit(row) if row else None

    async def annotate(self, visit_id: int, note: str | None, photo_file_id: str | None) -> None:
        """Set a visit's note and/or photo (inside the caller's transaction)."""
        if note is not None:
            await self.db.execute("UPDATE checkpoint_visits SET note = ? WHERE id = ?",
                                  (note, visit_id))
        if photo_file_id is not None:
            await self.db.execute("UPDATE checkpoint_visits SET photo_file_id = ? WHERE id = ?",
                                  (photo_file_id, visit_id))

    async def visited(self, codes: Iterable[str], period_of: dict[str, str]) -> set[str]:
        """Of the checkpoints `codes`, those with a visit in their period `period_of[code]`."""
        found: set[str] = set()
        for code in codes:
            period = period_of.get(code)
            if period is not None and await self.db.fetchval(
                    "SELECT 1 FROM checkpoint_visits WHERE checkpoint_code = ? AND period = ?",
                    (code, period)) is not None:
                found.add(code)
        return found

    async def visits(self, codes: Iterable[str], start: float,
                     end: float) -> list[CheckpointVisit]:
        """Visits of the given checkpoints in [start, end)."""
        codes = list(codes)
        if not codes:
            return []
        rows = await self.db.fetchall(
            f"""SELECT * FROM checkpoint_visits WHERE at >= ? AND at < ?
                AND checkpoint_code IN ({placeholders(codes)}) ORDER BY at, id""",
            [start, end, *codes])
        return [_visit(r) for r in rows]

    # misses

    async def add_miss(self, code: str, period: str, start: float, end: float) -> bool:
        """Record that a period ended without a visit; False when it was recorded already
        (call it in the transaction that queues the reminders: the store decides "once")."""
        return await self.db.execute_rowcount(
            """INSERT INTO checkpoint_misses (checkpoint_code, period, period_start,
                                              period_end, noted_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (code, period, start, end, epoch())) > 0

    async def misses(self, codes: Iterable[str], start: float,
                     end: float) -> list[CheckpointMiss]:
        """Misses of the given checkpoints whose period ended in (start, end]."""
        codes = list(codes)
        if not codes:
            return []
        rows = await self.db.fetchall(
            f"""SELECT * FROM checkpoint_misses WHERE period_end > ? AND period_end <= ?
                AND checkpoint_code IN ({placeholders(codes)})
                ORDER BY period_end, checkpoint_code""",
            [start, end, *codes])
        return [_miss(r) for r in rows]

    async def erase_person(self, user_id: int, erased_id: int) -> None:
        """Inside the erasure's transaction (SPEC §14): their visits still count for the
        checkpoint's period, by the erased id; their notes and photos (their own words) go."""
        await self.db.execute(
            """UPDATE checkpoint_visits SET user_id = ?, note = NULL, photo_file_id = NULL
               WHERE user_id = ?""", (erased_id, user_id))
