"""Chats and bindings (SPEC §2) on a temporary store: who may bind and unbind what, forum
topics, the rights the bot lacks, join links, a group's language, the bot removed or the
group migrated."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.services.chats import ChatInfo
from bot.services.outbox import Priority
from tests.support.harness import grant
from tests.support.services import (
    ADMIN,
    HEAD,
    LEADER,
    LIAISON,
    OTHER_HEAD,
    RESIDENT,
    STAFF,
    VOLUNTEER,
    WORKER,
    bind,
    build_services,
    queued,
    refused,
    set_locale,
    staffed_map,
)

GROUP = -1001
FORUM = -1002


def group(chat_id: int = GROUP, *, forum: bool = False, admin: bool = True, pin: bool = True,
          topics: bool = True) -> ChatInfo:
    return ChatInfo(chat_id=chat_id, type="supergroup", title="1栋楼事群", is_forum=forum,
                    bot_is_admin=admin, can_pin=pin, can_manage_topics=topics)


@pytest.fixture
async def services(store):
    await staffed_map(store)
    return build_services(store)


async def bind_as(services, user_id, code, info=None, thread_id=0):
    return await services.chats.bind(await services.actor(user_id), info or group(), thread_id,
                                     code)


@pytest.mark.parametrize("user_id, code", [
    (HEAD, "B01010101"), (WORKER, "B01010102"), (LEADER, "E010101"), (STAFF, "G0102"),
    (STAFF, "C01"), (LIAISON, "MZJ"), (ADMIN, "CGJ"), (ADMIN, "C01"),
])
async def test_bind_links_a_unit_in_ones_scope(services, user_id, code):
    bound = await bind_as(services, user_id, code)
    assert (bound.unit.code, bound.thread_id, bound.missing_rights, bound.replaced) == (
        code, 0, (), None)
    binding = await services.store.map.binding(code)
    assert (binding.chat_id, binding.thread_id) == (GROUP, 0)
    chat = await services.store.map.chat(GROUP)
    assert chat.active and chat.title == "1栋楼事群" and chat.can_pin


async def test_bind_records_the_chat_and_its_binding_in_one_transaction(services,
                                                                         monkeypatch):
    """A /bind is one state change: if the binding cannot be written, the chat is not
    recorded either (its transaction would otherwise mark the update done, and a replay
    after a crash between the two would never bind)."""
    async def broken(*_: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(services.store.map, "bind", broken)
    with pytest.raises(RuntimeError):
        await bind_as(services, HEAD, "B01010101")
    assert await services.store.map.chat(GROUP) is None


@pytest.mark.parametrize("user_id, code", [
    (HEAD, "B01010102"),          # another building
    (HEAD, "G0101"),              # above their building
    (WORKER, "B01020101"),        # another grid
    (WORKER, "MZJ"),              # departments: their liaison or a superadmin
    (STAFF, "MZJ"),
    (LIAISON, "CGJ"),             # another department
    (LIAISON, "B01010101"),
    (VOLUNTEER, "B01010101"),
    (RESIDENT, "B01010101"),
])
async def test_bind_outside_ones_scope_is_refused_and_changes_nothing(services, user_id, code):
    refusal = await refused(services.store, bind_as(services, user_id, code), "bind.not_allowed")
    assert refusal.values == {"code": code}


async def test_bind_refuses_a_private_chat_and_an_unknown_code(services):
    private = ChatInfo(chat_id=STAFF, type="private", title=None)
    await refused(services.store, bind_as(services, STAFF, "C01", private), "bind.private")
    refusal = await refused(services.store, bind_as(services, STAFF, "NOPE"), "map.unknown_code")
    assert refusal.values == {"code": "NOPE"}


async def test_bind_says_which_rights_are_missing(services):
    bound = await bind_as(services, STAFF, "G0101", group(forum=True, admin=False, pin=False,
                                                          topics=False))
    assert bound.missing_rights == ("admin", "pin", "topics")
    # topics matter only in a forum
    bound = await bind_as(services, STAFF, "G0102", group(-5, admin=True, pin=False,
                                                          topics=False))
    assert bound.missing_rights == ("pin",)


async def test_bind_in_a_forum_topic_makes_it_the_announcement_thread(services):
    bound = await bind_as(services, STAFF, "C01", group(FORUM, forum=True), thread_id=7)
    assert bound.thread_id == 7
    assert (await services.store.map.binding("C01")).thread_id == 7
    # another topic of the same forum may hold another unit; outside a topic, the whole chat
    await bind_as(services, STAFF, "G0101", group(FORUM, forum=True), thread_id=0)
    assert (await services.store.map.binding("G0101")).thread_id == 0
    assert (await services.store.map.binding("C01")).thread_id == 7
    # a thread in a chat that is no forum is not a topic
    bound = await bind_as(services, STAFF, "G0102", group(), thread_id=9)
    assert bound.thread_id == 0


async def test_bind_cannot_take_a_chat_linked_to_a_unit_outside_ones_scope(services):
    await bind_as(services, HEAD, "B01010101")
    await grant(services.store, 20, "building_head", "B01010102")
    refusal = await refused(services.store, bind_as(services, 20, "B01010102"), "bind.taken")
    assert refusal.values == {"code": "B01010101"}
    # staff over both may move the chat, and learn what it replaced
    bound = await bind_as(services, WORKER, "B01010102")
    assert bound.replaced.code == "B01010101"
    assert await services.store.map.binding("B01010101") is None
    assert (await services.store.map.binding("B01010102")).chat_id == GROUP


async def test_a_chat_binds_one_unit_at_most(services):
    await bind_as(services, STAFF, "B01010101")
    await bind_as(services, STAFF, "B01010102")
    assert await services.store.map.binding("B01010101") is None
    assert [b.unit_code for b in await services.store.map.bindings_in_chat(GROUP)] == [
        "B01010102"]


async def test_unbind_is_for_staff_over_the_unit(services):
    await bind_as(services, HEAD, "B01010101")
    for user_id in (RESIDENT, VOLUNTEER, OTHER_HEAD, LIAISON):
        await refused(services.store, services.chats.unbind(await services.actor(user_id),
                                                            GROUP, 0), "bind.not_allowed")
    unit = await services.chats.unbind(await services.actor(HEAD), GROUP, 0)
    assert unit.code == "B01010101"
    assert await services.store.map.binding("B01010101") is None
    await refused(services.store, services.chats.unbind(await services.actor(HEAD), GROUP, 0),
                  "unbind.not_bound")


async def test_a_liaison_binds_the_department_chat_but_may_not_unbind_it(services):
    await bind_as(services, LIAISON, "MZJ")
    await refused(services.store, services.chats.unbind(await services.actor(LIAISON), GROUP, 0),
                  "bind.not_allowed")
    assert (await services.store.map.binding("MZJ")).chat_id == GROUP
    await services.chats.unbind(await services.actor(ADMIN), GROUP, 0)
    assert await services.store.map.binding("MZJ") is None


async def test_joinlink_needs_a_bound_building_and_staff_over_it(services):
    await refused(services.store, services.chats.join_link_unit(await services.actor(HEAD),
                                                                GROUP), "joinlink.not_building")
    await bind_as(services, STAFF, "G0101")
    await refused(services.store, services.chats.join_link_unit(await services.actor(STAFF),
                                                                GROUP), "joinlink.not_building")
    await bind_as(services, HEAD, "B01010101", group(-7))
    await refused(services.store, services.chats.join_link_unit(await services.actor(RESIDENT),
                                                                -7), "bind.not_allowed")
    building, payload = await services.chats.join_link_unit(await services.actor(HEAD), -7)
    assert building.code == "B01010101"
    assert payload == await services.people.join_payload("B01010101")
    assert (await services.chats.join_link_unit(await services.actor(STAFF), -7))[1] == payload


async def test_a_groups_language_is_set_by_its_staff(services):
    await bind_as(services, HEAD, "B01010101")
    for user_id in (RESIDENT, OTHER_HEAD, LIAISON):
        await refused(services.store, services.chats.set_chat_locale(
            await services.actor(user_id), GROUP, "en"), "lang.group_not_allowed")
    await services.chats.set_chat_locale(await services.actor(HEAD), GROUP, "en")
    assert (await services.store.map.chat(GROUP)).locale == "en"
    assert await services.chats.locale_of_chat(GROUP, "zh-Hans") == "en"
    # what the bot learns of the chat later keeps its language
    await services.chats.seen(group())
    assert (await services.store.map.chat(GROUP)).locale == "en"


async def test_removal_marks_the_chat_inactive_and_tells_everyone_over_the_unit(services):
    store = services.store
    await bind_as(services, HEAD, "B01010101")
    await set_locale(store, STAFF, "en")
    await set_locale(store, WORKER, "zh-Hant")
    async with store.transaction():
        await services.outbox.send(GROUP, "a post waiting", priority=Priority.ROUTINE)
    await services.chats.bot_removed(GROUP, "1栋楼事群")
    assert not (await store.map.chat(GROUP)).active
    told = {i.chat_id: i.payload["text"] for i in await queued(store)}
    # the unit's staff (building head, grid, community) and the superadmins; no post waits
    assert sorted(told) == sorted([HEAD, WORKER, LEADER, STAFF, ADMIN])
    for user_id, locale in ((HEAD, "zh-Hans"), (WORKER, "zh-Hant"), (STAFF, "en"),
                            (ADMIN, "zh-Hans")):
        assert told[user_id] == t(locale, "chat.removed", unit="1栋", code="B01010101",
                                  chat="1栋楼事群")
    assert all(i.priority == Priority.PERSONAL for i in await queued(store))
    # told once: a second notice of the same removal says nothing more
    await services.chats.bot_removed(GROUP, "1栋楼事群")
    assert len(await queued(store)) == 5


async def test_a_403_blocks_a_person_or_removes_a_group(services):
    await bind(services.store, "G0101", GROUP)
    await services.chats.chat_lost(RESIDENT, "blocked")
    assert (await services.store.people.get(RESIDENT)).blocked
    await services.chats.chat_lost(GROUP, "kicked")
    assert not (await services.store.map.chat(GROUP)).active
    assert {i.chat_id for i in await queued(services.store)} == {WORKER, LEADER, STAFF, ADMIN}


async def test_migration_moves_the_binding(services):
    await bind_as(services, STAFF, "B01010102", group(-9))
    await services.chats.migrated(-9, -1009)
    assert (await services.store.map.binding("B01010102")).chat_id == -1009
    assert [u.code for u in await services.chats.bound_units(-1009)] == ["B01010102"]
    assert await services.chats.bound_units(-9) == []
