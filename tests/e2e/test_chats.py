"""Binding chats to the map, the bot added and removed, group migration."""

from __future__ import annotations

import pytest

from bot.i18n import join_list, t
from handlers.onboarding import LANGUAGE_LABELS
from tests.support.harness import grant, seed_map
from tests.support.texts import line_of, shown

pytestmark = pytest.mark.asyncio


async def _staffed(harness, **settings):
    await harness.start_bot(**settings)
    await seed_map(harness.store)
    staff = harness.emu.add_user(first_name="Staff", language_code="en")
    head = harness.emu.add_user(first_name="Head", language_code="zh-hans")
    await grant(harness.store, staff.id, "community_staff", "C01")
    await grant(harness.store, head.id, "building_head", "B01010101")
    return staff, head


async def test_bot_greets_when_added_and_bind_links_the_chat(harness):
    staff, head = await _staffed(harness)
    group = harness.emu.add_group(title="1栋楼事群", members=[staff, head])
    await harness.emu.add_bot_to_group(group, by=staff, admin=True, can_pin=True)
    await harness.settle()
    assert (await harness.last(group.id)).text == shown("en", "chat.greeting")
    assert "/bind" in (await harness.last(group.id)).text

    answer = (await harness.say(head, "/bind B01010101", chat=group))[0]
    assert answer.text == shown("zh-Hans", "bind.done", unit="1栋 (B01010101)")
    binding = await harness.store.map.binding("B01010101")
    assert binding is not None and binding.chat_id == group.id and binding.thread_id == 0


async def test_bind_outside_scope_is_refused_and_changes_nothing(harness):
    staff, head = await _staffed(harness)
    group = harness.emu.add_group(title="3栋", members=[head])
    await harness.emu.add_bot_to_group(group, by=head, admin=True, can_pin=True)
    answer = (await harness.say(head, "/bind B01020101", chat=group))[-1]
    assert shown("zh-Hans", "bind.not_allowed", code="B01020101") in answer.text
    assert await harness.store.map.binding("B01020101") is None
    outsider = harness.emu.add_user(first_name="Nobody", language_code="en")
    answer = (await harness.say(outsider, "/bind C01", chat=group))[-1]
    assert shown("en", "bind.not_allowed", code="C01") in answer.text
    assert await harness.store.map.binding("C01") is None


async def test_bind_cannot_take_over_a_chat_linked_to_a_unit_outside_ones_scope(harness):
    staff, head = await _staffed(harness)
    other_head = harness.emu.add_user(first_name="Other", language_code="en")
    await grant(harness.store, other_head.id, "building_head", "B01010102")
    group = harness.emu.add_group(title="1栋楼事群", members=[staff, head, other_head])
    await harness.emu.add_bot_to_group(group, by=head, admin=True, can_pin=True)
    await harness.say(head, "/bind B01010101", chat=group)
    answer = (await harness.say(other_head, "/bind B01010102", chat=group))[-1]
    assert answer.text == shown("en", "bind.taken", code="B01010101")
    assert (await harness.store.map.binding("B01010101")).chat_id == group.id
    assert await harness.store.map.binding("B01010102") is None
    # staff over both may move the chat to another unit, and are told what it replaced
    answer = (await harness.say(staff, "/bind B01010102", chat=group))[-1]
    assert shown("en", "bind.replaced", unit="1栋 (B01010101)") in answer.text
    assert await harness.store.map.binding("B01010101") is None
    assert (await harness.store.map.binding("B01010102")).chat_id == group.id


async def test_a_liaison_binds_the_department_chat_but_may_not_unbind_it(harness):
    staff, head = await _staffed(harness)
    liaison = harness.emu.add_user(first_name="Liaison", language_code="en")
    await grant(harness.store, liaison.id, "department_liaison", "MZJ")
    group = harness.emu.add_group(title="民政局", members=[liaison])
    await harness.emu.add_bot_to_group(group, by=liaison, admin=True, can_pin=True)
    assert shown("en", "bind.done", unit="县民政局 (MZJ)") in (
        await harness.say(liaison, "/bind MZJ", chat=group))[-1].text
    answer = (await harness.say(liaison, "/unbind", chat=group))[-1]
    assert shown("en", "bind.not_allowed", code="MZJ") in answer.text
    assert (await harness.store.map.binding("MZJ")).chat_id == group.id


async def test_lang_in_a_group_is_for_its_staff(harness):
    staff, head = await _staffed(harness)
    resident = harness.emu.add_user(first_name="Res", language_code="en")
    group = harness.emu.add_group(title="1栋楼事群", members=[head, resident])
    await harness.emu.add_bot_to_group(group, by=head, admin=True, can_pin=True)
    await harness.say(head, "/bind B01010101", chat=group)
    offer = (await harness.say(resident, "/lang", chat=group))[-1]
    answer = await harness.press(resident, offer, "English")
    assert answer.text in (shown("en", "lang.group_not_allowed"),
                           shown("zh-Hans", "lang.group_not_allowed"))
    assert (await harness.store.map.chat(group.id)).locale in (None, "")
    offer = (await harness.say(head, "/lang", chat=group))[-1]
    await harness.press(head, offer, "English")
    assert (await harness.store.map.chat(group.id)).locale == "en"


async def test_bind_bad_input(harness):
    staff, _ = await _staffed(harness)
    group = harness.emu.add_group(title="g", members=[staff])
    await harness.emu.add_bot_to_group(group, by=staff, admin=True, can_pin=True)
    usage = shown("en", "bind.usage")
    assert usage in (await harness.say(staff, "/bind", chat=group))[-1].text
    assert usage in (await harness.say(staff, "/bind a b", chat=group))[-1].text
    assert shown("en", "map.unknown_code", code="NOPE") in (
        await harness.say(staff, "/bind NOPE", chat=group))[-1].text
    assert shown("en", "bind.private") in (await harness.say(staff, "/bind C01"))[-1].text


async def test_bind_says_which_rights_are_missing(harness):
    staff, _ = await _staffed(harness)
    group = harness.emu.add_group(title="网格工作群", members=[staff], forum=True)
    await harness.emu.add_bot_to_group(group, by=staff, admin=False)
    text = (await harness.say(staff, "/bind G0101", chat=group))[-1].text
    rights = join_list("en", (t("en", key) for key in (
        "bind.right.admin", "bind.right.pin", "bind.right.topics")))
    assert shown("en", "bind.missing_rights", rights=rights) in text


async def test_bind_in_a_forum_topic_makes_it_the_announcement_thread(harness):
    staff, _ = await _staffed(harness)
    group = harness.emu.add_group(title="社区工作群", members=[staff], forum=True)
    await harness.emu.add_bot_to_group(group, by=staff, admin=True, can_pin=True,
                                       can_manage_topics=True)
    topic = harness.emu.create_topic(group, name="通知", by=staff)
    answer = (await harness.say(staff, "/bind C01", chat=group, thread_id=topic))[-1]
    assert answer.thread_id == topic
    assert shown("en", "bind.done_topic", unit="欣山社区 (C01)") in answer.text
    binding = await harness.store.map.binding("C01")
    assert binding.chat_id == group.id and binding.thread_id == topic
    # outside a topic (General), the whole chat is bound
    answer = (await harness.say(staff, "/bind G0101", chat=group))[-1]
    assert (await harness.store.map.binding("G0101")).thread_id == 0


async def test_unbind_and_joinlink(harness):
    staff, head = await _staffed(harness)
    group = harness.emu.add_group(title="1栋", members=[staff, head])
    await harness.emu.add_bot_to_group(group, by=staff, admin=True, can_pin=True)
    assert shown("zh-Hans", "joinlink.not_building") in (
        await harness.say(head, "/joinlink", chat=group))[-1].text
    await harness.say(head, "/bind B01010101", chat=group)
    post = (await harness.say(head, "/joinlink", chat=group))[-1]
    link = post.text.split()[-1]
    assert link.startswith("https://t.me/gridhorn_bot?start=j-")
    assert post.text == shown("zh-Hans", "joinlink.post", building="1栋 (B01010101)", link=link)
    # the same link each time (a standing building link)
    assert (await harness.say(staff, "/joinlink", chat=group))[-1].text.split()[-1] == link

    resident = harness.emu.add_user(first_name="Resident", language_code="en")
    joined = (await harness.say(resident, f"/start {link.split('start=')[1]}"))[0]
    assert shown("en", "start.joined", building="1栋 (B01010101)") in joined.text
    assert line_of("en", "me.profile", "building", building="1栋 (B01010101)") in (
        await harness.say(resident, "/me"))[0].text
    # residents may not unbind
    assert shown("en", "bind.not_allowed", code="B01010101") in (
        await harness.say(resident, "/unbind", chat=group))[-1].text
    assert shown("zh-Hans", "unbind.done", unit="1栋 (B01010101)") in (
        await harness.say(head, "/unbind", chat=group))[-1].text
    assert await harness.store.map.binding("B01010101") is None


async def test_removed_chat_is_marked_inactive_and_staff_are_told(harness):
    admin = harness.emu.add_user(first_name="Admin", language_code="en")
    staff, head = await _staffed(harness, superadmins=str(admin.id))
    for user in (staff, head, admin):
        await harness.say(user, "/start")
    group = harness.emu.add_group(title="1栋楼事群", members=[staff, head])
    await harness.emu.add_bot_to_group(group, by=staff, admin=True, can_pin=True)
    await harness.say(head, "/bind B01010101", chat=group)
    await harness.emu.remove_bot(group, by=staff)
    await harness.settle()
    chat = await harness.store.map.chat(group.id)
    assert chat is not None and not chat.active
    for user, locale in ((staff, "en"), (admin, "en"), (head, "zh-Hans")):
        assert shown(locale, "chat.removed", chat="1栋楼事群", unit="1栋", code="B01010101") \
            in (await harness.last(user.id)).text


async def test_group_migration_moves_the_binding(harness):
    staff, head = await _staffed(harness)
    group = harness.emu.add_group(title="2栋", supergroup=False, members=[staff])
    await harness.emu.add_bot_to_group(group, by=staff, admin=True, can_pin=True)
    await harness.say(staff, "/bind B01010102", chat=group)
    new_id = await harness.emu.migrate_to_supergroup(group)
    await harness.settle()
    binding = await harness.store.map.binding("B01010102")
    assert binding.chat_id == new_id


async def test_group_language_is_set_by_its_staff(harness):
    staff, head = await _staffed(harness)
    group = harness.emu.add_group(title="1栋", members=[staff, head])
    await harness.emu.add_bot_to_group(group, by=staff, admin=True, can_pin=True)
    await harness.say(head, "/bind B01010101", chat=group)
    offer = (await harness.say(head, "/lang", chat=group))[-1]
    harness.emu.press(head, offer, "English")
    await harness.settle()
    assert (await harness.last(group.id)).text == shown("en", "lang.set",
                                                        language=LANGUAGE_LABELS["en"])
    # the chinese-speaking head now gets English answers in the group
    assert shown("en", "command.unknown", command="/nosuch") in (
        await harness.say(head, "/nosuch@gridhorn_bot", chat=group))[-1].text
