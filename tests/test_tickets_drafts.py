"""Drafts (SPEC §4): written in several messages, choices pressed on the current card only,
Submit makes one ticket with its receipt and leaves the staff cards to the backlog."""

from __future__ import annotations

import pytest

from bot.services.errors import Refused
from bot.services.ticket_drafts import MAX_PHOTOS
from storage.models import DueKind, TicketStatus
from tests.support.tickets import DRAFT_CARD, HEAD, NEIGHBOUR, RESIDENT, ticket_world


async def test_a_draft_gathers_messages_and_photos(store):
    world = await ticket_world(store)
    tickets = world.tickets
    await tickets.add_to_draft(RESIDENT, "楼道灯坏了", None)
    await tickets.add_to_draft(RESIDENT, "一个星期了", "P1")
    await tickets.add_to_draft(RESIDENT, "", "P1")  # the same photo again counts once
    for n in range(2, MAX_PHOTOS + 3):
        await tickets.add_to_draft(RESIDENT, "", f"P{n}")
    draft = await tickets.draft(RESIDENT)
    assert draft.data["text"] == "楼道灯坏了\n一个星期了"
    assert draft.data["photos"] == [f"P{n}" for n in range(1, MAX_PHOTOS + 1)]
    view = tickets.draft_view("en", draft)
    assert view.parts and view.buttons[-1][0]["callback_data"] == "dr:submit"


async def test_choices_count_only_on_the_current_card(store):
    world = await ticket_world(store)
    tickets = world.tickets
    await tickets.add_to_draft(RESIDENT, "水管漏水", None)
    await tickets.draft_shown(RESIDENT, DRAFT_CARD)
    assert (await tickets.draft_choice(RESIDENT, DRAFT_CARD, "green")).data["domain"] == "green"
    assert (await tickets.draft_choice(RESIDENT, DRAFT_CARD, "anon")).data["anonymous"] is True
    assert (await tickets.draft_choice(RESIDENT, DRAFT_CARD, "unsure")).data["domain"] is None
    for message_id, choice in [(DRAFT_CARD - 1, "green"), (DRAFT_CARD, "pink")]:
        with pytest.raises(Refused) as caught:
            await tickets.draft_choice(RESIDENT, message_id, choice)
        assert caught.value.key == "button.stale"
    await tickets.add_to_draft(RESIDENT, "还在漏", None)  # a new card is shown after this
    with pytest.raises(Refused):
        await tickets.submit(RESIDENT, DRAFT_CARD)
    await tickets.draft_shown(RESIDENT, DRAFT_CARD + 1)
    await tickets.cancel_draft(RESIDENT, DRAFT_CARD + 1)
    assert await tickets.draft(RESIDENT) is None
    with pytest.raises(Refused) as caught:
        await tickets.cancel_draft(RESIDENT, DRAFT_CARD + 1)
    assert caught.value.key == "draft.none"


async def test_submit_makes_the_ticket_its_receipt_and_flags_its_cards(store):
    world = await ticket_world(store)
    waiting, changed = [], []
    world.tickets.cards_waiting = lambda: waiting.append(True)
    world.tickets.changed = lambda when=None: changed.append(when)
    ticket = await world.submit(text="楼道灯坏了", photo="P1")
    assert (ticket.id, ticket.status, ticket.due_kind, ticket.photos) == \
        (1, TicketStatus.NEW, DueKind.ACKNOWLEDGE, ("P1",))
    assert await store.drafts.get(RESIDENT) is None
    assert [e.kind for e in await store.tickets.events(ticket.id)] == ["created"]
    assert len(await world.texts(RESIDENT)) == 1  # the receipt
    assert [i.payload["message_id"] for i in await world.pending(RESIDENT, "editMessageText")] \
        == [DRAFT_CARD]
    assert await world.pending(HEAD) == []  # the cards wait for the backlog
    assert await store.tickets.cards_pending(10) == [ticket.id]
    assert waiting == [True] and changed == [ticket.remind_at]


async def test_submit_is_refused_without_a_building_and_over_the_hourly_limit(store):
    world = await ticket_world(store, opinions_per_hour=1)
    async with store.transaction():
        await store.people.ensure(4242)
    await world.tickets.add_to_draft(4242, "我没有楼", None)
    await world.tickets.draft_shown(4242, DRAFT_CARD)
    with pytest.raises(Refused) as caught:
        await world.tickets.submit(4242, DRAFT_CARD)
    assert caught.value.key == "draft.join_first"
    await world.submit(user_id=NEIGHBOUR)
    with pytest.raises(Refused) as caught:
        await world.submit(user_id=NEIGHBOUR, text="再来一个")
    assert caught.value.key == "draft.rate_limited"
