"""People administration (SPEC §11): who holds which role (`/people`), revoking a role
(`/revoke` and /people's buttons) and the audit log (`/audit`).

A revoke takes away only what the revoker could have granted (the invite rules of SPEC §1:
roles below their own, on a unit in their scope; superadmins alone for community staff and
department liaisons); nobody revokes their own highest role, nor anything of a superadmin.
Every refusal names its reason and changes nothing. A revoke, its audit row, the person's
notice and a building head's tickets passing on are one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import t
from bot.labels import ROLE
from bot.services.access import (
    INVITABLE,
    INVITE_ROLES,
    ROLE_UNIT_KIND,
    STAFF_ROLES,
    Access,
    Actor,
)
from bot.services.audit import AuditAction
from bot.services.errors import Key, Refused
from bot.services.outbox import Outbox, Priority
from bot.services.people import PeopleService
from bot.services.tickets import TicketService
from storage.audit import AuditEntry
from storage.models import PARTY_MEMBER, Person, RoleGrant, Unit
from storage.store import Store

PAGE = 10
#: the roles by rank, the highest first: "own highest role" and the order of /people
RANK = ("community_staff", "grid_leader", "grid_worker", "building_head", "department_liaison",
        "volunteer", PARTY_MEMBER)
#: superadmins alone grant (and so revoke) these (SPEC §1)
SUPERADMINS_ONLY = ("community_staff", "department_liaison")


@dataclass(frozen=True)
class Holder:
    """A role held on a unit, and whether the viewer may revoke it."""

    grant: RoleGrant
    person: Person
    unit: Unit
    revocable: bool


@dataclass(frozen=True)
class Roster:
    unit: Unit
    holders: list[Holder]
    total: int
    page: int

    @property
    def more(self) -> bool:
        return (self.page + 1) * PAGE < self.total


@dataclass(frozen=True)
class Revoked:
    role: str
    unit: Unit
    person: Person | None
    escalated: list[int]   # a building head's tickets passed to the grid


@dataclass(frozen=True)
class AuditPage:
    unit: Unit
    entries: list[AuditEntry]
    names: dict[int, str]
    units: dict[str, Unit]
    total: int
    page: int

    @property
    def more(self) -> bool:
        return (self.page + 1) * PAGE < self.total


class RosterService:
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 tickets: TicketService) -> None:
        self.store = store
        self.access = access
        self.people = people
        self.outbox = outbox
        self.tickets = tickets

    async def _unit(self, code: str) -> Unit:
        unit = await self.store.map.get(code)
        if unit is None:
            raise Refused("map.unknown_code", code=code)
        return unit

    async def _staff_over(self, actor: Actor, unit: Unit,
                          roles: tuple[str, ...] = STAFF_ROLES) -> list[RoleGrant]:
        """The actor's grants of `roles` whose unit covers `unit`."""
        above = set(await self.access.covering(unit.code))
        return [g for g in actor.grants if g.role in roles and g.unit_code in above]

    # /people

    async def roster(self, actor: Actor, code: str | None, page: int = 0) -> Roster:
        """Who holds which role on the unit and below (default: the actor's own unit)."""
        if code is None:
            mine = sorted((g for g in actor.grants if g.role in STAFF_ROLES),
                          key=lambda g: (RANK.index(g.role), g.unit_code))
            if not mine:
                raise Refused("people.usage")
            code = mine[0].unit_code
        unit = await self._unit(code)
        if not actor.superadmin and not await self._staff_over(actor, unit):
            raise Refused("people.not_allowed", code=unit.code)
        units = {u.code: u for u in await self.store.map.descendants(unit.code)}
        pairs, total = await self.store.people.roles_on(list(units), PAGE, page * PAGE)
        if page < 0 or (page > 0 and not pairs):
            raise Refused("button.stale")
        holders = [Holder(grant, person, units[grant.unit_code],
                          await self.refusal(actor, grant.role, units[grant.unit_code],
                                             grant.user_id) is None)
                   for grant, person in pairs]
        return Roster(unit, holders, total, page)

    # /revoke

    async def refusal(self, actor: Actor, role: str, unit: Unit,
                      user_id: int) -> Refused | None:
        """Why the actor may not take `role` on `unit` from `user_id` (None: they may, if
        it is held): the invite rules of SPEC §1, and nobody's own highest role, and
        nothing of a superadmin's."""
        if role not in INVITE_ROLES:
            return Refused("revoke.unknown_role", role=role, roles=", ".join(INVITE_ROLES))
        if user_id in self.access.superadmins:
            return Refused("revoke.superadmin")
        if user_id == actor.user_id and actor.grants and role == min(
                (g.role for g in actor.grants if g.role in RANK), key=RANK.index, default=""):
            return Refused("revoke.own_highest", role=Key(ROLE[role]))
        kind = ROLE_UNIT_KIND[role]
        if (kind is None and unit.kind == "department") or \
                (kind is not None and unit.kind != kind):
            return Refused("revoke.wrong_unit", role=Key(ROLE[role]), code=unit.code)
        if actor.superadmin:
            return None
        if role in SUPERADMINS_ONLY:
            return Refused("revoke.superadmins_only", role=Key(ROLE[role]))
        over = await self._staff_over(actor, unit)
        if not over:
            return Refused("revoke.outside_scope", code=unit.code)
        allowed = {r for g in over for r in INVITABLE.get(g.role, ())}
        if role not in allowed:
            return Refused("revoke.not_below", role=Key(ROLE[role]), code=unit.code)
        return None

    async def check_revoke(self, actor: Actor, role: str, code: str,
                           user_id: int) -> tuple[Unit, Person | None]:
        """Refuse a revoke the actor may not make, or of a role not held; else the unit and
        the person (a button's press is checked again here before it is confirmed)."""
        unit = await self._unit(code)
        refusal = await self.refusal(actor, role, unit, user_id)
        if refusal is not None:
            raise refusal
        person = await self.store.people.get(user_id)
        if not any(g.role == role and g.unit_code == unit.code
                   for g in await self.store.people.roles(user_id)):
            raise Refused("revoke.not_held", user=user_id, role=Key(ROLE[role]), code=unit.code)
        return unit, person

    async def revoke(self, actor: Actor, role: str, code: str, user_id: int) -> Revoked:
        """Take the role away: the audit row, the person told (in their language), and a
        building head's tickets passing on (`TicketHandover`), in one transaction."""
        unit, person = await self.check_revoke(actor, role, code, user_id)
        async with self.store.transaction():
            if not await self.store.people.revoke(user_id, role, unit.code):
                raise Refused("revoke.not_held", user=user_id, role=Key(ROLE[role]),
                              code=unit.code)  # another revoke came first
            await self.people.audit.record(actor.user_id, AuditAction.REVOKE, unit.code,
                                           user_id, role)
            locale = await self.people.locale_for(user_id)
            by = await self.store.people.get(actor.user_id)
            await self.outbox.send(
                user_id, t(locale, "revoke.told", role=t(locale, ROLE[role]),
                           unit=f"{unit.name} ({unit.code})",
                           by=by.display_name if by else str(actor.user_id)),
                priority=Priority.PERSONAL)
            escalated = await self.tickets.head_left(actor.user_id, user_id, unit) \
                if role == "building_head" else []
        if escalated:
            self.tickets.changed()  # the grid's deadlines
        return Revoked(role, unit, person, escalated)

    # /audit

    async def audit(self, actor: Actor, code: str, page: int = 0) -> AuditPage:
        """The latest role changes on a unit and below, newest first (community staff and
        superadmins, on a unit in their scope)."""
        unit = await self._unit(code)
        if not actor.superadmin and not await self._staff_over(actor, unit,
                                                               ("community_staff",)):
            raise Refused("audit.not_allowed", code=unit.code)
        units = {u.code: u for u in await self.store.map.descendants(unit.code)}
        entries, total = await self.people.audit.latest(list(units), PAGE, page * PAGE)
        if page < 0 or (page > 0 and not entries):
            raise Refused("button.stale")
        ids = {e.actor_id for e in entries if e.actor_id is not None} | \
            {e.subject_id for e in entries if e.subject_id is not None}
        names = {p.user_id: p.display_name for p in await self.store.people.many(ids)}
        return AuditPage(unit, entries, names, units, total, page)
