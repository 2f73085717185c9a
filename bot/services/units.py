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
from datetime import UTC, datetime

from bot.services import periods
from bot.services.access import UNIT_ROLES, Access, Action, Actor
from bot.services.errors import Refused
from bot.services.unit_scores import unit_scores
from storage.models import MEMBER_TYPES, PARTY_MEMBER, SKILLS, DualReport, Person, Unit
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


@dataclass(frozen=True)
class Talent:
    """A line of 点将台's /talent: a volunteer or party member (双报到 included) in scope."""

    person: Person
    skills: tuple[str, ...]
    party: bool
    work_unit: Unit | None
    posts: int
    assignments: int = 0     # open assignments (点将: asked, or accepted and not resolved)
    hours: float = 0         # this year: horns confirmed and assignments resolved


@dataclass(frozen=True)
class UnitLine:
    """A line of /units: a member unit, its contacts, resources, claims and score."""

    unit: Unit
    contacts: list[Person]
    resources: int
    posts: int
    score: float


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

    # 点将台

    async def _scope(self, actor: Actor) -> tuple[list[str], list[str], list[str]]:
        """The units under the actor's 点将台 scope: (all codes, buildings, communities)."""
        if actor.superadmin:
            tops = [u for u in await self.store.map.all() if u.kind == "community"]
        else:
            tops = [u for u in await self.access.scope_units(actor, Action.TALENT)
                    if u.kind in ("community", "grid")]
        if not tops:
            raise Refused("talent.not_allowed")
        codes: list[str] = []
        buildings: list[str] = []
        communities: list[str] = []
        for top in tops:
            for unit in await self.store.map.descendants(top.code):
                if unit.kind != "member" and unit.code not in codes:
                    codes.append(unit.code)
                    if unit.kind == "building":
                        buildings.append(unit.code)
            communities += [u.code for u in await self.store.map.ancestors(top.code)
                            if u.kind == "community" and u.code not in communities]
        return codes, buildings, communities

    async def talent(self, actor: Actor, skill: str | None,
                     now: datetime | None = None) -> list[Talent]:
        """/talent [SKILL]: volunteers and party members in scope, and those reported there
        (双报到), with their skills, load (post slots held, open assignments) and hours
        this year (of `now`)."""
        now = now or datetime.now().astimezone()
        year = datetime(now.year, 1, 1, tzinfo=now.tzinfo).timestamp()
        if skill is not None and skill not in SKILLS:
            raise Refused("report_in.bad_skill", skill=skill[:20], skills=", ".join(SKILLS))
        codes, buildings, communities = await self._scope(actor)
        people: dict[int, Person] = {}
        for role in ("volunteer", PARTY_MEMBER):
            for person in await self.store.people.with_role(role, codes, buildings):
                people[person.user_id] = person
        reports = {r.user_id: r for r in await self.store.units.dual_reports(communities)}
        for person in await self.store.people.many(list(reports)):
            people.setdefault(person.user_id, person)
        found = []
        for user_id in sorted(people):
            person = people[user_id]
            grants = await self.store.people.roles(user_id)
            report = reports.get(user_id)
            skills = tuple(s for s in SKILLS if s in person.skills or
                           (report is not None and s in report.skills))
            if skill is not None and skill not in skills:
                continue
            work = await self.store.map.get(report.member_code) if report else None
            found.append(Talent(person=person, skills=skills,
                                party=any(g.role == PARTY_MEMBER for g in grants),
                                work_unit=work,
                                posts=len([h for h in await self.store.units.held_by(user_id)
                                           if h.state == "holding"]),
                                assignments=await self.store.assignments.open_count(user_id),
                                hours=await self.store.assignments.hours_since(user_id, year)))
        return found

    async def unit_lines(self, actor: Actor, member_type: str | None,
                         now: datetime) -> list[UnitLine]:
        """/units [TYPE]: the member units of the actor's communities, each with this
        quarter's score so far (`unit_scores`, the unit boards' own)."""
        if member_type is not None and member_type not in MEMBER_TYPES:
            raise Refused("units.bad_type", types=", ".join(MEMBER_TYPES))
        _, _, communities = await self._scope(actor)
        units = await self.store.map.members(communities, member_type)
        tz = now.tzinfo or UTC
        start, end = periods.current("quarter", now.astimezone(tz)).span
        scores = await unit_scores(self.store, [u.code for u in units], start, end,
                                   now.timestamp(), tz)
        lines = []
        for unit in units:
            lines.append(UnitLine(
                unit=unit, contacts=await self.store.people.with_role(
                    "unit_contact", [unit.code], None),
                resources=len(await self.store.units.resources([unit.code])),
                posts=await self.store.units.posts_held(unit.code),
                score=scores[unit.code].score))
        return sorted(lines, key=lambda line: -line.score)
