"""Staff cards (SPEC §4): the backlog that queues a new ticket's cards after its Submit, the
forum topic, the sent hooks that remember each card, and every copy edited on a step."""

from __future__ import annotations

from bot.services.ticket_refs import RefKind, parse_ref
from bot.services.ticket_states import TicketAction
from bot.services.ticket_views import ACTION_CODES
from storage.models import Ticket
from tests.support.tickets import (
    ADMIN,
    GRID_CHAT,
    HEAD,
    NEIGHBOUR,
    RESIDENT,
    TicketWorld,
    ticket_world,
)


async def _cards_of(world: TicketWorld, ticket_id: int) -> list[tuple[int, str]]:
    return sorted((i.chat_id, parse_ref(i.ref).card_kind) for i in await world.pending()
                  if i.ref and i.ref.startswith(f"{RefKind.CARD}:{ticket_id}:"))


async def test_a_ticket_closed_before_its_cards_gets_none_and_a_failing_one_holds_back_none(
        store, monkeypatch):
    world = await ticket_world(store)
    first = await world.submit(text="一号楼道灯坏了")
    second = await world.submit(user_id=NEIGHBOUR, text="二号电梯坏了")
    third = await world.submit(text="三号水管漏水")
    await world.tickets.reject(await world.actor(ADMIN), third.id, "重复")
    real = world.tickets._post_new_cards

    async def broken_for_the_first(ticket: Ticket, known: object = None) -> None:
        if ticket.id == first.id:
            raise RuntimeError("a bug in one card")
        await real(ticket, known)

    monkeypatch.setattr(world.tickets, "_post_new_cards", broken_for_the_first)
    assert await world.tickets.post_pending_cards() is False
    assert await _cards_of(world, second.id) == [(GRID_CHAT, "staff"), (HEAD, "head")]
    assert await _cards_of(world, first.id) == await _cards_of(world, third.id) == []
    assert await store.tickets.cards_pending(10) == [first.id]  # left for the next start
    assert await world.tickets.post_pending_cards() is False  # not tried again meanwhile
    monkeypatch.undo()
    again = world.restarted()
    assert await again.tickets.post_pending_cards() is False
    assert await _cards_of(world, first.id) == [(GRID_CHAT, "staff"), (HEAD, "head")]
    assert await store.tickets.cards_pending(10) == []


async def test_cards_undone_by_the_store_are_tried_again_at_once_and_given_up_the_second_time(
        store, monkeypatch):
    """A deadlock or a stale plan undoes the cards' transaction (a Conflict): the backlog
    says more is waiting and the next round posts them; undone twice running, the ticket is
    left for the next start like any failure."""
    from storage.models import Conflict

    world = await ticket_world(store)
    first = await world.submit(text="一号楼道灯坏了")
    second = await world.submit(user_id=NEIGHBOUR, text="二号电梯坏了")
    real = world.tickets._post_new_cards
    undo = {first.id: 1, second.id: 2}  # how many times each is undone

    async def undone(ticket: Ticket, known: object = None) -> None:
        if undo.get(ticket.id, 0) > 0:
            undo[ticket.id] -= 1
            raise Conflict("deadlock detected")
        await real(ticket, known)

    monkeypatch.setattr(world.tickets, "_post_new_cards", undone)
    assert await world.tickets.post_pending_cards() is True  # both undone once: again
    assert await world.tickets.post_pending_cards() is False
    assert await _cards_of(world, first.id) == [(GRID_CHAT, "staff"), (HEAD, "head")]
    assert await _cards_of(world, second.id) == []  # undone twice: left for the next start
    assert await store.tickets.cards_pending(10) == [second.id]
    assert await world.tickets.post_pending_cards() is False


async def test_the_backlog_says_when_more_are_waiting_than_one_batch(store):
    world = await ticket_world(store)
    for n in range(3):
        await world.submit(user_id=RESIDENT if n % 2 else NEIGHBOUR, text=f"第{n}件事")
    assert await world.tickets.post_pending_cards(batch=2) is True
    assert await world.tickets.post_pending_cards(batch=2) is False
    assert await store.tickets.cards_pending(10) == []


async def test_sent_cards_are_remembered_and_each_step_edits_every_copy(store):
    world = await ticket_world(store)
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    sent = await world.deliver()
    cards = await store.tickets.cards(ticket.id)
    assert sorted((c.chat_id, c.kind) for c in cards) == [(GRID_CHAT, "staff"), (HEAD, "head")]
    by_chat = {i.chat_id: i for i in sent if i.ref and i.ref.startswith("tcard:")}
    assert {c.message_id for c in cards} == {1000 + by_chat[c.chat_id].id for c in cards}
    head_buttons = by_chat[HEAD].payload["reply_markup"]["inline_keyboard"]
    assert head_buttons[0][0]["callback_data"] == \
        f"t:{ACTION_CODES[TicketAction.ACKNOWLEDGE]}:{ticket.id}"
    await world.tickets.acknowledge(await world.actor(HEAD), ticket.id)
    edits = await world.pending(method="editMessageText")
    assert sorted((e.chat_id, e.payload["message_id"]) for e in edits) == \
        sorted((c.chat_id, c.message_id) for c in cards)


async def test_in_a_forum_the_ticket_gets_its_topic_and_its_card_goes_in(store):
    world = await ticket_world(store, forum=True)
    ticket = await world.submit()
    await world.tickets.post_pending_cards()
    topics = await world.pending(GRID_CHAT, "createForumTopic")
    assert [t.ref for t in topics] == [f"ttopic:{ticket.id}"]
    assert await world.pending(GRID_CHAT, "sendMessage") == []
    await world.deliver()
    thread = (await store.tickets.get(ticket.id)).staff_thread_id
    assert thread == 7000 + topics[0].id
    assert [(c.chat_id, c.kind) for c in await store.tickets.cards(ticket.id)
            if c.chat_id == GRID_CHAT] == [(GRID_CHAT, "staff")]
