"""The permission table of SPEC §1, checked against the one central check."""

import pytest

from bot.services.access import Access, Action
from tests.support.harness import grant, seed_map

ADMIN = 999


@pytest.fixture
async def access(store):
    await seed_map(store)
    for user_id, role, unit in [
        (1, "building_head", "B01010101"), (2, "grid_worker", "G0101"),
        (3, "grid_leader", "G0101"), (4, "community_staff", "C01"),
        (5, "department_liaison", "MZJ"), (6, "volunteer", "G0101"),
        (7, "party_member", "B01010101"),
    ]:
        await grant(store, user_id, role, unit)
    return Access(store, frozenset({ADMIN}))


@pytest.mark.parametrize("user_id, action, unit, allowed", [
    (1, Action.HANDLE_TICKET, "B01010101", True),
    (1, Action.HANDLE_TICKET, "B01010102", False),    # another building
    (1, Action.ESCALATE, "B01010101", True),
    (1, Action.WHISTLE, "B01010101", False),
    (1, Action.HORN_SERVICE, "B01010101", True),
    (1, Action.HORN_ANY, "B01010101", False),
    (1, Action.REPORT, "B01010101", False),
    (2, Action.HANDLE_TICKET, "B01010102", True),      # the whole grid
    (2, Action.HANDLE_TICKET, "B01020101", False),     # another grid
    (2, Action.ESCALATE, "B01010101", False),
    (2, Action.WHISTLE, "B01010101", True),
    (2, Action.HORN_ANY, "G0101", True),
    (2, Action.PATROL, "G0101", True),
    (2, Action.THEME, "C01", False),
    (3, Action.WHISTLE, "E010101", True),
    (4, Action.HANDLE_TICKET, "B01020101", True),      # the whole community
    (4, Action.THEME, "C01", True),
    (4, Action.HORN_ANY, "C01", True),
    (5, Action.ANSWER_WHISTLE, "MZJ", True),
    (5, Action.ANSWER_WHISTLE, "CGJ", False),
    (5, Action.HANDLE_TICKET, "B01010101", False),
    (5, Action.BIND, "MZJ", True),
    (5, Action.UNBIND, "MZJ", False),
    (6, Action.HANDLE_TICKET, "B01010101", False),     # volunteers hold no staff powers
    (7, Action.HANDLE_TICKET, "B01010101", False),     # nor does the party flag
    (6, Action.TAKE, "B01010102", True),               # 党员接单: volunteers in their grid
    (6, Action.TAKE, "B01020101", False),
    (7, Action.TAKE, "B01010101", True),               # party members in their unit
    (7, Action.TAKE, "B01010102", False),
    (1, Action.TAKE, "B01010101", False),              # staff offer; they do not take
    (2, Action.TAKE, "B01010101", False),
    (ADMIN, Action.THEME, "C01", True),
    (ADMIN, Action.ANSWER_WHISTLE, "CGJ", True),
    (42, Action.BIND, "B01010101", False),             # a stranger
])
async def test_the_table(access, user_id, action, unit, allowed):
    actor = await access.actor(user_id)
    assert await access.can(actor, action, unit) is allowed


@pytest.mark.parametrize("user_id, role, unit, allowed", [
    (1, "volunteer", "B01010101", True),
    (1, "party_member", "B01010101", True),
    (1, "building_head", "B01010101", False),
    (1, "volunteer", "G0101", False),                  # above their building
    (2, "building_head", "B01010102", True),
    (2, "grid_worker", "G0101", False),                # only leaders invite workers
    (3, "grid_worker", "G0101", True),
    (3, "grid_leader", "G0101", False),
    (4, "grid_leader", "G0102", True),
    (4, "community_staff", "C01", False),              # superadmins alone
    (4, "department_liaison", "MZJ", False),
    (4, "building_head", "G0101", False),              # a role on the wrong level
    (ADMIN, "community_staff", "C01", True),
    (ADMIN, "department_liaison", "MZJ", True),
    (ADMIN, "department_liaison", "C01", False),       # liaisons belong to departments
    (ADMIN, "volunteer", "MZJ", False),
])
async def test_who_may_invite_whom(access, store, user_id, role, unit, allowed):
    actor = await access.actor(user_id)
    assert await access.may_invite(actor, role, await store.map.get(unit)) is allowed


async def test_people_covering_a_building_include_superadmins(access):
    assert await access.people_covering("B01010101") == [1, 2, 3, 4, ADMIN]
