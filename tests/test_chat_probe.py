"""Chats bound through the map file (SPEC §2, §11), on a temporary store: learned once at
their first use through the runtime's probe and recorded as /bind records a chat; a chat
without the bot marked inactive and covering staff told once; Telegram unreachable asked
again later; the sender's first-use hook; a mapped forum's first card opening a topic."""

from __future__ import annotations

from bot.chatprobe import chat_info
from bot.hooks import ChatInfo
from bot.services.chats import ChatService, missing_rights
from bot.services.outbox import Outbox
from tests.support.services import ADMIN, STAFF, WORKER, build_services, queued, staffed_map
from tests.support.tickets import ticket_world

MAPPED = -1005


class Probe:
    """A stand-in for the runtime's probe: what Telegram would say, and every question."""

    def __init__(self, answer: ChatInfo | None | Exception) -> None:
        self.answer = answer
        self.asked: list[int] = []

    async def __call__(self, chat_id: int) -> ChatInfo | None:
        self.asked.append(chat_id)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def forum(chat_id: int = MAPPED, topics: bool = True) -> ChatInfo:
    return ChatInfo(chat_id=chat_id, type="supergroup", title="网格工作群", is_forum=True,
                    bot_is_admin=True, can_pin=True, can_manage_topics=topics)


async def mapped(store) -> None:
    """G0101 bound to a chat by the map file: a binding, and no chat row."""
    async with store.transaction():
        await store.map.bind("G0101", MAPPED, 0, None)


def chats_with(services, probe: Probe, clock=lambda: 0.0) -> ChatService:
    return ChatService(services.store, services.access, services.people, services.outbox,
                       probe=probe, clock=clock)


async def test_a_chat_known_to_nobody_is_learned_once_and_recorded_as_bind_records_it(store):
    await staffed_map(store)
    services = build_services(store)
    await mapped(store)
    probe = Probe(forum())
    chats = chats_with(services, probe)
    chat = await chats.known(MAPPED)
    assert chat is not None and chat.is_forum and chat.can_manage_topics and chat.active
    assert await chats.known(MAPPED) == chat
    assert probe.asked == [MAPPED]  # known now: not asked again
    assert await chats.known(WORKER) is None and probe.asked == [MAPPED]  # people: never


async def test_a_chat_without_the_bot_is_marked_and_covering_staff_told_once(store):
    await staffed_map(store)
    services = build_services(store)
    await mapped(store)
    chats = chats_with(services, Probe(None))
    chat = await chats.known(MAPPED)
    assert chat is not None and not chat.active
    told = {i.chat_id for i in await queued(store)}
    assert {WORKER, STAFF, ADMIN} <= told
    await chats.learn(MAPPED)  # asked again: already told
    assert {i.chat_id for i in await queued(store)} == told


async def test_telegram_unreachable_leaves_the_chat_unknown_and_asks_again_later(store):
    await staffed_map(store)
    services = build_services(store)
    await mapped(store)
    now = [0.0]
    probe = Probe(OSError("unreachable"))
    chats = chats_with(services, probe, clock=lambda: now[0])
    assert await chats.known(MAPPED) is None
    assert await chats.known(MAPPED) is None
    assert probe.asked == [MAPPED]  # not again within the minute
    now[0] = 61.0
    probe.answer = forum()
    assert (await chats.known(MAPPED)).is_forum
    assert probe.asked == [MAPPED, MAPPED]


async def test_the_sender_hook_learns_a_chat_before_its_first_item(store):
    await staffed_map(store)
    services = build_services(store)
    await mapped(store)
    probe = Probe(forum(topics=False))
    outbox = Outbox(store, services.settings)
    chats_with_outbox = ChatService(store, services.access, services.people, outbox,
                                    probe=probe)
    assert outbox.hooks.first_use
    for hook in outbox.hooks.first_use:
        await hook(MAPPED)
    assert probe.asked == [MAPPED]
    assert not (await chats_with_outbox.known(MAPPED)).can_manage_topics


async def test_the_first_card_of_a_mapped_forum_opens_a_topic(store):
    world = await ticket_world(store)
    async with store.transaction():
        await store.map.bind("G0101", MAPPED, 0, None)  # rebound through the map file
    probe = Probe(forum())
    services = build_services(store)
    learner = chats_with(services, probe)
    world.tickets.learn_chat = learner.known
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    topics = await world.pending(MAPPED, "createForumTopic")
    assert topics and topics[0].payload["name"].startswith(f"#{ticket.id} ")
    await world.deliver()
    assert (await store.tickets.get(ticket.id)).staff_thread_id


def test_what_telegram_answers_reads_as_bind_reads_it():
    chat = {"id": -1009, "type": "supergroup", "title": "网格", "is_forum": True}
    admin = {"status": "administrator", "can_pin_messages": True, "can_manage_topics": False}
    assert chat_info(chat, admin) == ChatInfo(
        chat_id=-1009, type="supergroup", title="网格", is_forum=True, bot_is_admin=True,
        can_pin=True, can_manage_topics=False)
    member = chat_info({"id": -5, "type": "group", "title": "楼"}, {"status": "member"})
    assert (member.is_forum, member.bot_is_admin, member.can_pin) == (False, False, False)
    assert missing_rights(chat_info(chat, admin)) == ("topics",)
    assert missing_rights(member) == ("admin", "pin")
