"""People, invites, languages and menus, end to end through the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.i18n import join_list, t
from handlers.onboarding import LANGUAGE_LABELS
from tests.support.harness import grant, seed_map
from tests.support.texts import line_of, shown

pytestmark = pytest.mark.asyncio


def invited(role_key: str, unit: str) -> str:
    """The first line of an invite's answer (the link follows)."""
    return line_of("en", "invite.created", "role", role=t("en", role_key), unit=unit)


def granted(role_key: str, unit: str) -> str:
    return shown("en", "start.role_granted", role=t("en", role_key), unit=unit)


def card_buttons(locale: str, *keys: str) -> str:
    """/help's line naming the buttons a role has on ticket cards."""
    return line_of(locale, "help.tickets", "buttons",
                   buttons=join_list(locale, (t(locale, key) for key in keys)))


async def test_start_greets_in_each_language(harness):
    await harness.start_bot()
    hans = harness.emu.add_user(first_name="李", language_code="zh-hans")
    hant = harness.emu.add_user(first_name="陳", language_code="zh-TW")
    english = harness.emu.add_user(first_name="Ann", language_code="en-GB")
    other = harness.emu.add_user(first_name="Ivan", language_code="ru")
    for user, locale in ((hans, "zh-Hans"), (hant, "zh-Hant"), (english, "en"),
                         (other, "zh-Hans")):
        assert shown(locale, "start.greeting", name=user.first_name) in (
            await harness.say(user, "/start"))[0].text


async def test_command_menus_are_set_per_language_and_scope(harness):
    await harness.start_bot()
    commands = harness.emu.commands
    languages = {language for (_, language) in commands}
    scopes = {scope for (scope, _) in commands}
    assert {"", "zh", "en"} <= {lang or "" for lang in languages}
    assert {"all_private_chats", "all_group_chats", "all_chat_administrators"} <= scopes
    english = dict(commands[("all_private_chats", "en")])
    chinese = dict(commands[("all_private_chats", "zh")])
    assert english["me"] == t("en", "menu.me") and chinese["me"] == t("zh-Hans", "menu.me")
    assert "bind" in dict(commands[("all_chat_administrators", "en")])
    assert dict(commands[("all_private_chats", "")])["me"] == t("zh-Hans", "menu.me")  # default


async def test_the_menu_for_other_languages_follows_the_default_locale(harness):
    await harness.start_bot(default_locale="en")
    assert dict(harness.emu.commands[("all_private_chats", "")])["me"] == t("en", "menu.me")


async def test_lang_switches_a_person(harness):
    await harness.start_bot()
    user = harness.emu.add_user(first_name="Li", language_code="zh-hans")
    offer = (await harness.say(user, "/lang"))[0]
    assert [b.text for b in offer.buttons[0]] == list(LANGUAGE_LABELS.values())
    harness.emu.press(user, offer, "English")
    await harness.settle()
    assert (await harness.last(user.id)).text == shown("en", "lang.set",
                                                       language=LANGUAGE_LABELS["en"])
    assert shown("en", "start.greeting", name="Li") in (await harness.say(user, "/start"))[0].text


async def test_invite_link_grants_a_role_once(harness):
    admin = harness.emu.add_user(first_name="Admin", language_code="en")
    await harness.start_bot(superadmins=str(admin.id))
    await seed_map(harness.store)
    reply = (await harness.say(admin, "/invite grid_leader G0101"))[0]
    assert invited("role.grid_leader", "第一网格 (G0101)") in reply.text
    link = reply.text.split()[-1]
    assert link.startswith("https://t.me/gridhorn_bot?start=i-")
    payload = link.split("start=")[1]

    leader = harness.emu.add_user(first_name="Wang", language_code="en")
    answer = (await harness.say(leader, f"/start {payload}"))[0]
    assert granted("role.grid_leader", "第一网格 (G0101)") in answer.text
    me = (await harness.say(leader, "/me"))[0].text
    assert f"{t('en', 'role.grid_leader')} · 第一网格 (G0101)" in me

    # each /invite makes a new link, valid seven days
    again = (await harness.say(admin, "/invite grid_leader G0101"))[0].text.split("start=")[1]
    assert again != payload
    invite = await harness.store.people.invite(again[2:])
    lifetime = invite.expires_at - invite.created_at
    assert abs(lifetime.total_seconds() - 7 * 86400) < 60

    thief = harness.emu.add_user(first_name="Zhao", language_code="en")
    before = (await harness.say(thief, "/me"))[0].text
    used = (await harness.say(thief, f"/start {payload}"))[0]
    assert shown("en", "start.used_link") in used.text
    assert (await harness.say(thief, "/me"))[0].text == before


@pytest.mark.parametrize("mangle", [
    lambda p: p[:-1] + ("A" if p[-1] != "A" else "B"),   # altered
    lambda p: "i-" + "x" * 24,                           # forged
    lambda p: "j-" + p[2:],                              # wrong kind
    lambda p: p + "<b>&",                                # junk
])
async def test_forged_or_altered_payload_changes_nothing(harness, mangle):
    admin = harness.emu.add_user(first_name="Admin", language_code="en")
    await harness.start_bot(superadmins=str(admin.id))
    await seed_map(harness.store)
    invite = (await harness.say(admin, "/invite building_head B01010101"))[0]
    payload = invite.text.split("start=")[1]
    user = harness.emu.add_user(first_name="Sun", language_code="en")
    before = (await harness.say(user, "/me"))[0].text
    answer = (await harness.say(user, f"/start {mangle(payload)}"))[0]
    assert shown("en", "start.bad_link") in answer.text
    assert (await harness.say(user, "/me"))[0].text == before
    # the real link still works afterwards
    assert granted("role.building_head", "1栋 (B01010101)") in (
        await harness.say(user, f"/start {payload}"))[0].text


async def test_expired_invite_is_refused(harness):
    await harness.start_bot()
    await seed_map(harness.store)
    async with harness.store.transaction():
        await harness.store.people.create_invite(
            "expiredtoken_abcdefghij", "role", "volunteer", "B01010101", None,
            datetime.now(UTC) - timedelta(minutes=1))
    user = harness.emu.add_user(first_name="Qian", language_code="zh-hans")
    before = (await harness.say(user, "/me"))[0].text
    answer = (await harness.say(user, "/start i-expiredtoken_abcdefghij"))[0]
    assert shown("zh-Hans", "start.expired_link") in answer.text
    assert (await harness.say(user, "/me"))[0].text == before


async def test_invite_permissions_follow_the_table(harness):
    await harness.start_bot()
    await seed_map(harness.store)
    head = harness.emu.add_user(first_name="Head", language_code="en")
    worker = harness.emu.add_user(first_name="Worker", language_code="en")
    await grant(harness.store, head.id, "building_head", "B01010101")
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    # building head: volunteers and party members of their building only
    async def invite(user, role, code):
        return (await harness.say(user, f"/invite {role} {code}"))[0].text

    def refused(role, code):
        return shown("en", "invite.not_allowed", role=role, code=code)

    assert invited("role.volunteer", "1栋 (B01010101)") in await invite(head, "volunteer",
                                                                   "B01010101")
    assert invited("role.party_member", "1栋 (B01010101)") in await invite(head, "party_member",
                                                                      "B01010101")
    assert refused("volunteer", "B01010102") in await invite(head, "volunteer", "B01010102")
    assert refused("building_head", "B01010101") in await invite(head, "building_head",
                                                                 "B01010101")
    # grid worker: building heads in the grid, not grid workers, not another grid
    assert invited("role.building_head", "2栋 (B01010102)") in await invite(worker, "building_head",
                                                                       "B01010102")
    assert refused("grid_worker", "G0101") in await invite(worker, "grid_worker", "G0101")
    assert refused("building_head", "B01020101") in await invite(worker, "building_head",
                                                                 "B01020101")
    # only superadmins invite liaisons
    assert refused("department_liaison", "MZJ") in await invite(worker, "department_liaison",
                                                                "MZJ")
    # bad input
    assert shown("en", "invite.usage") in (await harness.say(worker, "/invite"))[0].text
    assert shown("en", "invite.usage") in (await harness.say(worker, "/invite a b c"))[0].text
    assert shown("en", "invite.unknown_role", roles="building_head, volunteer, party_member") \
        in await invite(worker, "mayor", "G0101")
    assert shown("en", "map.unknown_code", code="X9") in await invite(worker, "volunteer", "X9")


async def test_me_reads_the_same_for_the_same_standing(harness):
    await harness.start_bot()
    await seed_map(harness.store)
    first = harness.emu.add_user(first_name="Zhou", language_code="en")
    second = harness.emu.add_user(first_name="Wu", last_name="Long", language_code="en")
    for user in (first, second):
        await grant(harness.store, user.id, "volunteer", "G0101")
    assert (await harness.say(first, "/me"))[0].text == (await harness.say(second, "/me"))[0].text


async def test_help_lists_what_the_role_may_do(harness):
    await harness.start_bot()
    await seed_map(harness.store)
    resident = harness.emu.add_user(first_name="R", language_code="en")
    staff = harness.emu.add_user(first_name="S", language_code="en")
    await grant(harness.store, staff.id, "community_staff", "C01")
    plain = (await harness.say(resident, "/help"))[0].text
    full = (await harness.say(staff, "/help"))[0].text
    assert "/me" in plain and "/bind" not in plain and "/invite" not in plain
    assert "/bind" in full and "/invite" in full
    assert line_of("en", "help.invite", "roles", roles="grid_leader, grid_worker, "
                   "building_head, volunteer, party_member") in full
    # a building head: their own buttons and roles, service horns only
    head = harness.emu.add_user(first_name="H", language_code="en")
    await grant(harness.store, head.id, "building_head", "B01010101")
    text = (await harness.say(head, "/help"))[0].text
    assert card_buttons("en", "btn.acknowledge", "btn.urgency", "btn.escalate", "btn.resolve",
                        "btn.reject", "btn.merge", "btn.reply", "btn.post_building") in text
    assert line_of("en", "help.invite", "roles", roles="volunteer, party_member") in text
    assert shown("en", "help.horn_service") in text and "emergency" not in text
    # a department liaison: Accept and Decline, /bind for their department only
    liaison = harness.emu.add_user(first_name="L", language_code="zh-hans")
    await grant(harness.store, liaison.id, "department_liaison", "MZJ")
    text = (await harness.say(liaison, "/help"))[0].text
    assert card_buttons("zh-Hans", "btn.accept", "btn.decline", "btn.resolve") in text
    assert shown("zh-Hans", "help.bind_department") in text
    assert "/unbind" not in text and "/invite" not in text


async def test_unknown_command_and_cancel(harness):
    await harness.start_bot()
    user = harness.emu.add_user(first_name="U", language_code="zh-TW")
    assert shown("zh-Hant", "command.unknown", command="/frobnicate") in (
        await harness.say(user, "/frobnicate now"))[0].text
    assert shown("zh-Hant", "cancel.nothing") in (await harness.say(user, "/cancel"))[0].text


async def test_forged_callback_data_is_refused(harness):
    await harness.start_bot()
    user = harness.emu.add_user(first_name="U", language_code="en")
    offer = (await harness.say(user, "/lang"))[0]
    for data in ("lang:fr", "ticket:ack:999", "x" * 64):
        query = harness.emu.inject_callback(user, offer, data)
        answer = await query.wait_answered(timeout=5)
        assert answer.text == shown("en", "button.stale")
    await harness.settle()
    assert (await harness.say(user, "/start"))[0].text.startswith(
        shown("en", "start.greeting", name="U"))
