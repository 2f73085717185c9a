"""Staff at work from anywhere (SPEC §11), on a temporary store: /tickets' filters and pages,
the cards shown privately as live copies, a whistle to a department with no chat."""

from __future__ import annotations

import pytest

from bot.services.access import Actor
from bot.services.ticket_views import CardKind
from tests.support.harness import grant
from tests.support.services import ADMIN, refused
from tests.support.tickets import DEPT_CHAT, HEAD, LIAISON, RESIDENT, ticket_world
from tests.support.tickets import WORKER as TICKET_WORKER


async def test_filters_narrow_the_open_tickets_and_bad_ones_are_refused(store):
    world = await ticket_world(store)
    tickets = world.tickets
    first = await world.submit(text="一")
    await world.submit(text="二")
    worker = await world.actor(TICKET_WORKER)
    page = await tickets.open_tickets(worker)
    assert page.total == 2 and not page.more
    assert (await tickets.open_tickets(worker, filters=("mine",))).total == 0
    await tickets.acknowledge(worker, first.id)
    mine = await tickets.open_tickets(worker, filters=("MINE",))
    assert [t.id for t in mine.tickets] == [first.id]
    assert (await tickets.open_tickets(worker, filters=("overdue",))).total == 0
    world.clock.now += 10 * 24 * 3600
    assert (await tickets.open_tickets(worker, filters=("overdue",))).total == 2
    assert (await tickets.open_tickets(worker, filters=("b01010101",))).total == 2
    assert (await tickets.open_tickets(worker, filters=("E010101", "red"))).total == 0
    assert (await tickets.open_tickets(worker, filters=("B01010102",))).total == 0
    await refused(store, tickets.open_tickets(worker, filters=("soon",)), "tickets.bad_filter")
    await refused(store, tickets.open_tickets(worker, filters=("G0102",)),
                  "tickets.filter_out_of_scope")
    await refused(store, tickets.open_tickets(worker, filters=("red", "mine", "overdue",
                                                               "G0101")),
                  "tickets.too_many_filters")
    await refused(store, tickets.open_tickets(await world.actor(RESIDENT)), "tickets.not_staff")


async def test_pages_of_ten(store):
    world = await ticket_world(store, opinions_per_hour=30)
    for n in range(23):
        await world.submit(text=f"问题{n}")
    worker = await world.actor(TICKET_WORKER)
    pages = [await world.tickets.open_tickets(worker, page) for page in range(3)]
    assert [len(p.tickets) for p in pages] == [10, 10, 3]
    assert [p.more for p in pages] == [True, True, False]
    assert len({t.id for p in pages for t in p.tickets}) == 23
    assert pages[2].first == 21


async def test_each_viewer_gets_the_card_they_work_from_and_it_becomes_a_live_copy(store):
    world = await ticket_world(store)
    tickets = world.tickets
    ticket = await world.submit()
    await grant(store, 77, "department_liaison", "MZJ")
    head, worker = await world.actor(HEAD), await world.actor(TICKET_WORKER)
    assert await tickets.card_kind_for(head, ticket) == CardKind.HEAD
    assert await tickets.card_kind_for(worker, ticket) == CardKind.STAFF
    views = await tickets.card_views(worker, "en", [ticket])
    assert views[0].kind == CardKind.STAFF and views[0].buttons
    await tickets.cards_shown(TICKET_WORKER, [(ticket.id, 501, CardKind.STAFF)])
    await tickets.cards_shown(TICKET_WORKER, [(ticket.id, 502, CardKind.STAFF)])
    mine = [c for c in await store.tickets.cards(ticket.id) if c.chat_id == TICKET_WORKER]
    assert [c.message_id for c in mine] == [502]  # the latest look is the live copy
    await tickets.acknowledge(worker, ticket.id)
    edits = await world.pending(TICKET_WORKER, "editMessageText")
    assert [e.payload["message_id"] for e in edits] == [502]


async def test_a_whistle_to_a_department_without_a_chat_goes_to_each_liaison(store):
    world = await ticket_world(store)
    async with store.transaction():
        await store.map.unbind("MZJ")
    await grant(store, 77, "department_liaison", "MZJ")
    ticket = await world.submit()
    worker = await world.actor(TICKET_WORKER)
    await world.deliver()
    await world.tickets.whistle(worker, ticket.id, "MZJ")
    for liaison in (LIAISON, 77):
        cards = await world.pending(liaison, "sendMessage")
        assert len(cards) == 1, liaison  # the card alone, not a note to go elsewhere
        labels = [b["callback_data"] for row in cards[0].payload["reply_markup"]
                  ["inline_keyboard"] for b in row]
        assert labels == [f"t:acc:{ticket.id}", f"t:dec:{ticket.id}"]
    assert not await world.pending(DEPT_CHAT)
    await world.deliver()
    accepted = await world.tickets.accept(await world.actor(77), ticket.id)
    assert accepted.status == "accepted"
    edits = {e.chat_id for e in await world.pending(method="editMessageText")}
    assert {LIAISON, 77} <= edits


async def test_superadmin_sees_everything(store):
    world = await ticket_world(store)
    await world.submit()
    admin = Actor(user_id=ADMIN, superadmin=True)
    assert (await world.tickets.open_tickets(admin)).total == 1


@pytest.mark.parametrize("words", [("green",), ("G0101", "overdue")])
async def test_filters_travel_with_the_page(store, words):
    world = await ticket_world(store)
    page = await world.tickets.open_tickets(await world.actor(TICKET_WORKER), 0, words)
    assert page.filters == words
