"""People, invites, languages and menus, end to end through the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.harness import grant, seed_map

pytestmark = pytest.mark.asyncio


async def test_start_greets_in_each_language(harness):
    await harness.start_bot()
    hans = harness.emu.add_user(first_name="李", language_code="zh-hans")
    hant = harness.emu.add_user(first_name="陳", language_code="zh-TW")
    english = harness.emu.add_user(first_name="Ann", language_code="en-GB")
    other = harness.emu.add_user(first_name="Ivan", language_code="ru")
    assert "网格集结号" in (await harness.say(hans, "/start"))[0].text
    assert "網格集結號" in (await harness.say(hant, "/start"))[0].text
    assert "I am Gridhorn" in (await harness.say(english, "/start"))[0].text
    assert "网格集结号" in (await harness.say(other, "/start"))[0].text


async def test_command_menus_are_set_per_language_and_scope(harness):
    await harness.start_bot()
    commands = harness.emu.commands
    languages = {language for (_, language) in commands}
    scopes = {scope for (scope, _) in commands}
    assert {"", "zh", "en"} <= {lang or "" for lang in languages}
    assert {"all_private_chats", "all_group_chats", "all_chat_administrators"} <= scopes
    english = dict(commands[("all_private_chats", "en")])
    chinese = dict(commands[("all_private_chats", "zh")])
    assert english["me"] == "About me" and chinese["me"] == "我的信息"
    assert "bind" in dict(commands[("all_chat_administrators", "en")])
    assert dict(commands[("all_private_chats", "")])["me"] == "我的信息"  # the default


async def test_the_menu_for_other_languages_follows_the_default_locale(harness):
    await harness.start_bot(default_locale="en")
    assert dict(harness.emu.commands[("all_private_chats", "")])["me"] == "About me"


async def test_lang_switches_a_person(harness):
    await harness.start_bot()
    user = harness.emu.add_user(first_name="Li", language_code="zh-hans")
    offer = (await harness.say(user, "/lang"))[0]
    assert [b.text for b in offer.buttons[0]] == ["简体中文", "繁體中文", "English"]
    harness.emu.press(user, offer, "English")
    await harness.settle()
    assert (await harness.last(user.id)).text == "Language set to English."
    assert "Send /help" in (await harness.say(user, "/start"))[0].text


async def test_invite_link_grants_a_role_once(harness):
    admin = harness.emu.add_user(first_name="Admin", language_code="en")
    await harness.start_bot(superadmins=str(admin.id))
    await seed_map(harness.store)
    reply = (await harness.say(admin, "/invite grid_leader G0101"))[0]
    assert "One-time invite for grid leader · 第一网格 (G0101)" in reply.text
    link = reply.text.split()[-1]
    assert link.startswith("https://t.me/gridhorn_bot?start=i-")
    payload = link.split("start=")[1]

    leader = harness.emu.add_user(first_name="Wang", language_code="en")
    answer = (await harness.say(leader, f"/start {payload}"))[0]
    assert "You are now grid leader for 第一网格 (G0101)" in answer.text
    me = (await harness.say(leader, "/me"))[0].text
    assert "grid leader · 第一网格 (G0101)" in me

    # each /invite makes a new link, valid seven days
    again = (await harness.say(admin, "/invite grid_leader G0101"))[0].text.split("start=")[1]
    assert again != payload
    invite = await harness.store.people.invite(again[2:])
    lifetime = invite.expires_at - invite.created_at
    assert abs(lifetime.total_seconds() - 7 * 86400) < 60

    thief = harness.emu.add_user(first_name="Zhao", language_code="en")
    before = (await harness.say(thief, "/me"))[0].text
    used = (await harness.say(thief, f"/start {payload}"))[0]
    assert "already been used" in used.text
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
    payload = (await harness.say(admin, "/invite building_head B01010101"))[0].text.split("start=")[1]
    user = harness.emu.add_user(first_name="Sun", language_code="en")
    before = (await harness.say(user, "/me"))[0].text
    answer = (await harness.say(user, f"/start {mangle(payload)}"))[0]
    assert "not valid" in answer.text
    assert (await harness.say(user, "/me"))[0].text == before
    # the real link still works afterwards
    assert "building head" in (await harness.say(user, f"/start {payload}"))[0].text


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
    assert "已过期" in answer.text
    assert (await harness.say(user, "/me"))[0].text == before


async def test_invite_permissions_follow_the_table(harness):
    await harness.start_bot()
    await seed_map(harness.store)
    head = harness.emu.add_user(first_name="Head", language_code="en")
    worker = harness.emu.add_user(first_name="Worker", language_code="en")
    await grant(harness.store, head.id, "building_head", "B01010101")
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    # building head: volunteers and party members of their building only
    assert "One-time invite" in (await harness.say(head, "/invite volunteer B01010101"))[0].text
    assert "One-time invite" in (await harness.say(head, "/invite party_member B01010101"))[0].text
    assert "cannot invite" in (await harness.say(head, "/invite volunteer B01010102"))[0].text
    assert "cannot invite" in (await harness.say(head, "/invite building_head B01010101"))[0].text
    # grid worker: building heads in the grid, not grid workers, not another grid
    assert "One-time invite" in (await harness.say(worker, "/invite building_head B01010102"))[0].text
    assert "cannot invite" in (await harness.say(worker, "/invite grid_worker G0101"))[0].text
    assert "cannot invite" in (await harness.say(worker, "/invite building_head B01020101"))[0].text
    # only superadmins invite liaisons
    assert "cannot invite" in (await harness.say(worker, "/invite department_liaison MZJ"))[0].text
    # bad input
    assert "Usage: /invite ROLE CODE" in (await harness.say(worker, "/invite"))[0].text
    assert "Usage: /invite ROLE CODE" in (await harness.say(worker, "/invite a b c"))[0].text
    assert "Unknown role" in (await harness.say(worker, "/invite mayor G0101"))[0].text
    assert "no unit with code X9" in (await harness.say(worker, "/invite volunteer X9"))[0].text


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
    assert "Roles you can invite: grid_leader, grid_worker, building_head, volunteer, " \
        "party_member" in full
    # a building head: their own buttons and roles, service horns only
    head = harness.emu.add_user(first_name="H", language_code="en")
    await grant(harness.store, head.id, "building_head", "B01010101")
    text = (await harness.say(head, "/help"))[0].text
    assert "Your buttons on ticket cards: ✅ Acknowledge, ⏱ Urgency, ⬆️ Escalate to grid, " \
        "🏁 Resolve, 🚫 Reject, 🔗 Merge, 💬 Reply, 🏠 Post to building" in text
    assert "Roles you can invite: volunteer, party_member" in text
    assert "/horn service BUILDING_CODE" in text and "emergency" not in text
    # a department liaison: Accept and Decline, /bind for their department only
    liaison = harness.emu.add_user(first_name="L", language_code="zh-hans")
    await grant(harness.store, liaison.id, "department_liaison", "MZJ")
    text = (await harness.say(liaison, "/help"))[0].text
    assert "您在工单卡片上的按钮：✋ 报到、↩️ 退回、🏁 办结" in text
    assert "/bind 部门编码" in text and "/unbind" not in text and "/invite" not in text


async def test_unknown_command_and_cancel(harness):
    await harness.start_bot()
    user = harness.emu.add_user(first_name="U", language_code="zh-TW")
    assert "沒有 /frobnicate 這個命令" in (await harness.say(user, "/frobnicate now"))[0].text
    assert "目前沒有進行中的操作" in (await harness.say(user, "/cancel"))[0].text


async def test_forged_callback_data_is_refused(harness):
    await harness.start_bot()
    user = harness.emu.add_user(first_name="U", language_code="en")
    offer = (await harness.say(user, "/lang"))[0]
    for data in ("lang:fr", "ticket:ack:999", "x" * 64):
        query = harness.emu.inject_callback(user, offer, data)
        answer = await query.wait_answered(timeout=5)
        assert answer.text == "This button is no longer valid. Please start again."
    await harness.settle()
    assert (await harness.say(user, "/start"))[0].text.startswith("Hello")
