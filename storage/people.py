"""People repository: persons, their roles on units, and invites/join links."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from storage.dbapi import Database, Row
from storage.inbox import update_memo
from storage.models import Invite, Person, RoleGrant
from storage.util import now_iso, parse_iso, parse_iso_required, placeholders


def _person(row: Row) -> Person:
    return Person(user_id=row["user_id"], first_name=row["first_name"],
                  last_name=row["last_name"], username=row["username"],
                  language_code=row["language_code"], locale=row["locale"],
                  building_code=row["building_code"], started=bool(row["started"]),
                  blocked=bool(row["blocked"]),
                  skills=tuple(s for s in row["skills"].split(",") if s),
                  availability=row["availability"], hours=row["hours"], points=row["points"],
                  consented_at=row["consented_at"], erased=row["erased_at"] is not None)


def _invite(row: Row) -> Invite:
    return Invite(token=row["token"], kind=row["kind"], role=row["role"],
                  unit_code=row["unit_code"], created_by=row["created_by"],
                  created_at=parse_iso_required(row["created_at"]),
                  expires_at=parse_iso(row["expires_at"]),
                  used_by=row["used_by"], used_at=parse_iso(row["used_at"]))


def forget_people() -> None:
    """A write to `people`: the rows the update being handled has read are read again."""
    memo = update_memo()
    if memo:
        for key in [k for k in memo if k[0] == "person"]:
            del memo[key]


class PeopleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: int) -> Person | None:
        """A person (read once per update handled: the guard, the access check and the
        handler each want the sender's row; `Person` is frozen, so sharing it is safe)."""
        memo = update_memo()
        key = ("person", user_id)
        if memo is not None and key in memo:
            person: Person | None = memo[key]
            return person
        row = await self.db.fetchone("SELECT * FROM people WHERE user_id = ?", (user_id,))
        person = _person(row) if row else None
        if memo is not None:
            memo[key] = person
        return person

    async def many(self, user_ids: Iterable[int]) -> list[Person]:
        ids = sorted(set(user_ids))
        if not ids:
            return []
        rows = await self.db.fetchall(
            f"SELECT * FROM people WHERE user_id IN ({placeholders(ids)})", ids)
        return [_person(r) for r in rows]

    async def touch(self, user_id: int, first_name: str, last_name: str | None,
                    username: str | None, language_code: str | None, private: bool) -> None:
        """Create or refresh a person from what Telegram says of them."""
        forget_people()
        await self.db.execute(
            """INSERT INTO people (user_id, first_name, last_name, username, language_code,
                                   started, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(user_id) DO UPDATE SET first_name = excluded.first_name,
                   last_name = excluded.last_name, username = excluded.username,
                   language_code = excluded.language_code,
                   started = CASE WHEN excluded.started > people.started
                                  THEN excluded.started ELSE people.started END,
                   blocked = CASE WHEN excluded.started = 1 THEN 0 ELSE people.blocked END""",
            (user_id, first_name, last_name, username, language_code, int(private), now_iso()))

    async def ensure(self, user_id: int) -> None:
        """Make sure a person row exists (e.g. before granting a role by hand)."""
        forget_people()
        await self.db.execute(
            "INSERT INTO people (user_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (user_id, now_iso()))

    async def set_locale(self, user_id: int, locale: str) -> None:
        forget_people()
        await self.db.execute("UPDATE people SET locale = ? WHERE user_id = ?", (locale, user_id))

    async def set_building(self, user_id: int, building_code: str) -> None:
        forget_people()
        await self.db.execute(
            "UPDATE people SET building_code = ? WHERE user_id = ?", (building_code, user_id))

    async def set_blocked(self, user_id: int, blocked: bool) -> None:
        forget_people()
        await self.db.execute(
            "UPDATE people SET blocked = ? WHERE user_id = ?", (int(blocked), user_id))

    async def set_volunteer_profile(self, user_id: int, skills: Iterable[str],
                                    availability: str | None) -> None:
        forget_people()
        await self.db.execute(
            "UPDATE people SET skills = ?, availability = ? WHERE user_id = ?",
            (",".join(skills), availability, user_id))

    async def add_hours(self, user_id: int, hours: float, points: int) -> None:
        forget_people()
        await self.db.execute(
            "UPDATE people SET hours = hours + ?, points = points + ? WHERE user_id = ?",
            (hours, points, user_id))

    # roles

    async def roles(self, user_id: int) -> list[RoleGrant]:
        rows = await self.db.fetchall(
            "SELECT user_id, role, unit_code FROM roles WHERE user_id = ? ORDER BY role, unit_code",
            (user_id,))
        return [RoleGrant(**dict(r)) for r in rows]

    async def grant(self, user_id: int, role: str, unit_code: str, by: int | None) -> bool:
        """Returns False when the person already held that role there."""
        changed = await self.db.execute_rowcount(
            """INSERT INTO roles (user_id, role, unit_code, granted_by, granted_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (user_id, role, unit_code, by, now_iso()))
        return changed > 0

    async def revoke(self, user_id: int, role: str, unit_code: str) -> bool:
        return await self.db.execute_rowcount(
            "DELETE FROM roles WHERE user_id = ? AND role = ? AND unit_code = ?",
            (user_id, role, unit_code)) > 0

    async def roles_on(self, unit_codes: Iterable[str], limit: int, offset: int = 0
                       ) -> tuple[list[tuple[RoleGrant, Person]], int]:
        """Who holds which role on these units (/people), the higher units and roles first,
        and how many grants there are in all."""
        codes = list(unit_codes)
        if not codes:
            return [], 0
        where = f"r.unit_code IN ({placeholders(codes)})"
        total = int(await self.db.fetchval(f"SELECT COUNT(*) FROM roles r WHERE {where}",
                                           codes))
        rows = await self.db.fetchall(
            f"""SELECT r.role AS grant_role, r.unit_code AS grant_unit, p.*
                FROM roles r JOIN people p ON p.user_id = r.user_id
                JOIN units u ON u.code = r.unit_code
                WHERE {where}
                ORDER BY CASE u.kind WHEN 'community' THEN 0 WHEN 'grid' THEN 1
                                     WHEN 'estate' THEN 2 WHEN 'building' THEN 3 ELSE 4 END,
                         u.position, u.code,
                         CASE r.role WHEN 'community_staff' THEN 0 WHEN 'grid_leader' THEN 1
                                     WHEN 'grid_worker' THEN 2 WHEN 'building_head' THEN 3
                                     WHEN 'department_liaison' THEN 4 WHEN 'volunteer' THEN 5
                                     ELSE 6 END,
                         p.user_id
                LIMIT ? OFFSET ?""", [*codes, limit, offset])
        return [(RoleGrant(user_id=r["user_id"], role=r["grant_role"],
                           unit_code=r["grant_unit"]), _person(r)) for r in rows], total

    async def holders(self, roles: Iterable[str], unit_codes: Iterable[str]) -> list[RoleGrant]:
        """Everyone holding one of `roles` on one of `unit_codes`."""
        roles, codes = list(roles), list(unit_codes)
        if not roles or not codes:
            return []
        rows = await self.db.fetchall(
            f"""SELECT user_id, role, unit_code FROM roles
                WHERE role IN ({placeholders(roles)})
                  AND unit_code IN ({placeholders(codes)})
                ORDER BY unit_code, user_id""", [*roles, *codes])
        return [RoleGrant(**dict(r)) for r in rows]

    async def with_role(self, role: str, unit_codes: Iterable[str] | None,
                        building_codes: Iterable[str] | None, *,
                        reachable_only: bool = False) -> list[Person]:
        """People holding `role` on one of the units, or living in one of the buildings
        (None for both: everyone holding it); `reachable_only`: not those who blocked us."""
        blocked = " AND p.blocked = 0" if reachable_only else ""
        if unit_codes is None and building_codes is None:
            rows = await self.db.fetchall(
                f"""SELECT DISTINCT p.* FROM people p JOIN roles r ON r.user_id = p.user_id
                    WHERE r.role = ?{blocked} ORDER BY p.user_id""", (role,))
            return [_person(r) for r in rows]
        units, buildings = list(unit_codes or ()), list(building_codes or ())
        if not units and not buildings:
            return []
        rows = await self.db.fetchall(
            f"""SELECT DISTINCT p.* FROM people p JOIN roles r ON r.user_id = p.user_id
                WHERE r.role = ?{blocked} AND (r.unit_code IN ({placeholders(units) or 'NULL'})
                      OR p.building_code IN ({placeholders(buildings) or 'NULL'}))
                ORDER BY p.user_id""", [role, *units, *buildings])
        return [_person(r) for r in rows]

    # invites and join links

    async def create_invite(self, token: str, kind: str, role: str | None, unit_code: str,
                            by: int | None, expires_at: datetime | None) -> None:
        await self.db.execute(
            """INSERT INTO invites (token, kind, role, unit_code, created_by, created_at,
                                    expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (token, kind, role, unit_code, by, now_iso(),
             expires_at.isoformat() if expires_at else None))

    async def invite(self, token: str) -> Invite | None:
        row = await self.db.fetchone("SELECT * FROM invites WHERE token = ?", (token,))
        return _invite(row) if row else None

    async def join_link(self, unit_code: str) -> Invite | None:
        row = await self.db.fetchone(
            "SELECT * FROM invites WHERE unit_code = ? AND kind = 'join'", (unit_code,))
        return _invite(row) if row else None

    async def use_invite(self, token: str, user_id: int) -> bool:
        """Claim a one-time invite; the store decides who was first."""
        return await self.db.execute_rowcount(
            "UPDATE invites SET used_by = ?, used_at = ? WHERE token = ? AND used_by IS NULL",
            (user_id, now_iso(), token)) > 0
