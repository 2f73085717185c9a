"""Horn repository: horns (集结号), their copies, check-ins (报到) and attendance."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storage.dbapi import Database, Row
from storage.models import CheckIn, CheckInState, CopyKind, Horn, HornCopy, HornStatus
from storage.util import epoch, placeholders

_HORN_FIELDS = set(Horn.model_fields)


def _horn(row: Row) -> Horn:
    data = {k: row[k] for k in row.keys() if k in _HORN_FIELDS}
    data["scope"] = tuple(c for c in row["scope"].split(",") if c)
    data["skills"] = tuple(s for s in row["skills"].split(",") if s)
    data["widened"] = bool(row["widened"])
    data["short_form"] = bool(row["short_form"])
    return Horn(**data)


def _checkin(row: Row) -> CheckIn:
    return CheckIn(horn_id=row["horn_id"], person_id=row["person_id"], state=row["state"],
                   seq=row["seq"], at=row["at"], present=bool(row["present"]),
                   hours=row["hours"], points=row["points"])


class HornRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, owner_id: int, level: str, scope: Iterable[str],
                     grid_code: str | None, community_code: str, title: str, details: str,
                     place: str, starts_at: float | None, ends_at: float | None, needed: int,
                     fill_by: float | None, skills: Iterable[str], short_form: bool,
                     resound_at: float | None) -> int:
        return await self.db.execute(
            """INSERT INTO horns (owner_id, level, scope, grid_code, community_code, title,
                   details, place, starts_at, ends_at, needed, fill_by, skills, short_form,
                   resound_at, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (owner_id, level, ",".join(scope), grid_code, community_code, title, details, place,
             starts_at, ends_at, needed, fill_by, ",".join(skills), int(short_form), resound_at,
             epoch()))

    async def lock(self, horn_id: int) -> None:
        """Hold the horn's row until the transaction ends (its seats are counted, then given)."""
        await self.db.lock_row("horns", horn_id)

    async def get(self, horn_id: int) -> Horn | None:
        row = await self.db.fetchone("SELECT * FROM horns WHERE id = ?", (horn_id,))
        return _horn(row) if row else None

    async def update(self, horn_id: int, expect_status: HornStatus | None = None,
                     expect_dirty: bool = False, **fields: Any) -> bool:
        """Change fields; with `expect_status`, only while the horn is still in it; with
        `expect_dirty`, only if a tap has marked its counter changed."""
        if "scope" in fields:
            fields["scope"] = ",".join(fields["scope"])
        sets = ", ".join(f"{name} = ?" for name in fields)
        params: list[Any] = [*fields.values(), horn_id]
        sql = f"UPDATE horns SET {sets} WHERE id = ?"
        if expect_status is not None:
            sql += " AND status = ?"
            params.append(expect_status)
        if expect_dirty:
            sql += " AND dirty = 1"
        return await self.db.execute_rowcount(sql, params) > 0

    async def active(self) -> list[Horn]:
        rows = await self.db.fetchall("SELECT * FROM horns WHERE status = 'active' ORDER BY id")
        return [_horn(r) for r in rows]

    async def dirty(self) -> list[int]:
        """Active horns whose copies still show an old counter (e.g. after a crash)."""
        rows = await self.db.fetchall(
            "SELECT id FROM horns WHERE status = 'active' AND dirty = 1 ORDER BY id")
        return [r["id"] for r in rows]

    async def due(self, now: float) -> list[Horn]:
        """Active horns whose re-sound or fill-by check is due."""
        rows = await self.db.fetchall(
            """SELECT * FROM horns WHERE status = 'active' AND
                   ((resound_at IS NOT NULL AND resound_at <= ?) OR
                    (fill_by IS NOT NULL AND widened = 0 AND fill_by <= ?))
               ORDER BY id""", (now, now))
        return [_horn(r) for r in rows]

    async def next_due(self) -> float | None:
        """The soonest re-sound or fill-by time of an active horn (None: no active horn)."""
        row = await self.db.fetchone(
            """SELECT MIN(COALESCE(resound_at, 1e18)),
                      MIN(CASE WHEN widened = 0 AND fill_by IS NOT NULL THEN fill_by
                               ELSE 1e18 END)
               FROM horns WHERE status = 'active'""")
        due = [float(v) for v in row if v is not None] if row is not None else []
        return min(due) if due else None

    async def confirm(self, horn_id: int, by: int, hours: float) -> bool:
        """Mark the attendance confirmed, once: the second Confirm finds it done."""
        return await self.db.execute_rowcount(
            """UPDATE horns SET confirmed_at = ?, confirmed_by = ?, hours = ?
               WHERE id = ? AND status = 'closed' AND confirmed_at IS NULL""",
            (epoch(), by, hours, horn_id)) > 0

    # copies

    async def add_copy(self, horn_id: int, chat_id: int, message_id: int, thread_id: int,
                       kind: CopyKind) -> None:
        await self.db.execute(
            """INSERT INTO horn_copies (horn_id, chat_id, message_id, thread_id, kind)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (horn_id, chat_id, message_id, thread_id, kind))

    async def copies(self, horn_id: int) -> list[HornCopy]:
        rows = await self.db.fetchall(
            """SELECT * FROM horn_copies WHERE horn_id = ?
               ORDER BY kind = 'private', chat_id, message_id""", (horn_id,))
        return [HornCopy(**dict(r)) for r in rows]

    async def migrate_chat(self, old_id: int, new_id: int) -> None:
        await self.db.execute(
            "UPDATE horn_copies SET chat_id = ? WHERE chat_id = ?", (new_id, old_id))

    # check-ins

    async def checkin(self, horn_id: int, person_id: int) -> CheckIn | None:
        row = await self.db.fetchone(
            "SELECT * FROM horn_checkins WHERE horn_id = ? AND person_id = ?",
            (horn_id, person_id))
        return _checkin(row) if row else None

    async def checkins(self, horn_id: int, states: Iterable[CheckInState] | None = None
                       ) -> list[CheckIn]:
        sql = "SELECT * FROM horn_checkins WHERE horn_id = ?"
        params: list[Any] = [horn_id]
        if states is not None:
            wanted = list(states)
            sql += f" AND state IN ({placeholders(wanted)})"
            params += wanted
        rows = await self.db.fetchall(sql + " ORDER BY seq", params)
        return [_checkin(r) for r in rows]

    async def add_checkin(self, horn_id: int, person_id: int, state: CheckInState) -> bool:
        """Record a first answer; False when the person already has a row (the constraint
        decides, so two taps racing each other record one)."""
        now = epoch()
        return await self.db.execute_rowcount(
            """INSERT INTO horn_checkins (horn_id, person_id, state, seq, at, updated_at)
               VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM horn_checkins
                                 WHERE horn_id = ?), ?, ?)
               ON CONFLICT (horn_id, person_id) DO NOTHING""",
            (horn_id, person_id, state, horn_id, now, now)) > 0

    async def set_state(self, horn_id: int, person_id: int, state: CheckInState, *,
                        expect: Iterable[CheckInState], requeue: bool = False) -> bool:
        """Move a person's answer (only from one of `expect`); `requeue` puts them last."""
        wanted = list(expect)
        seq = ("(SELECT COALESCE(MAX(seq), 0) + 1 FROM horn_checkins WHERE horn_id = ?)"
               if requeue else "seq")
        params: list[Any] = [state, epoch()]
        if requeue:
            params.append(horn_id)
        params += [horn_id, person_id, *wanted]
        return await self.db.execute_rowcount(
            f"""UPDATE horn_checkins SET state = ?, updated_at = ?, seq = {seq}
                WHERE horn_id = ? AND person_id = ? AND state IN ({placeholders(wanted)})""",
            params) > 0

    async def counts(self, horn_id: int) -> tuple[int, int]:
        """(checked in, with the people member units pledged (SPEC §10); waiting)."""
        row = await self.db.fetchone(
            """SELECT COUNT(CASE WHEN state = 'in' THEN 1 END)
                      + (SELECT COALESCE(SUM(pledged), 0) FROM horn_units WHERE horn_id = ?),
                      COUNT(CASE WHEN state = 'waiting' THEN 1 END)
               FROM horn_checkins WHERE horn_id = ?""", (horn_id, horn_id))
        assert row is not None
        return int(row[0]), int(row[1])

    async def first_waiting(self, horn_id: int) -> CheckIn | None:
        row = await self.db.fetchone(
            """SELECT * FROM horn_checkins WHERE horn_id = ? AND state = 'waiting'
               ORDER BY seq LIMIT 1""", (horn_id,))
        return _checkin(row) if row else None

    async def waiting_position(self, horn_id: int, person_id: int) -> int:
        return int(await self.db.fetchval(
            """SELECT COUNT(*) FROM horn_checkins WHERE horn_id = ? AND state = 'waiting'
               AND seq <= (SELECT seq FROM horn_checkins WHERE horn_id = ? AND person_id = ?)""",
            (horn_id, horn_id, person_id)))

    # attendance

    async def mark_present(self, horn_id: int) -> None:
        """The attendance list opens with everyone checked in marked present."""
        await self.db.execute(
            "UPDATE horn_checkins SET present = CASE WHEN state = 'in' THEN 1 ELSE 0 END "
            "WHERE horn_id = ?", (horn_id,))

    async def toggle_present(self, horn_id: int, person_id: int) -> bool:
        return await self.db.execute_rowcount(
            """UPDATE horn_checkins SET present = 1 - present
               WHERE horn_id = ? AND person_id = ? AND state = 'in'""",
            (horn_id, person_id)) > 0

    async def credit(self, horn_id: int, hours: float, points: int) -> list[int]:
        """Write the hours and points on every present row; returns who was present."""
        await self.db.execute(
            """UPDATE horn_checkins SET hours = ?, points = ?
               WHERE horn_id = ? AND state = 'in' AND present = 1""", (hours, points, horn_id))
        rows = await self.db.fetchall(
            """SELECT person_id FROM horn_checkins
               WHERE horn_id = ? AND state = 'in' AND present = 1 ORDER BY seq""", (horn_id,))
        return [r["person_id"] for r in rows]

    # reports

    async def activity(self, grid_codes: Iterable[str] | None, start: float, end: float,
                       communities: Iterable[str] = ()
                       ) -> tuple[dict[str | None, int], dict[str | None, float],
                                  dict[int, float]]:
        """Per grid: horns published in [start, end) and hours confirmed in it; and the
        hours per person. A horn over several grids (a community's) counts under None, and
        is in scope when its community is one of `communities` (or for the whole city,
        `grid_codes` None)."""
        codes = None if grid_codes is None else list(grid_codes)
        whole = list(communities)
        if codes is not None and not codes and not whole:
            return {}, {}, {}
        only = "" if codes is None else (
            f" AND (h.grid_code IN ({placeholders(codes)}) OR (h.grid_code IS NULL"
            f" AND h.community_code IN ({placeholders(whole) or 'NULL'})))")
        extra = [] if codes is None else [*codes, *whole]
        rows = await self.db.fetchall(
            f"""SELECT h.grid_code, COUNT(*) AS n FROM horns h
                WHERE h.created_at >= ? AND h.created_at < ?{only}
                GROUP BY h.grid_code""", [start, end, *extra])
        horns: dict[str | None, int] = {r["grid_code"]: r["n"] for r in rows}
        rows = await self.db.fetchall(
            f"""SELECT h.grid_code, c.person_id, SUM(c.hours) AS hours
                FROM horns h JOIN horn_checkins c ON c.horn_id = h.id
                WHERE h.confirmed_at >= ? AND h.confirmed_at < ? AND c.hours > 0{only}
                GROUP BY h.grid_code, c.person_id""", [start, end, *extra])
        hours: dict[str | None, float] = {}
        people: dict[int, float] = {}
        for r in rows:
            hours[r["grid_code"]] = hours.get(r["grid_code"], 0.0) + r["hours"]
            people[r["person_id"]] = people.get(r["person_id"], 0.0) + r["hours"]
        return horns, hours, people
