"""Member units 成员单位 (SPEC §10): property firms, owners' committees, social organisations,
resident units, 双报到 units and enforcement, each attached to a community in the map file.

A member unit is a unit of the map (`kind = 'member'`, its `member_type`) with nothing below
it: `unit_contact` and `unit_member` are roles held on it, so they cover the unit alone and
grant nothing over buildings or tickets (the permission table's rule, `access.covering`).
Its people come by invite (community staff invite contacts, contacts invite members) or by
the unit's join link (`/joinlink` in its bound chat, `PeopleService.redeem`). `/unit` is a
contact's view of their unit's record.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.access import UNIT_ROLES, Access, Action, Actor
from bot.services.errors import Refused
from storage.models import PARTY_MEMBER, SKILLS, DualReport, Person, Unit
from storage.store import Store


@dataclass(frozen=True)
class UnitRecord:
    """What `/unit` shows of a member unit."""

    unit: Unit
    community: Unit | None
    contacts: list[Person]
    members: list[Person]
    chat_bound: bool
    #: its record: confirmed people-hours on horns, horns it pledged people to, post slots
    people_hours: float = 0
    horns: int = 0
    posts: int = 0
    resources: int = 0       # requests for its resources it accepted


@dataclass(frozen=True)
class ReportedIn:
    """A 双报到 as recorded, with the work unit and the home community."""

    report: DualReport
    unit: Unit
    community: Unit


class UnitService:
    def __init__(self, store: Store, access: Access) -> None:
        self.store = store
        self.access = access

    async def own_units(self, actor: Actor) -> list[Unit]:
        """The member units this actor is a contact of."""
        units = []
        for grant in actor.grants:
            if grant.role == "unit_contact":
                unit = await self.store.map.get(grant.unit_code)
                if unit is not None and unit.kind == "member" and unit not in units:
                    units.append(unit)
        return units

    async def member_unit(self, actor: Actor, code: str | None) -> Unit:
        """The member unit `/unit [CODE]` is about: the contact's own (when they have one),
        or a member unit within the asker's scope (community staff, superadmins)."""
        if code is None:
            own = await self.own_units(actor)
            if not own:
                raise Refused("unit.none")
            if len(own) > 1:
                raise Refused("unit.which", codes=", ".join(u.code for u in own))
            return own[0]
        unit = await self.store.map.get(code)
        if unit is None:
            raise Refused("map.unknown_code", code=code)
        if unit.kind != "member":
            raise Refused("unit.not_member", code=unit.code)
        if not await self.access.can(actor, Action.MANAGE_UNIT, unit.code):
            raise Refused("unit.not_allowed", code=unit.code)
        return unit

    async def record(self, actor: Actor, code: str | None = None) -> UnitRecord:
        unit = await self.member_unit(actor, code)
        community = await self.store.map.get(unit.parent_code) if unit.parent_code else None
        contacts = await self.store.people.with_role("unit_contact", [unit.code], None)
        members = await self.store.people.with_role("unit_member", [unit.code], None)
        return UnitRecord(unit=unit, community=community, contacts=contacts, members=members,
                          chat_bound=await self.store.map.binding(unit.code) is not None,
                          people_hours=await self.store.units.people_hours(unit.code),
                          horns=await self.store.units.horns_answered(unit.code),
                          posts=await self.store.units.posts_held(unit.code),
                          resources=await self.store.units.resources_provided(unit.code))

    async def work_unit(self, user_id: int) -> Unit | None:
        """The member unit a person belongs to (one at most), if any."""
        for grant in await self.store.people.roles(user_id):
            if grant.role in UNIT_ROLES:
                return await self.store.map.get(grant.unit_code)
        return None

    async def report_in(self, actor: Actor, skills: list[str]) -> ReportedIn:
        """/report_in [SKILL…] (双报到): a party member of a `dual_report` unit who has joined
        a building reports to that building's community, with the skills they offer there."""
        unknown = [s for s in skills if s not in SKILLS]
        if unknown:
            raise Refused("report_in.bad_skill", skill=unknown[0], skills=", ".join(SKILLS))
        work = await self.work_unit(actor.user_id)
        if work is None or work.member_type != "dual_report":
            raise Refused("report_in.no_unit")
        if not any(g.role == PARTY_MEMBER for g in actor.grants):
            raise Refused("report_in.not_party")
        if actor.building_code is None:
            raise Refused("report_in.no_building")
        chain = await self.store.map.ancestors(actor.building_code)
        community = next((u for u in chain if u.kind == "community"), None)
        if community is None:
            raise Refused("report_in.no_building")
        chosen = [s for s in SKILLS if s in skills]  # in the list's order, each once
        async with self.store.transaction():
            await self.store.units.report_in(actor.user_id, work.code, community.code, chosen)
            report = await self.store.units.dual_report(actor.user_id)
        assert report is not None
        return ReportedIn(report=report, unit=work, community=community)
