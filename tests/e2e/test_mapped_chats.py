"""Chats bound through the map file work like chats bound with /bind (SPEC §2, §11): learned
at their first use (getChat, getChatMember), a forum giving each ticket its topic, a chat
without the bot marked and its staff told, a change Telegram reports recorded."""

from __future__ import annotations

import pytest

from tests.support.county import card_head, import_county, submit
from tests.support.harness import grant
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio


async def test_a_forum_bound_through_the_map_file_gets_each_ticket_its_own_topic(harness):
    emu = harness.emu
    resident = emu.add_user(first_name="李", language_code="zh-hans")
    worker = emu.add_user(first_name="Worker", language_code="en")
    forum = emu.add_group("第一网格工作群", forum=True, members=[worker])
    await emu.add_bot_to_group(forum, by=worker, admin=True, can_pin=True,
                               can_manage_topics=True)
    emu.drop_pending_updates()  # the bot was added long ago: it never heard of this chat
    await harness.start_bot()
    await import_county(harness, forum.id)
    async with harness.store.transaction():
        await harness.store.people.ensure(resident.id)
        await harness.store.people.set_building(resident.id, "B01010101")
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    assert await harness.store.map.chat(forum.id) is None  # bound, and nothing known of it
    await harness.say(resident, "/start")

    await submit(harness, resident, "垃圾桶满了", domain="green")
    known = await harness.store.map.chat(forum.id)
    assert known is not None and known.is_forum and known.can_manage_topics and known.active
    ticket = await harness.store.tickets.get(1)
    assert ticket.staff_thread_id
    topic = emu.chat(forum.id).topics[ticket.staff_thread_id]
    assert topic.name == "#1 🟢 垃圾桶满了" and topic.created_by_bot
    card = next(m for m in emu.messages(forum.id) if m.text.startswith(card_head(1, "zh-Hans")))
    assert card.thread_id == ticket.staff_thread_id
    asked = [r.method for r in emu.requests if r.chat_id == forum.id]
    assert asked.index("getChat") < asked.index("createForumTopic")

    # Telegram says the chat changed (the bot lost its topic rights): recorded at once, and
    # the next ticket's card is a plain message
    emu.set_bot_rights(forum, admin=True, can_manage_topics=False, by=worker)
    await harness.settle()
    assert not (await harness.store.map.chat(forum.id)).can_manage_topics
    await submit(harness, resident, "路灯坏了")
    assert (await harness.store.tickets.get(2)).staff_thread_id is None
    assert any(m.text.startswith(card_head(2, "zh-Hans")) and not m.thread_id
               for m in emu.messages(forum.id))


async def test_a_chat_the_map_binds_without_the_bot_is_marked_and_staff_are_told(harness):
    emu = harness.emu
    resident = emu.add_user(first_name="李", language_code="zh-hans")
    worker = emu.add_user(first_name="Worker", language_code="en")
    empty = emu.add_group("第一网格工作群", members=[worker])  # the bot was never added
    await harness.start_bot()
    await import_county(harness, empty.id)
    async with harness.store.transaction():
        await harness.store.people.ensure(resident.id)
        await harness.store.people.set_building(resident.id, "B01010101")
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    await harness.say(worker, "/start")
    await harness.say(resident, "/start")
    await submit(harness, resident, "楼道灯坏了")
    chat = await harness.store.map.chat(empty.id)
    assert chat is not None and not chat.active
    told = shown("en", "chat.bot_missing", unit="第一网格", code="G0101", chat=str(empty.id))
    assert told in harness.texts(worker.id)
    assert not [r for r in emu.requests if r.chat_id == empty.id and r.method == "sendMessage"]
    # the ticket is not stuck: the worker has it privately
    cards = await harness.say(worker, "/tickets")
    assert cards[1].text.startswith(card_head(1)) and cards[1].buttons
