"""Member units (SPEC §10) end to end: community staff invite a contact, the contact binds
the unit's chat and posts its join link, a member joins through it, /unit and /me show it,
and the contact's role gives nothing over the building tree."""

from __future__ import annotations

import re

import pytest

from bot.i18n import t
from storage.models import Unit
from tests.support.harness import grant, seed_map
from tests.support.services import PROPERTY_UNIT
from tests.support.texts import check_ins, line_of, plain, shown

pytestmark = pytest.mark.asyncio


async def _member_map(harness) -> None:
    await seed_map(harness.store)
    async with harness.store.transaction():
        await harness.store.map.upsert(PROPERTY_UNIT)


async def test_a_contact_invited_binds_the_units_chat_and_members_join(harness):
    staff = harness.emu.add_user(first_name="Staff", language_code="en")
    await harness.start_bot()
    await _member_map(harness)
    await grant(harness.store, staff.id, "community_staff", "C01")

    invite = (await harness.say(staff, "/invite unit_contact M01"))[0].text
    payload = invite.split("start=")[1]
    contact = harness.emu.add_user(first_name="Zhou", language_code="en")
    answer = (await harness.say(contact, f"/start {payload}"))[0].text
    assert shown("en", "start.role_granted", role=t("en", "role.unit_contact"),
                 unit="安居物业 (M01)") in answer

    group = await harness.bound_group("安居物业工作群", "M01", contact, [contact])
    assert (await harness.store.map.binding("M01")).chat_id == group.id
    post = (await harness.say(contact, "/joinlink", chat=group))[-1]
    link = post.text.split()[-1]
    assert link.startswith("https://t.me/gridhorn_bot?start=j-")
    assert post.text == shown("en", "unit.joinlink_post", building="安居物业 (M01)",
                              link=link)

    member = harness.emu.add_user(first_name="Wu", language_code="en")
    joined = (await harness.say(member, f"/start {link.split('start=')[1]}"))[0].text
    assert shown("en", "unit.joined", unit="安居物业 (M01)") in joined
    me = (await harness.say(member, "/me"))[0].text
    assert f"{t('en', 'role.unit_member')} · 安居物业 (M01)" in me

    record = (await harness.say(contact, "/unit"))[0].text
    assert line_of("en", "unit.record", "unit", unit="安居物业 (M01)") in record
    assert line_of("en", "unit.record", "type", type=t("en", "unit.type.property")) in record
    assert line_of("en", "unit.record", "contacts", contacts=f"Zhou ({contact.id})") in record
    assert line_of("en", "unit.record", "members", members=1) in record
    assert line_of("en", "unit.record", "chat", chat=t("en", "unit.chat_bound")) in record
    # staff look at it by its code; a member has no record of their own to see
    assert line_of("en", "unit.record", "unit", unit="安居物业 (M01)") in (
        await harness.say(staff, "/unit M01"))[0].text
    assert shown("en", "unit.none") in (await harness.say(member, "/unit"))[0].text

    # the contact's role grants nothing over buildings: no binding, no invites there
    assert shown("en", "invite.not_allowed", role="volunteer", code="B01010101") in (
        await harness.say(contact, "/invite volunteer B01010101"))[0].text
    help_text = (await harness.say(contact, "/help"))[0].text
    assert shown("en", "help.unit").splitlines()[0] in help_text


async def test_a_dual_report_party_member_reports_in_and_me_shows_both(harness):
    await harness.start_bot()
    await _member_map(harness)
    async with harness.store.transaction():
        await harness.store.map.upsert(Unit(code="M02", kind="member", name="县税务局",
                                            parent_code="C01", member_type="dual_report"))
    cadre = harness.emu.add_user(first_name="Feng", language_code="en")
    await grant(harness.store, cadre.id, "unit_member", "M02")
    assert shown("en", "report_in.not_party") in (
        await harness.say(cadre, "/report_in legal"))[0].text
    await grant(harness.store, cadre.id, "party_member", "B01010102")
    assert shown("en", "report_in.no_building") in (
        await harness.say(cadre, "/report_in legal"))[0].text
    async with harness.store.transaction():
        await harness.store.people.set_building(cadre.id, "B01010102")
    answer = (await harness.say(cadre, "/report_in legal IT"))[0].text
    skills = f"{t('en', 'skill.legal')}, {t('en', 'skill.it')}"
    assert answer == shown("en", "report_in.done", unit="县税务局 (M02)",
                           community="欣山社区 (C01)", skills=skills)
    me = (await harness.say(cadre, "/me"))[0].text
    assert shown("en", "me.work_unit", unit="县税务局 (M02)") in me
    assert shown("en", "me.home_community", community="欣山社区 (C01)") in me
    assert skills in me.splitlines()[-1]
    assert shown("en", "report_in.bad_skill", skill="juggling", skills="x").split(".")[0] in (
        await harness.say(cadre, "/report_in juggling"))[0].text


def _copy(harness, chat_id, horn_id):
    """The horn's copy in a chat (its post or call-up)."""
    pattern = re.compile(rf"(集结号|集結號|horn) #{horn_id}\n")
    return [m for m in harness.emu.messages(chat_id) if pattern.search(m.text)][-1]


async def test_a_horn_calls_two_units_whose_pledges_and_residents_fill_it(harness):
    emu = harness.emu
    worker = emu.add_user(first_name="Worker", language_code="en")
    contact1 = emu.add_user(first_name="Zhou", language_code="en")
    contact2 = emu.add_user(first_name="Feng", language_code="en")
    residents = [emu.add_user(first_name=f"R{i}", language_code="en") for i in range(5)]
    await harness.start_bot()
    await _member_map(harness)
    store = harness.store
    async with store.transaction():
        await store.map.upsert(Unit(code="M02", kind="member", name="县税务局",
                                    parent_code="C01", member_type="dual_report"))
    await grant(store, worker.id, "grid_worker", "G0101")
    await grant(store, contact1.id, "unit_contact", "M01")
    await grant(store, contact2.id, "unit_contact", "M02")
    for user in (worker, contact1, contact2, *residents):
        await harness.say(user, "/start")
    building = await harness.bound_group("1栋楼事群", "B01010101", worker, [worker, *residents])
    unit_chat = await harness.bound_group("安居物业工作群", "M01", contact1, [contact1])

    preview = (await harness.say(worker, "/horn major G0101 10 Sandbags +M01 +M02"))[-1]
    assert shown("en", "unit.horn_preview", units="M01, M02") in preview.text
    await harness.press(worker, preview, "hf:pub")
    horn = max(h.id for h in await store.horns.active())
    # the unit with a chat gets it there; the other's contact privately
    assert _copy(harness, unit_chat.id, horn)
    assert check_ins("en", 0, 10) in _copy(harness, contact2.id, horn).text

    for contact, chat, people in ((contact1, unit_chat.id, 3), (contact2, contact2.id, 2)):
        answer = await harness.press(contact, _copy(harness, chat, horn), f"hu:p:{horn}")
        assert answer.text == shown("en", "unit.horn_pledge_private")
        await harness.settle()
        prompt = emu.messages(contact.id)[-1]
        assert [b.text for row in prompt.buttons for b in row][0] == "1"
        if contact is contact1:  # a tap on a number
            answer = await harness.press(contact, prompt, f"hu:n:{horn}:{people}")
            pledged = shown("en", "unit.horn_pledged", unit="安居物业 (M01)", people=3, id=horn)
            assert answer.text == pledged
            await harness.settle()  # the numbers' message becomes the pledge (by the outbox)
            edited = next(m for m in emu.messages(contact.id) if m.message_id == prompt.message_id)
            assert edited.text == pledged and not edited.buttons
        else:  # a typed number: too many first (7 are still needed), then right
            assert shown("en", "unit.horn_too_many", most=7) in (
                await harness.say(contact, "8"))[-1].text
            said = await harness.say(contact, str(people))
            assert said[-1].text == shown("en", "unit.horn_pledged", unit="县税务局 (M02)",
                                          people=2, id=horn)
    # a resident may not pledge for a unit
    refused = await harness.press(residents[0], _copy(harness, building.id, horn),
                                  f"hu:p:{horn}")
    assert refused.text == shown("en", "unit.horn_not_contact", id=horn)
    for resident in residents:
        await harness.press(resident, _copy(harness, building.id, horn), f"h:in:{horn}")
    await harness.settle()
    counter = check_ins("zh-Hans", 10, 10) + plain(t("zh-Hans", "unit.horn_counter", units=2))
    counter_en = check_ins("en", 10, 10) + plain(t("en", "unit.horn_counter", units=2))
    for chat in (building.id, unit_chat.id, contact2.id):
        text = _copy(harness, chat, horn).text
        assert counter in text or counter_en in text, text

    await harness.say(worker, f"/horn_close {horn}")
    await harness.settle()
    card = [m for m in emu.messages(worker.id)
            if shown("en", "unit.horn_attendance", unit="安居物业 (M01)", people=3,
                     pledged=3) in m.text][-1]
    await harness.press(worker, card, f"h:ok:{horn}")
    done = (await harness.last(worker.id)).text
    assert shown("en", "unit.horn_credited", unit="安居物业 (M01)", people=3, hours="6") in done
    assert shown("en", "unit.horn_credited", unit="县税务局 (M02)", people=2, hours="4") in done
    assert await store.units.people_hours("M01") == 6.0
    assert await store.units.people_hours("M02") == 4.0
    record = (await harness.say(contact1, "/unit"))[-1].text
    assert line_of("en", "unit.record", "hours", horns=1, hours="6") in record


async def test_a_post_claimed_to_full_waits_releases_and_is_checked_monthly(harness):
    emu = harness.emu
    worker = emu.add_user(first_name="Worker", language_code="en")
    contact = emu.add_user(first_name="Zhou", language_code="en")
    vol1 = emu.add_user(first_name="V1", language_code="en")
    vol2 = emu.add_user(first_name="V2", language_code="en")
    await harness.start_bot()
    await _member_map(harness)
    store = harness.store
    await grant(store, worker.id, "grid_worker", "G0101")
    await grant(store, contact.id, "unit_contact", "M01")
    for vol in (vol1, vol2):
        await grant(store, vol.id, "volunteer", "B01010101")
    for user in (worker, contact, vol1, vol2):
        await harness.say(user, "/start")
    building = await harness.bound_group("1栋楼事群", "B01010101", worker, [worker, vol1, vol2])

    said = (await harness.say(worker, "/posts new G0101 2 周六楼道消杀"))[-1].text
    assert said == shown("en", "post.published", id=1, title="周六楼道消杀", slots=2)
    await harness.settle()
    post = harness.emu.messages(building.id)[-1]
    assert "周六楼道消杀" in post.text
    offer = emu.messages(contact.id)[-1]           # the unit has no chat: its contact
    assert (await harness.press(contact, offer, "po:c:1")).text == shown(
        "en", "post.claimed", id=1)
    assert (await harness.press(vol1, post, "po:c:1")).text == shown("en", "post.claimed", id=1)
    assert (await harness.press(vol2, post, "po:c:1")).text == shown(
        "en", "post.waiting", id=1, position=1)
    me = (await harness.say(vol2, "/me"))[-1].text
    assert shown("en", "me.posts", posts="#1 周六楼道消杀" + t("en", "post.mine_waiting")) in me

    listing = (await harness.say(vol1, "/posts"))[-1]
    assert shown("en", "post.line", id=1, title="周六楼道消杀", held=2, slots=2,
                 mine=t("en", "post.mine_holding")) in listing.text
    assert (await harness.press(vol1, listing, "po:r:1")).text == shown(
        "en", "post.released", id=1)
    await harness.settle()
    assert shown("en", "post.moved_up", id=1, title="周六楼道消杀") == \
        emu.messages(vol2.id)[-1].text
    assert shown("en", "me.posts", posts="#1 周六楼道消杀") in (
        await harness.say(vol2, "/me"))[-1].text

    # the monthly check, as the scheduler runs it: once for the period
    async with store.transaction():
        asked = await harness.runtime.services.posts.ask_holders("2099-01")
    assert asked == 2
    await harness.settle()
    question = emu.messages(vol2.id)[-1]
    assert question.text == shown("en", "post.still_serving", id=1, title="周六楼道消杀")
    assert (await harness.press(vol2, question, "po:y:1")).text == shown(
        "en", "post.thanks", id=1)


async def test_a_resource_requested_for_a_horn_is_declined_with_a_reason(harness):
    emu = harness.emu
    staff = emu.add_user(first_name="Staff", language_code="en")
    contact = emu.add_user(first_name="Zhou", language_code="en")
    await harness.start_bot()
    await _member_map(harness)
    store = harness.store
    await grant(store, staff.id, "community_staff", "C01")
    await grant(store, contact.id, "unit_contact", "M01")
    for user in (staff, contact):
        await harness.say(user, "/start")
    added = (await harness.say(contact, "/resources add vehicle 2 面包车"))[-1].text
    assert added == shown("en", "resource.added", id=1, name="面包车", quantity=2,
                          kind=t("en", "resource.kind.vehicle")) + "\n" + \
        shown("en", "resource.ask_domain")
    preview = (await harness.say(staff, "/horn major C01 5 Sandbags"))[-1]
    await harness.press(staff, preview, "hf:pub")
    horn = max(h.id for h in await store.horns.active())

    listing = (await harness.say(staff, "/resources vehicle"))[-1]
    assert shown("en", "resource.line", id=1, name="面包车", quantity=2,
                 kind=t("en", "resource.kind.vehicle"), unit="安居物业 (M01)") in listing.text
    await harness.press(staff, listing, "rs:q:1")
    await harness.settle()
    assert (await harness.last(staff.id)).text == shown("en", "resource.ask_target", id=1)
    said = await harness.say(staff, f"h{horn}")
    assert said[-1].text == shown("en", "resource.requested", id=1)
    await harness.settle()
    asked = emu.messages(contact.id)[-1]
    assert asked.text == shown("en", "resource.asked", id=1, what="面包车 ×2",
                               target=f"h{horn}")
    await harness.press(contact, asked, "rs:d:1")
    await harness.settle()
    assert (await harness.last(contact.id)).text == shown("en", "resource.ask_reason", id=1)
    said = await harness.say(contact, "周末已借出")
    assert said[-1].text == shown("en", "resource.declined", id=1)
    await harness.settle()
    assert (await harness.last(staff.id)).text == shown(
        "en", "resource.was_declined", id=1, what="面包车 ×2", target=f"h{horn}",
        reason="周末已借出")
    # the same press again: already answered, nothing changes
    again = await harness.press(contact, asked, "rs:a:1")
    assert again.text == shown("en", "resource.answered", id=1)


async def test_talent_and_units_show_the_dispatch_board(harness):
    emu = harness.emu
    staff = emu.add_user(first_name="Staff", language_code="en")
    vol = emu.add_user(first_name="Li", language_code="en")
    contact = emu.add_user(first_name="Zhou", language_code="en")
    await harness.start_bot()
    await _member_map(harness)
    store = harness.store
    await grant(store, staff.id, "community_staff", "C01")
    await grant(store, contact.id, "unit_contact", "M01")
    await grant(store, vol.id, "volunteer", "B01010101")
    async with store.transaction():
        await store.people.set_volunteer_profile(vol.id, ("medical",), None)
    for user in (staff, vol, contact):
        await harness.say(user, "/start")
    text = (await harness.say(staff, "/talent medical"))[-1].text
    assert shown("en", "talent.line", name="Li", user=vol.id, party="", unit="",
                 skills=t("en", "skill.medical"), hours="0", posts=0, assignments=0) in text
    assert shown("en", "talent.none") in (await harness.say(staff, "/talent legal"))[-1].text
    text = (await harness.say(staff, "/units"))[-1].text
    assert shown("en", "units.line", unit="安居物业 (M01)", type=t("en", "unit.type.property"),
                 contacts="Zhou", resources=0, posts=0, score="0") in text
    assert shown("en", "talent.not_allowed") in (await harness.say(vol, "/units"))[-1].text
