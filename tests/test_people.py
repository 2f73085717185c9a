"""People (SPEC §3) on a temporary store: languages, invites and who may make them, join
links, redeeming a payload once, /me, /cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.services.people import INVITE_TTL, TelegramUser
from storage.models import PARTY_MEMBER
from tests.support.harness import grant
from tests.support.services import (
    ADMIN,
    HEAD,
    LEADER,
    LIAISON,
    RESIDENT,
    STAFF,
    VOLUNTEER,
    WORKER,
    bind,
    build_services,
    refused,
    set_locale,
    staffed_map,
)

NEWCOMER = 50


@pytest.fixture
async def services(store):
    await staffed_map(store)
    return build_services(store)


async def arrive(services, *user_ids):
    """People who started the bot (every update's sender is recorded before it is handled)."""
    for user_id in user_ids:
        await services.people.touch(TelegramUser(user_id, f"P{user_id}"), private=True)


# languages


@pytest.mark.parametrize("language_code, locale", [
    (None, "zh-Hans"), ("en", "en"), ("en-GB", "en"), ("zh-hans", "zh-Hans"),
    ("zh-TW", "zh-Hant"), ("zh-hant", "zh-Hant"), ("zh-HK", "zh-Hant"), ("fr", "zh-Hans"),
])
async def test_until_chosen_the_telegram_language_decides(services, language_code, locale):
    actor, said = await services.people.identify(
        TelegramUser(NEWCOMER, "New", language_code=language_code), private=True)
    assert said == locale and actor.user_id == NEWCOMER
    assert await services.people.locale_for(NEWCOMER) == locale


async def test_a_chosen_language_wins_over_telegrams(services):
    await services.people.identify(TelegramUser(NEWCOMER, "New", language_code="en"), True)
    await services.people.set_locale(NEWCOMER, "zh-Hant")
    _, said = await services.people.identify(
        TelegramUser(NEWCOMER, "New", language_code="en"), private=True)
    assert said == "zh-Hant"
    assert (await services.store.people.get(NEWCOMER)).locale == "zh-Hant"


async def test_an_unknown_language_is_refused_and_changes_nothing(services):
    await set_locale(services.store, NEWCOMER, "en")
    await refused(services.store, services.people.set_locale(NEWCOMER, "fr"), "lang.unknown")


async def test_the_default_language_comes_from_the_settings(store):
    await staffed_map(store)
    services = build_services(store, default_locale="en")
    assert await services.people.locale_for(RESIDENT) == "en"
    assert services.people.locale_of(None, "zh-TW") == "zh-Hant"


async def test_a_group_reads_its_own_language_else_the_default(services):
    await bind(services.store, "B01010101", -100)
    assert await services.people.locale_in(-100) == "zh-Hans"
    await bind(services.store, "B01010102", -200, locale="en")
    assert await services.people.locale_in(-200) == "en"
    await set_locale(services.store, RESIDENT, "zh-Hant")
    assert await services.people.locale_in(RESIDENT) == "zh-Hant"


async def test_a_sender_is_recorded_and_started_only_in_private(services):
    await services.people.touch(TelegramUser(NEWCOMER, "Mei", "Li", "mei", "en"), private=False)
    person = await services.store.people.get(NEWCOMER)
    assert (person.first_name, person.last_name, person.username, person.language_code,
            person.started) == ("Mei", "Li", "mei", "en", False)
    await services.people.touch(TelegramUser(NEWCOMER, "Mei", "Li", "mei", "en"), private=True)
    assert (await services.store.people.get(NEWCOMER)).started
    # a change of name is written even though the sender is known
    await services.people.touch(TelegramUser(NEWCOMER, "May", "Li", "mei", "en"), private=True)
    assert (await services.store.people.get(NEWCOMER)).first_name == "May"


async def test_a_person_who_blocked_the_bot_is_marked(services):
    await services.people.set_blocked(RESIDENT, True)
    assert (await services.store.people.get(RESIDENT)).blocked
    await services.people.set_blocked(RESIDENT, False)
    assert not (await services.store.people.get(RESIDENT)).blocked


# invites (the table of SPEC §1)


@pytest.mark.parametrize("inviter, role, code", [
    (HEAD, "volunteer", "B01010101"),
    (HEAD, PARTY_MEMBER, "B01010101"),
    (WORKER, "building_head", "B01010102"),
    (WORKER, "volunteer", "G0101"),
    (LEADER, "grid_worker", "G0101"),
    (STAFF, "grid_leader", "G0102"),
    (STAFF, "building_head", "B01020101"),
    (ADMIN, "community_staff", "C01"),
    (ADMIN, "department_liaison", "MZJ"),
])
async def test_invites_roles_below_ones_own_in_ones_scope(services, inviter, role, code):
    actor = await services.actor(inviter)
    payload, unit = await services.people.create_invite(actor, role, code)
    assert payload.startswith("i-") and unit.code == code
    invite = await services.store.people.invite(payload[2:])
    assert (invite.kind, invite.role, invite.unit_code, invite.created_by, invite.used_by) == (
        "role", role, code, inviter, None)
    expected = datetime.now(UTC) + INVITE_TTL
    assert abs((invite.expires_at - expected).total_seconds()) < 60


@pytest.mark.parametrize("inviter, role, code", [
    (HEAD, "building_head", "B01010101"),        # not below their own
    (HEAD, "volunteer", "B01010102"),            # another building
    (WORKER, "grid_worker", "G0101"),            # grid workers do not invite grid workers
    (WORKER, "building_head", "B01020101"),      # another grid
    (LEADER, "grid_leader", "G0101"),
    (STAFF, "community_staff", "C01"),           # superadmins alone
    (STAFF, "department_liaison", "MZJ"),        # superadmins alone
    (ADMIN, "building_head", "G0101"),           # a role on the wrong level of the map
    (ADMIN, "volunteer", "MZJ"),                 # volunteers belong to the map, not a department
    (LIAISON, "volunteer", "B01010101"),
    (VOLUNTEER, "volunteer", "B01010101"),
    (RESIDENT, PARTY_MEMBER, "B01010101"),
])
async def test_invites_outside_the_table_are_refused_and_change_nothing(services, inviter,
                                                                        role, code):
    refusal = await refused(services.store, services.people.create_invite(
        await services.actor(inviter), role, code), "invite.not_allowed")
    assert refusal.values == {"role": role, "code": code}


async def test_an_unknown_role_is_refused_naming_the_roles_one_may_invite(services):
    refusal = await refused(services.store, services.people.create_invite(
        await services.actor(HEAD), "mayor", "B01010101"), "invite.unknown_role")
    assert refusal.values == {"roles": f"volunteer, {PARTY_MEMBER}"}
    refusal = await refused(services.store, services.people.create_invite(
        await services.actor(RESIDENT), "resident", "B01010101"), "invite.unknown_role")
    assert refusal.values == {"roles": "—"}


async def test_an_unknown_unit_is_refused(services):
    refusal = await refused(services.store, services.people.create_invite(
        await services.actor(STAFF), "volunteer", "X999"), "map.unknown_code")
    assert refusal.values == {"code": "X999"}


async def test_each_invite_is_a_new_link(services):
    actor = await services.actor(HEAD)
    first, _ = await services.people.create_invite(actor, "volunteer", "B01010101")
    second, _ = await services.people.create_invite(actor, "volunteer", "B01010101")
    assert first != second


# redeeming


async def test_an_invite_grants_its_role_once(services):
    await arrive(services, NEWCOMER, NEWCOMER + 1)
    payload, _ = await services.people.create_invite(await services.actor(WORKER),
                                                     "building_head", "B01010102")
    redeemed = await services.people.redeem(NEWCOMER, payload)
    assert (redeemed.kind, redeemed.role, redeemed.unit.code) == (
        "role", "building_head", "B01010102")
    grants = await services.store.people.roles(NEWCOMER)
    assert [(g.role, g.unit_code) for g in grants] == [("building_head", "B01010102")]
    assert await services.store.db.fetchval(
        "SELECT granted_by FROM roles WHERE user_id = ?", (NEWCOMER,)) == WORKER
    assert (await services.store.people.invite(payload[2:])).used_by == NEWCOMER
    # a second use, by anyone, changes nothing
    await refused(services.store, services.people.redeem(NEWCOMER, payload), "start.used_link")
    await refused(services.store, services.people.redeem(NEWCOMER + 1, payload),
                  "start.used_link")
    assert await services.store.people.roles(NEWCOMER + 1) == []


async def test_an_expired_invite_is_refused_and_changes_nothing(services):
    await arrive(services, NEWCOMER)
    token = "expiredexpiredexpired"
    async with services.store.transaction():
        await services.store.people.create_invite(
            token, "role", "volunteer", "B01010101", HEAD, datetime.now(UTC) - timedelta(1))
    await refused(services.store, services.people.redeem(NEWCOMER, f"i-{token}"),
                  "start.expired_link")


@pytest.mark.parametrize("forge", [
    lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),     # altered
    lambda p: "i-" + "x" * 24,                              # forged
    lambda p: "j-" + p[2:],                                 # a role invite passed as a join link
    lambda p: p + "!",                                      # not a payload at all
    lambda p: "hello",
])
async def test_a_forged_or_altered_payload_is_refused_and_changes_nothing(services, forge):
    await arrive(services, NEWCOMER)
    payload, _ = await services.people.create_invite(await services.actor(STAFF),
                                                     "grid_leader", "G0101")
    await refused(services.store, services.people.redeem(NEWCOMER, forge(payload)),
                  "start.bad_link")
    assert (await services.people.profile(NEWCOMER)).roles == []


async def test_the_join_link_stands_and_makes_residents(services):
    await arrive(services, NEWCOMER, NEWCOMER + 1, NEWCOMER + 2)
    payload = await services.people.join_payload("B01010102")
    assert payload.startswith("j-")
    assert await services.people.join_payload("B01010102") == payload
    assert await services.people.join_payload("B01010101") != payload
    for person in (NEWCOMER, NEWCOMER + 1):
        redeemed = await services.people.redeem(person, payload)
        assert (redeemed.kind, redeemed.role, redeemed.unit.code) == ("join", None, "B01010102")
        assert (await services.store.people.get(person)).building_code == "B01010102"
    # a join link passed as an invite grants nothing
    await refused(services.store, services.people.redeem(NEWCOMER + 2, "i-" + payload[2:]),
                  "start.bad_link")


# /me and /cancel


async def test_me_reads_what_a_person_is(services):
    await grant(services.store, VOLUNTEER, PARTY_MEMBER, "B01010101")
    async with services.store.transaction():
        await services.store.people.set_building(VOLUNTEER, "B01010102")
        await services.store.people.set_volunteer_profile(VOLUNTEER, ("medical", "it"), "周末")
        await services.store.people.add_hours(VOLUNTEER, 2.5, 25)
        await services.store.shop.credit(VOLUNTEER, 25, 1000.0, None)
        # 10 of them held by a /redeem code: the points shown are the ledger's balance
        await services.store.shop.reserve("ABC234", VOLUNTEER, 10, 1001.0, 9e12)
    profile = await services.people.profile(VOLUNTEER)
    assert profile.building.code == "B01010102"
    assert [(role, unit.code) for role, unit in profile.roles] == [("volunteer", "B01010101")]
    assert profile.party_member
    assert (profile.skills, profile.availability, profile.hours, profile.points) == (
        ("medical", "it"), "周末", 2.5, 15)
    assert (await services.store.people.get(VOLUNTEER)).points == 25  # earned, for boards
    stranger = await services.people.profile(NEWCOMER)
    assert (stranger.building, stranger.roles, stranger.party_member, stranger.hours) == (
        None, [], False, 0)


async def test_two_people_with_the_same_standing_read_the_same_me(services):
    await arrive(services, NEWCOMER, NEWCOMER + 1)
    invited, _ = await services.people.create_invite(await services.actor(WORKER),
                                                     "volunteer", "B01010101")
    await services.people.redeem(NEWCOMER, invited)
    await grant(services.store, NEWCOMER + 1, "volunteer", "B01010101")
    assert await services.people.profile(NEWCOMER) == \
        await services.people.profile(NEWCOMER + 1)


async def test_cancel_leaves_the_flow_else_the_private_draft(services):
    store = services.store
    async with store.transaction():
        await store.flows.set(RESIDENT, "horn", "title", {})
        await store.drafts.set(RESIDENT, {"text": "楼道灯坏了"})
    assert await services.people.leave_flow(RESIDENT)
    assert await store.flows.get(RESIDENT) is None
    assert await store.drafts.get(RESIDENT) is not None     # the flow went first
    assert not await services.people.leave_flow(RESIDENT, private=False)
    assert await store.drafts.get(RESIDENT) is not None     # a draft is private
    assert await services.people.leave_flow(RESIDENT)
    assert await store.drafts.get(RESIDENT) is None
    assert not await services.people.leave_flow(RESIDENT)


async def test_within_one_update_the_senders_row_is_read_once_and_again_after_a_write(store):
    """The guard, the access check and the handler of one update each ask for the sender's
    row: one read (storage.inbox.update_memo). A write to people, or a failed transaction,
    makes the next ask read the store again; outside an update nothing is kept."""
    from storage.inbox import UpdateMark, current_update

    await store.people.ensure(501)
    reads = []
    fetchone = store.db.fetchone

    async def counting(sql, params=()):
        if "FROM people" in sql:
            reads.append(sql)
        return await fetchone(sql, params)

    store.db.fetchone = counting
    token = current_update.set(UpdateMark(9001))
    try:
        first = await store.people.get(501)
        assert await store.people.get(501) is first and len(reads) == 1
        await store.people.set_locale(501, "en")  # a write: read again
        assert (await store.people.get(501)).locale == "en" and len(reads) == 2
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await store.people.set_volunteer_profile(501, ["driving"], "weekends")
                assert (await store.people.get(501)).skills == ("driving",)
                raise RuntimeError("the handler failed")
        # what the failed transaction read was never committed: read again
        assert (await store.people.get(501)).skills == () and len(reads) == 4
    finally:
        current_update.reset(token)
    try:
        await store.people.get(501)
        await store.people.get(501)
        assert len(reads) == 6  # outside an update: each ask reads
    finally:
        store.db.fetchone = fetchone
