"""Deadlines (SPEC §4): a reminder at 75 % of a deadline, escalation when it passes, each once
(a restart included), and the overdue notices threaded under the ticket's card or topic."""

from __future__ import annotations

from bot.i18n import t
from storage.models import DueKind, TicketLevel, TicketStatus
from tests.support.tickets import (
    COMMUNITY_CHAT,
    GRID_CHAT,
    HEAD,
    RESIDENT,
    WORKER,
    TicketWorld,
    ticket_world,
)

DEADLINES = "100s,200s,400s"  # acknowledge, accept, resolve


async def _submitted(world: TicketWorld):
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    await world.deliver()
    return ticket


def _opening(world: TicketWorld, key: str) -> str:
    return t(world.tickets.settings.default_locale, key).split("{")[0]


async def test_the_reminder_comes_at_75_percent_once_across_a_restart(store):
    world = await ticket_world(store, deadlines_routine=DEADLINES)
    ticket = await _submitted(world)
    assert ticket.remind_at == ticket.due_from + 75
    assert await world.tickets.next_due() == ticket.remind_at
    world.clock.now = ticket.remind_at - 1
    assert await world.tickets.run_due() == 0
    world.clock.now = ticket.remind_at
    assert await world.tickets.run_due() == 1
    reminders = await world.texts(HEAD)
    assert len(reminders) == 1 and reminders[0].startswith(_opening(world, "remind.deadline"))
    await world.deliver()
    again = world.restarted()
    assert await again.tickets.run_due() == 0
    assert await world.pending() == []
    assert await again.tickets.next_due() == ticket.due_at


async def test_a_missed_acknowledgement_moves_the_ticket_to_the_grid_once(store):
    world = await ticket_world(store, deadlines_routine=DEADLINES)
    ticket = await _submitted(world)
    world.clock.now = ticket.due_at
    assert await world.tickets.run_due() == 1
    moved = await store.tickets.get(ticket.id)
    assert (moved.level, moved.status, moved.due_kind) == \
        (TicketLevel.GRID, TicketStatus.ESCALATED, DueKind.RESOLVE)
    assert moved.due_at == ticket.created_at + 400  # the grid owes the resolve deadline
    assert (await store.tickets.events(ticket.id))[-1].kind == "overdue"
    assert [x for x in await world.texts(RESIDENT)
            if x.startswith(_opening(world, "notice.overdue"))]
    await world.deliver()
    again = world.restarted()
    assert await again.tickets.run_due() == 0
    assert await world.pending() == []
    # the grid is reminded at 75 % of its own deadline, then the community takes it
    world.clock.now = moved.remind_at
    assert await again.tickets.run_due() == 1
    assert await world.texts(WORKER)
    world.clock.now = moved.due_at
    assert await again.tickets.run_due() == 1
    assert (await store.tickets.get(ticket.id)).level == TicketLevel.COMMUNITY
    community = await world.pending(COMMUNITY_CHAT, "sendMessage")
    overdue = _opening(world, "staff.overdue")
    assert community[0].payload["text"].startswith(overdue)
    assert community[1].ref == f"tcard:{ticket.id}:staff"  # its first card, right after


async def test_the_overdue_notices_are_threaded_under_the_tickets_cards(store):
    """The grid's notice replies to its staff card; each building head's, sent privately,
    replies to that head's card of the ticket, as every staff notice of a ticket does."""
    world = await ticket_world(store, deadlines_routine=DEADLINES)
    ticket = await _submitted(world)
    cards = {(c.chat_id, c.kind): c.message_id for c in await store.tickets.cards(ticket.id)}
    world.clock.now = ticket.due_at
    assert await world.tickets.run_due() == 1
    overdue = _opening(world, "staff.overdue")
    for chat_id, kind in [(GRID_CHAT, "staff"), (HEAD, "head")]:
        notices = [i for i in await world.pending(chat_id, "sendMessage")
                   if i.payload["text"].startswith(overdue)]
        assert len(notices) == 1, chat_id
        assert notices[0].payload["reply_parameters"]["message_id"] == cards[chat_id, kind]


async def test_in_a_forum_the_overdue_notice_goes_into_the_tickets_topic(store):
    world = await ticket_world(store, forum=True, deadlines_routine=DEADLINES)
    ticket = await _submitted(world)
    topic = (await store.tickets.get(ticket.id)).staff_thread_id
    assert topic is not None
    world.clock.now = ticket.due_at
    assert await world.tickets.run_due() == 1
    notices = [i for i in await world.pending(GRID_CHAT, "sendMessage")
               if i.payload["text"].startswith(_opening(world, "staff.overdue"))]
    assert [n.payload["message_thread_id"] for n in notices] == [topic]


async def test_a_closed_ticket_is_neither_reminded_nor_escalated(store):
    world = await ticket_world(store, deadlines_routine=DEADLINES)
    ticket = await _submitted(world)
    async with store.transaction():
        await store.tickets.update(ticket.id, status=TicketStatus.REJECTED)
    world.clock.now = ticket.due_at
    assert await world.tickets.run_due() == 0
    assert await world.tickets.next_due() is None
    assert await world.pending() == []
