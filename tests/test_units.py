"""Member units (SPEC §10) on a temporary store: contacts invited by community staff, members
by contacts or the unit's join link, one member unit per person, /unit, and a role on a
member unit granting nothing over buildings or tickets."""

from __future__ import annotations

import pytest

from bot.services.access import Action
from storage.models import Unit
from tests.support.harness import grant
from tests.support.services import (
    ADMIN,
    HEAD,
    LEADER,
    PROPERTY_UNIT,
    STAFF,
    bind,
    build_services,
    refused,
    staffed_map,
)

CONTACT, MEMBER, JOINER, OUTSIDER = 60, 61, 62, 63
UNIT_CHAT = -5100


@pytest.fixture
async def services(store):
    await staffed_map(store)
    async with store.transaction():
        await store.map.upsert(PROPERTY_UNIT)
        await store.map.upsert(Unit(code="M02", kind="member", name="县税务局",
                                    parent_code="C01", member_type="dual_report", position=1))
        await store.map.upsert(Unit(code="C02", kind="community", name="河东社区", position=1))
        await store.map.upsert(Unit(code="M03", kind="member", name="河东物业",
                                    parent_code="C02", member_type="property"))
    return build_services(store)


async def redeem(services, user_id, payload):
    async with services.store.transaction():
        await services.store.people.ensure(user_id)
    return await services.people.redeem(user_id, payload)


async def test_community_staff_invite_contacts_and_contacts_invite_members(services):
    staff = await services.actor(STAFF)
    payload, unit = await services.people.create_invite(staff, "unit_contact", "M01")
    assert unit.code == "M01"
    assert (await redeem(services, CONTACT, payload)).role == "unit_contact"
    contact = await services.actor(CONTACT)
    assert [(g.role, g.unit_code) for g in contact.grants] == [("unit_contact", "M01")]
    # staff of another community, a grid leader, a contact of a unit: each within their bounds
    await refused(services.store, services.people.create_invite(
        staff, "unit_contact", "M03"), "invite.not_allowed")
    await refused(services.store, services.people.create_invite(
        await services.actor(LEADER), "unit_contact", "M01"), "invite.not_allowed")
    await refused(services.store, services.people.create_invite(
        contact, "unit_contact", "M01"), "invite.not_allowed")
    await refused(services.store, services.people.create_invite(
        contact, "unit_member", "M02"), "invite.not_allowed")
    await refused(services.store, services.people.create_invite(
        contact, "volunteer", "B01010101"), "invite.not_allowed")
    # a role on a member unit is held on a member unit only, and roles of the tree not there
    await refused(services.store, services.people.create_invite(
        staff, "unit_contact", "B01010101"), "invite.not_allowed")
    await refused(services.store, services.people.create_invite(
        staff, "volunteer", "M01"), "invite.not_allowed")
    payload, _ = await services.people.create_invite(contact, "unit_member", "M01")
    assert (await redeem(services, MEMBER, payload)).role == "unit_member"
    superadmin = await services.actor(ADMIN)
    assert (await services.people.create_invite(superadmin, "unit_contact", "M03"))[1].code \
        == "M03"


async def test_a_person_belongs_to_one_member_unit(services):
    await grant(services.store, MEMBER, "unit_member", "M02")
    payload, _ = await services.people.create_invite(await services.actor(STAFF),
                                                     "unit_contact", "M01")
    await refused(services.store, redeem(services, MEMBER, payload), "unit.other_unit")
    # the invite was not used up by the refusal
    assert (await redeem(services, CONTACT, payload)).role == "unit_contact"


async def test_the_units_join_link_in_its_bound_chat_makes_members(services):
    await grant(services.store, CONTACT, "unit_contact", "M01")
    await bind(services.store, "M01", UNIT_CHAT)
    contact = await services.actor(CONTACT)
    await refused(services.store, services.chats.join_link_unit(
        await services.actor(HEAD), UNIT_CHAT), "bind.not_allowed")
    unit, payload = await services.chats.join_link_unit(contact, UNIT_CHAT)
    assert unit.code == "M01"
    assert (await services.chats.join_link_unit(await services.actor(STAFF), UNIT_CHAT))[1] \
        == payload
    redeemed = await redeem(services, JOINER, payload)
    assert (redeemed.kind, redeemed.role, redeemed.unit.code) == ("join", "unit_member", "M01")
    joiner = await services.actor(JOINER)
    assert [(g.role, g.unit_code) for g in joiner.grants] == [("unit_member", "M01")]
    assert joiner.building_code is None  # a unit member, not a resident
    # joining twice changes nothing; a member of another unit is refused
    await redeem(services, JOINER, payload)
    await grant(services.store, OUTSIDER, "unit_member", "M02")
    await refused(services.store, redeem(services, OUTSIDER, payload), "unit.other_unit")


async def test_a_role_on_a_member_unit_grants_nothing_over_buildings_or_tickets(services):
    await grant(services.store, CONTACT, "unit_contact", "M01")
    contact = await services.actor(CONTACT)
    for action in Action:
        for code in ("C01", "G0101", "E010101", "B01010101", "MZJ", "M02"):
            assert not await services.access.can(contact, action, code), (action, code)
    assert not contact.is_staff
    assert await services.access.can(contact, Action.MANAGE_UNIT, "M01")
    assert await services.access.can(await services.actor(STAFF), Action.MANAGE_UNIT, "M01")


async def test_unit_shows_the_contacts_record(services):
    await grant(services.store, CONTACT, "unit_contact", "M01")
    await grant(services.store, MEMBER, "unit_member", "M01")
    await grant(services.store, JOINER, "unit_member", "M01")
    contact = await services.actor(CONTACT)
    record = await services.units.record(contact)
    assert record.unit.code == "M01" and record.community is not None
    assert record.community.code == "C01"
    assert [p.user_id for p in record.contacts] == [CONTACT]
    assert [p.user_id for p in record.members] == [MEMBER, JOINER]
    assert not record.chat_bound
    await bind(services.store, "M01", UNIT_CHAT)
    assert (await services.units.record(await services.actor(STAFF), "M01")).chat_bound
    await refused(services.store, services.units.record(await services.actor(MEMBER)),
                  "unit.none")
    await refused(services.store, services.units.record(contact, "M02"), "unit.not_allowed")
    await refused(services.store, services.units.record(contact, "B01010101"),
                  "unit.not_member")
    await refused(services.store, services.units.record(await services.actor(STAFF), "M03"),
                  "unit.not_allowed")
    await refused(services.store, services.units.record(contact, "NOPE"), "map.unknown_code")


# 双报到


async def _dual_reporter(services, user_id=MEMBER, *, party=True, building="B01010102"):
    await grant(services.store, user_id, "unit_member", "M02")
    if party:
        await grant(services.store, user_id, "party_member", "B01010102")
    if building:
        async with services.store.transaction():
            await services.store.people.set_building(user_id, building)


async def test_report_in_records_the_skills_where_the_member_lives(services):
    await _dual_reporter(services)
    done = await services.units.report_in(await services.actor(MEMBER), ["legal", "it", "legal"])
    assert (done.unit.code, done.community.code) == ("M02", "C01")
    assert done.report.skills == ("legal", "it")
    again = await services.units.report_in(await services.actor(MEMBER), ["medical"])
    assert again.report.skills == ("medical",)
    assert [r.user_id for r in await services.store.units.dual_reports(["C01"])] == [MEMBER]
    profile = await services.people.profile(MEMBER)
    assert profile.work_unit is not None and profile.work_unit.code == "M02"
    assert profile.home_community is not None and profile.home_community.code == "C01"
    assert profile.reported is not None and profile.reported.skills == ("medical",)


async def test_report_in_is_refused_to_whom_it_is_not_for(services):
    await _dual_reporter(services, MEMBER, party=False)
    await _dual_reporter(services, JOINER, building=None)
    await grant(services.store, CONTACT, "unit_contact", "M01")   # a property firm
    await grant(services.store, CONTACT, "party_member", "B01010101")
    for user_id, key in ((MEMBER, "report_in.not_party"), (JOINER, "report_in.no_building"),
                         (CONTACT, "report_in.no_unit"), (HEAD, "report_in.no_unit")):
        await refused(services.store, services.units.report_in(
            await services.actor(user_id), []), key)
    await refused(services.store, services.units.report_in(
        await services.actor(JOINER), ["juggling"]), "report_in.bad_skill")
    assert await services.store.units.dual_reports(["C01"]) == []


# 点将台


async def test_talent_lists_volunteers_party_members_and_dual_reports_in_scope(services):
    from tests.support.services import VOLUNTEER, WORKER
    await _dual_reporter(services)                      # MEMBER lives in B01010102
    await services.units.report_in(await services.actor(MEMBER), ["legal"])
    await grant(services.store, OUTSIDER, "volunteer", "B01020101")   # grid G0102
    staff = await services.units.talent(await services.actor(STAFF), None)
    assert [t.person.user_id for t in staff] == [VOLUNTEER, MEMBER, OUTSIDER]
    reported = staff[1]
    assert reported.party and reported.work_unit.code == "M02"
    assert reported.skills == ("legal",)
    grid = await services.units.talent(await services.actor(WORKER), None)
    assert [t.person.user_id for t in grid] == [VOLUNTEER, MEMBER]   # G0101 only
    legal = await services.units.talent(await services.actor(STAFF), "legal")
    assert [t.person.user_id for t in legal] == [MEMBER]
    await refused(services.store, services.units.talent(await services.actor(HEAD), None),
                  "talent.not_allowed")
    await refused(services.store, services.units.talent(await services.actor(STAFF), "magic"),
                  "report_in.bad_skill")


async def test_units_lists_member_units_with_their_score(services):
    from datetime import datetime
    from zoneinfo import ZoneInfo
    await grant(services.store, CONTACT, "unit_contact", "M01")
    now = datetime(2026, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    lines = await services.units.unit_lines(await services.actor(STAFF), None, now)
    assert [(line.unit.code, line.score) for line in lines] == [("M01", 0), ("M02", 0)]
    assert [p.user_id for p in lines[0].contacts] == [CONTACT]
    only = await services.units.unit_lines(await services.actor(STAFF), "dual_report", now)
    assert [line.unit.code for line in only] == ["M02"]
    await refused(services.store, services.units.unit_lines(
        await services.actor(STAFF), "circus", now), "units.bad_type")
    assert [line.unit.code for line in await services.units.unit_lines(
        await services.actor(ADMIN), None, now)] == ["M01", "M02", "M03"]
