"""Who may do what (SPEC §1): the one permission check behind every command and button.

A role is held on a unit and covers everything below it. Superadmins (from settings) may do
everything everywhere. Party membership (党员) and volunteering grant no staff powers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from storage.models import PARTY_MEMBER, Person, RoleGrant, Unit
from storage.store import Store

#: a partner shop's clerk (SPEC §13), invited by community staff with `/invite partner_clerk
#: PARTNER_CODE`
PARTNER_CLERK = "partner_clerk"


class Action(StrEnum):
    # tickets (民声e通道)
    HANDLE_TICKET = "handle_ticket"   # acknowledge, urgency, reply, reject, merge, post for Me too
    ESCALATE = "escalate"             # building → grid
    WHISTLE = "whistle"               # 吹哨 to a department; also offer as a service request
    ANSWER_WHISTLE = "answer_whistle"  # accept or decline, as the department
    RESOLVE = "resolve"
    VIEW_TICKETS = "view_tickets"
    TAKE = "take"                     # 党员接单: take an offered service request
    # assembly horn (集结号)
    HORN_SERVICE = "horn_service"
    HORN_ANY = "horn_any"
    # map and people
    BIND = "bind"
    UNBIND = "unbind"                 # also /joinlink
    INVITE = "invite"
    PATROL = "patrol"
    REPORT = "report"                 # /report and /board
    THEME = "theme"
    # meetings (SPEC §12): organise (/meeting) and list (/meetings)
    MEETING = "meeting"
    # evaluation and assessment (SPEC §12)
    EVALUATE = "evaluate"             # rate grids (staff) / grid workers (leaders); /evaluations
    ASSESS = "assess"                 # /assess YYYY
    # member units (SPEC §10): /unit, a member unit's record and people
    MANAGE_UNIT = "manage_unit"
    POSTS = "posts"                   # publish posts to claim (认领岗位)
    TALENT = "talent"                 # 点将台: /talent, /units


_STAFF = {Action.HANDLE_TICKET, Action.RESOLVE, Action.VIEW_TICKETS, Action.BIND, Action.UNBIND,
          Action.INVITE, Action.HORN_SERVICE}
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "building_head": frozenset(_STAFF | {Action.ESCALATE}),
    "grid_worker": frozenset(_STAFF | {Action.WHISTLE, Action.HORN_ANY, Action.PATROL,
                                       Action.REPORT, Action.POSTS, Action.TALENT}),
    "grid_leader": frozenset(_STAFF | {Action.WHISTLE, Action.HORN_ANY, Action.PATROL,
                                       Action.REPORT, Action.EVALUATE, Action.POSTS,
                                       Action.TALENT}),
    "community_staff": frozenset(_STAFF | {Action.WHISTLE, Action.HORN_ANY, Action.PATROL,
                                           Action.REPORT, Action.THEME, Action.EVALUATE,
                                           Action.ASSESS, Action.MANAGE_UNIT, Action.POSTS,
                                           Action.TALENT}),
    "department_liaison": frozenset({Action.ANSWER_WHISTLE, Action.RESOLVE, Action.VIEW_TICKETS,
                                     Action.BIND}),
    "volunteer": frozenset({Action.TAKE}),
    "resident": frozenset(),
    # a partner shop's clerk (爱心银行, SPEC §13): spends volunteers' codes, nothing more
    PARTNER_CLERK: frozenset(),
    PARTY_MEMBER: frozenset({Action.TAKE}),
    # held on a member unit, which has nothing below it: nothing over buildings or tickets
    "unit_contact": frozenset({Action.MANAGE_UNIT, Action.BIND, Action.UNBIND, Action.INVITE}),
    "unit_member": frozenset(),
}
# meetings (SPEC §12): staff of grids and communities organise them; unit contacts may not
for _role in ("grid_worker", "grid_leader", "community_staff"):
    ROLE_ACTIONS[_role] = ROLE_ACTIONS[_role] | {Action.MEETING}

# What each role may hand out with /invite (SPEC §1); superadmins alone invite the top roles.
INVITABLE: dict[str, tuple[str, ...]] = {
    "building_head": ("volunteer", PARTY_MEMBER),
    "grid_worker": ("building_head", "volunteer", PARTY_MEMBER),
    "grid_leader": ("grid_worker", "building_head", "volunteer", PARTY_MEMBER),
    "community_staff": ("grid_leader", "grid_worker", "building_head", "volunteer", PARTY_MEMBER,
                        PARTNER_CLERK, "unit_contact"),
    "unit_contact": ("unit_member",),
}
INVITE_ROLES = ("community_staff", "grid_leader", "grid_worker", "building_head",
                "department_liaison", "volunteer", PARTY_MEMBER, PARTNER_CLERK, "unit_contact",
                "unit_member")
# The kind of unit each invitable role is held on (None: any unit of the map).
ROLE_UNIT_KIND: dict[str, str | None] = {
    "community_staff": "community", "grid_leader": "grid", "grid_worker": "grid",
    "building_head": "building", "department_liaison": "department",
    "volunteer": None, PARTY_MEMBER: None,
    PARTNER_CLERK: "community",   # held on the partner's community; the partner in its own row
    "unit_contact": "member", "unit_member": "member",
}
#: the roles held on a member unit (SPEC §10); a person belongs to one member unit at most
UNIT_ROLES = ("unit_contact", "unit_member")
def invitable_roles(actor: Actor) -> list[str]:
    """The roles this actor may hand out with /invite somewhere (SPEC §1)."""
    if actor.superadmin:
        return list(INVITE_ROLES)
    mine = {role for g in actor.grants for role in INVITABLE.get(g.role, ())}
    return [role for role in INVITE_ROLES if role in mine]


STAFF_ROLES = ("community_staff", "grid_leader", "grid_worker", "building_head",
               "department_liaison")


@dataclass(frozen=True)
class Actor:
    """The person behind an update, with every role they hold."""

    user_id: int
    superadmin: bool = False
    grants: tuple[RoleGrant, ...] = field(default_factory=tuple)
    building_code: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.superadmin or any(g.role in STAFF_ROLES for g in self.grants)


class Access:
    """Answers "may this actor do this on that unit?" from the store's map."""

    def __init__(self, store: Store, superadmins: frozenset[int]) -> None:
        self.store = store
        self.superadmins = superadmins

    async def actor(self, user_id: int, person: Person | None = None) -> Actor:
        """Who this is; `person`: their stored row, when the caller has just read it."""
        if person is None:
            person = await self.store.people.get(user_id)
        grants = tuple(await self.store.people.roles(user_id))
        return Actor(user_id=user_id, superadmin=user_id in self.superadmins, grants=grants,
                     building_code=person.building_code if person else None)

    async def covering(self, unit_code: str) -> list[str]:
        """The unit and every unit above it: a grant on any of them covers the unit."""
        return [u.code for u in await self.store.map.ancestors(unit_code)]

    async def can(self, actor: Actor, action: Action, unit_code: str) -> bool:
        if actor.superadmin:
            return True
        relevant = [g for g in actor.grants if action in ROLE_ACTIONS.get(g.role, ())]
        if not relevant:
            return False
        above = set(await self.covering(unit_code))
        return any(g.unit_code in above for g in relevant)

    def can_somewhere(self, actor: Actor, action: Action) -> bool:
        """Whether the actor may do this anywhere (for menus and help)."""
        return actor.superadmin or any(action in ROLE_ACTIONS.get(g.role, ())
                                       for g in actor.grants)

    async def scope_units(self, actor: Actor, action: Action) -> list[Unit]:
        """The top units where the actor may do `action` (empty for superadmins: everything)."""
        units = []
        for grant in actor.grants:
            if action in ROLE_ACTIONS.get(grant.role, ()):
                unit = await self.store.map.get(grant.unit_code)
                if unit is not None and unit not in units:
                    units.append(unit)
        return units

    async def may_invite(self, actor: Actor, role: str, unit: Unit) -> bool:
        """SPEC §1 /invite: roles below one's own, on a unit inside one's scope."""
        wanted_kind = ROLE_UNIT_KIND.get(role, "")
        if wanted_kind == "":
            return False
        if wanted_kind is None and unit.kind in ("department", "member"):
            return False
        if wanted_kind is not None and unit.kind != wanted_kind:
            return False
        if actor.superadmin:
            return True
        above = set(await self.covering(unit.code))
        return any(role in INVITABLE.get(g.role, ()) and g.unit_code in above
                   for g in actor.grants)

    async def people_covering(self, unit_code: str, roles: tuple[str, ...] = STAFF_ROLES
                              ) -> list[int]:
        """Everyone whose role of `roles` covers the unit, plus the superadmins."""
        above = await self.covering(unit_code)
        holders = await self.store.people.holders(roles, above)
        ids = {h.user_id for h in holders}
        return sorted(ids | set(self.superadmins))
