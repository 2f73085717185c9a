"""Member units' records (SPEC §10): 双报到 reports (the units themselves are rows of `units`,
kind 'member', in `storage.map`)."""

from __future__ import annotations

from collections.abc import Iterable

from storage.dbapi import Database, Row
from storage.models import DualReport, HornUnit, Post, PostHolder, Resource, ResourceRequest
from storage.util import epoch, now_iso, placeholders


def _report(row: Row) -> DualReport:
    return DualReport(user_id=row["user_id"], member_code=row["member_code"],
                      community_code=row["community_code"],
                      skills=tuple(s for s in row["skills"].split(",") if s),
                      reported_at=row["reported_at"])


def _horn_unit(row: Row) -> HornUnit:
    return HornUnit(horn_id=row["horn_id"], unit_code=row["unit_code"], pledged=row["pledged"],
                    pledged_by=row["pledged_by"], confirmed=row["confirmed"],
                    hours=row["hours"])


def _holder(row: Row) -> PostHolder:
    return PostHolder(post_id=row["post_id"], holder=row["holder"], person_id=row["person_id"],
                      unit_code=row["unit_code"], state=row["state"], seq=row["seq"],
                      asked_at=row["asked_at"])


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

    # member units answering horns

    async def call_units(self, horn_id: int, unit_codes: Iterable[str]) -> None:
        for code in unit_codes:
            await self.db.execute(
                """INSERT INTO horn_units (horn_id, unit_code) VALUES (?, ?)
                   ON CONFLICT(horn_id, unit_code) DO NOTHING""", (horn_id, code))

    async def horn_units(self, horn_id: int) -> list[HornUnit]:
        rows = await self.db.fetchall(
            "SELECT * FROM horn_units WHERE horn_id = ? ORDER BY unit_code", (horn_id,))
        return [_horn_unit(r) for r in rows]

    async def horn_unit(self, horn_id: int, unit_code: str) -> HornUnit | None:
        row = await self.db.fetchone(
            "SELECT * FROM horn_units WHERE horn_id = ? AND unit_code = ?", (horn_id, unit_code))
        return _horn_unit(row) if row else None

    async def pledge(self, horn_id: int, unit_code: str, people: int, by: int, at: float
                     ) -> int:
        """Set a called unit's pledge; the number of the horn's units that pledged people."""
        await self.db.execute(
            """UPDATE horn_units SET pledged = ?, pledged_by = ?, pledged_at = ?
               WHERE horn_id = ? AND unit_code = ?""", (people, by, at, horn_id, unit_code))
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM horn_units WHERE horn_id = ? AND pledged > 0", (horn_id,)))

    async def confirm_unit(self, horn_id: int, unit_code: str, people: int) -> None:
        """The owner's number for a unit at the close (before the attendance is confirmed)."""
        await self.db.execute(
            "UPDATE horn_units SET confirmed = ? WHERE horn_id = ? AND unit_code = ?",
            (people, horn_id, unit_code))

    async def credit_units(self, horn_id: int, hours: float) -> None:
        """The attendance is confirmed: each unit's number (as pledged, unless the owner
        changed it) serves `hours` each: the unit's people-hours on its record."""
        await self.db.execute(
            """UPDATE horn_units SET confirmed = COALESCE(confirmed, pledged), hours = ?
               WHERE horn_id = ?""", (hours, horn_id))

    async def people_hours(self, unit_code: str, since: float = 0) -> float:
        """A unit's confirmed people-hours on horns (of horns confirmed since `since`)."""
        value = await self.db.fetchval(
            """SELECT COALESCE(SUM(hu.confirmed * hu.hours), 0) FROM horn_units hu
               JOIN horns h ON h.id = hu.horn_id
               WHERE hu.unit_code = ? AND hu.hours IS NOT NULL
                 AND COALESCE(h.confirmed_at, 0) >= ?""", (unit_code, since))
        return float(value or 0)

    # posts to claim (认领岗位)

    async def create_post(self, unit_code: str, community_code: str, title: str, slots: int,
                          by: int, at: float) -> int:
        return await self.db.execute(
            """INSERT INTO posts (unit_code, community_code, title, slots, created_by,
                                  created_at) VALUES (?, ?, ?, ?, ?, ?)""",
            (unit_code, community_code, title, slots, by, at))

    async def post(self, post_id: int) -> Post | None:
        row = await self.db.fetchone("SELECT * FROM posts WHERE id = ?", (post_id,))
        return Post(**dict(row)) if row else None

    async def posts(self, community_codes: Iterable[str] | None = None) -> list[Post]:
        rows = await self.db.fetchall("SELECT * FROM posts ORDER BY id")
        wanted = None if community_codes is None else set(community_codes)
        return [Post(**dict(r)) for r in rows if wanted is None or r["community_code"] in wanted]

    async def holder(self, post_id: int, holder: str) -> PostHolder | None:
        row = await self.db.fetchone(
            "SELECT * FROM post_holders WHERE post_id = ? AND holder = ?", (post_id, holder))
        return _holder(row) if row else None

    async def holders(self, post_id: int, state: str) -> list[PostHolder]:
        rows = await self.db.fetchall(
            "SELECT * FROM post_holders WHERE post_id = ? AND state = ? ORDER BY seq",
            (post_id, state))
        return [_holder(r) for r in rows]

    async def held_by(self, person_id: int) -> list[PostHolder]:
        """The claims a person made (for themselves or for their unit), not released."""
        rows = await self.db.fetchall(
            """SELECT * FROM post_holders WHERE person_id = ? AND state != 'released'
               ORDER BY post_id""", (person_id,))
        return [_holder(r) for r in rows]

    async def claim(self, post_id: int, holder: str, person_id: int, unit_code: str | None,
                    state: str, at: float) -> None:
        """A new claim, or a released one made again (to the end of the line)."""
        seq = int(await self.db.fetchval(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM post_holders WHERE post_id = ?", (post_id,)))
        await self.db.execute(
            """INSERT INTO post_holders (post_id, holder, person_id, unit_code, state, seq,
                                         claimed_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(post_id, holder) DO UPDATE SET person_id = excluded.person_id,
                   state = excluded.state, seq = excluded.seq,
                   claimed_at = excluded.claimed_at, asked_at = NULL""",
            (post_id, holder, person_id, unit_code, state, seq, at))
        if state == "holding" and unit_code is not None:
            await self._span(post_id, holder, unit_code, at)

    async def _span(self, post_id: int, holder: str, unit_code: str, at: float) -> None:
        """A unit's claim holds a slot from `at` (its score's slot-months)."""
        await self.db.execute(
            """INSERT INTO post_spans (post_id, holder, unit_code, held_from)
               VALUES (?, ?, ?, ?)""", (post_id, holder, unit_code, at))

    async def set_holder_state(self, post_id: int, holder: str, state: str, expect: str,
                               at: float | None = None) -> bool:
        changed = await self.db.execute_rowcount(
            """UPDATE post_holders SET state = ?, asked_at = NULL
               WHERE post_id = ? AND holder = ? AND state = ?""",
            (state, post_id, holder, expect)) > 0
        if changed and "holding" in (state, expect) and state != expect:
            moment = epoch() if at is None else at
            if expect == "holding":
                await self.db.execute(
                    """UPDATE post_spans SET held_until = ?
                       WHERE post_id = ? AND holder = ? AND held_until IS NULL""",
                    (moment, post_id, holder))
            else:
                unit_code = await self.db.fetchval(
                    "SELECT unit_code FROM post_holders WHERE post_id = ? AND holder = ?",
                    (post_id, holder))
                if unit_code is not None:
                    await self._span(post_id, holder, str(unit_code), moment)
        return changed

    async def ask(self, post_id: int, holder: str, at: float) -> None:
        await self.db.execute(
            "UPDATE post_holders SET asked_at = ? WHERE post_id = ? AND holder = ?",
            (at, post_id, holder))

    async def answered(self, post_id: int, holder: str) -> bool:
        return await self.db.execute_rowcount(
            """UPDATE post_holders SET asked_at = NULL
               WHERE post_id = ? AND holder = ? AND state = 'holding'
                 AND asked_at IS NOT NULL""", (post_id, holder)) > 0

    async def all_holding(self) -> list[PostHolder]:
        rows = await self.db.fetchall(
            "SELECT * FROM post_holders WHERE state = 'holding' ORDER BY post_id, seq")
        return [_holder(r) for r in rows]

    async def silent_since(self, before: float) -> list[PostHolder]:
        """Holders asked "Still serving?" before `before` who did not answer."""
        rows = await self.db.fetchall(
            """SELECT * FROM post_holders WHERE state = 'holding' AND asked_at IS NOT NULL
                 AND asked_at < ? ORDER BY post_id, seq""", (before,))
        return [_holder(r) for r in rows]

    async def horns_answered(self, unit_code: str) -> int:
        """The horns a unit pledged people to."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM horn_units WHERE unit_code = ? AND pledged > 0",
            (unit_code,)))

    async def answered_between(self, start: float, end: float) -> list[tuple[str, int, float]]:
        """Each horn sounded in [start, end) that a member unit answered (pledged people, or
        the owner confirmed some at the close): (unit, horn, when the horn was sounded)."""
        rows = await self.db.fetchall(
            """SELECT hu.unit_code, hu.horn_id, h.created_at FROM horn_units hu
               JOIN horns h ON h.id = hu.horn_id
               WHERE (hu.pledged > 0 OR COALESCE(hu.confirmed, 0) > 0)
                 AND h.created_at >= ? AND h.created_at < ?
               ORDER BY h.created_at, hu.unit_code""", (start, end))
        return [(r["unit_code"], int(r["horn_id"]), float(r["created_at"])) for r in rows]

    async def posts_held(self, unit_code: str) -> int:
        """The post slots a unit holds now."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM post_holders WHERE unit_code = ? AND state = 'holding'",
            (unit_code,)))

    # resources (提供资源)

    async def add_resource(self, unit_code: str, kind: str, name: str, quantity: int, by: int,
                           at: float) -> int:
        return await self.db.execute(
            """INSERT INTO resources (unit_code, kind, name, quantity, created_by, created_at)
               VALUES (?, ?, ?, ?, ?, ?)""", (unit_code, kind, name, quantity, by, at))

    async def set_resource_domain(self, resource_id: int, domain: str | None) -> None:
        await self.db.execute("UPDATE resources SET domain = ? WHERE id = ?",
                              (domain, resource_id))

    async def resource(self, resource_id: int) -> Resource | None:
        row = await self.db.fetchone("SELECT * FROM resources WHERE id = ?", (resource_id,))
        return Resource(**dict(row)) if row else None

    async def resources(self, unit_codes: Iterable[str]) -> list[Resource]:
        codes = list(unit_codes)
        if not codes:
            return []
        rows = await self.db.fetchall(
            f"SELECT * FROM resources WHERE unit_code IN ({placeholders(codes)}) ORDER BY id",
            codes)
        return [Resource(**dict(r)) for r in rows]

    async def request_resource(self, resource_id: int, ticket_id: int | None,
                               horn_id: int | None, by: int, at: float) -> int:
        return await self.db.execute(
            """INSERT INTO resource_requests (resource_id, ticket_id, horn_id, requested_by,
                                              asked_at) VALUES (?, ?, ?, ?, ?)""",
            (resource_id, ticket_id, horn_id, by, at))

    async def resource_request(self, request_id: int) -> ResourceRequest | None:
        row = await self.db.fetchone("SELECT * FROM resource_requests WHERE id = ?",
                                     (request_id,))
        return ResourceRequest(**dict(row)) if row else None

    async def answer_request(self, request_id: int, state: str, reason: str | None,
                             at: float) -> bool:
        """Accept or decline, once: only a request still asked changes."""
        return await self.db.execute_rowcount(
            """UPDATE resource_requests SET state = ?, reason = ?, answered_at = ?
               WHERE id = ? AND state = 'asked'""", (state, reason, at, request_id)) > 0

    async def resources_provided(self, unit_code: str) -> int:
        """Requests for the unit's resources it accepted (its record)."""
        return int(await self.db.fetchval(
            """SELECT COUNT(*) FROM resource_requests rr JOIN resources r
                   ON r.id = rr.resource_id
               WHERE r.unit_code = ? AND rr.state = 'accepted'""", (unit_code,)))
