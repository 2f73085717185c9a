"""Staff at work from anywhere (SPEC §11): a ticket worked from start to rating in private
chats alone, in a county with no bound chat; /tickets by pages with "More" and filters."""

from __future__ import annotations

import pytest

from bot.i18n import t
from tests.support.county import card_head, import_county, state, submit
from tests.support.harness import grant
from tests.support.texts import before, shown

pytestmark = pytest.mark.asyncio


async def test_a_ticket_worked_from_submit_to_rating_in_private_chats_alone(harness):
    """A county with no bound chat: the grid worker finds the ticket with /tickets, works it
    from its card there, whistles it to a department whose liaison accepts and resolves it
    privately, and the resident rates it."""
    emu = harness.emu
    resident = emu.add_user(first_name="李", language_code="zh-hans")
    worker = emu.add_user(first_name="Worker", language_code="en")
    liaison = emu.add_user(first_name="Liaison", language_code="en")
    await harness.start_bot()
    await import_county(harness, None)
    async with harness.store.transaction():
        await harness.store.people.ensure(resident.id)
        await harness.store.people.set_building(resident.id, "B01010101")
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    await grant(harness.store, liaison.id, "department_liaison", "MZJ")
    for user in (resident, worker, liaison):
        await harness.say(user, "/start")
    await submit(harness, resident, "楼道灯坏了一个星期了")
    assert not [c for c in emu.chats.values() if c.type != "private" and c.messages]

    # /tickets privately: the card with the staff chat's buttons
    page = await harness.say(worker, "/tickets")
    assert shown("en", "tickets.page", first=1, last=1, total=1) in page[0].text
    card = page[1]
    assert card.text.startswith(card_head(1)) and state("en", "status.new") in card.text
    labels = [b.text for row in card.buttons for b in row]
    for key in ("btn.acknowledge", "btn.whistle", "btn.resolve", "btn.offer"):
        assert t("en", key) in labels, key

    # Acknowledge: done, and this card is edited like every copy
    answer = await harness.press(worker, card, "t:ack:1")
    assert shown("en", "done.ack", id=1) in answer.text
    card = emu.chat(worker.id).messages[card.message_id]
    assert state("en", "status.acknowledged") in card.text
    assert shown("zh-Hans", "notice.acknowledged", id=1) in harness.texts(resident.id)[-1]

    # Whistle: the picker comes privately; the department has no chat, so its liaison gets
    # the card with Accept and Decline
    await harness.press(worker, card, "t:wh:1")
    picker = await harness.last(worker.id)
    await harness.press(worker, picker, "t:wh:1:MZJ")
    dept_card = await harness.last(liaison.id)
    assert dept_card.text.startswith(card_head(1))
    assert [b.text for b in dept_card.buttons[0]] == [t("en", "btn.accept"),
                                                      t("en", "btn.decline")]
    answer = await harness.press(liaison, dept_card, "t:acc:1")
    assert shown("en", "done.acc", id=1) in answer.text
    dept_card = emu.chat(liaison.id).messages[dept_card.message_id]
    assert [b.text for b in dept_card.buttons[0]] == [t("en", "btn.resolve")]

    # Resolve: the prompt for the note comes in the private chat
    await harness.press(liaison, dept_card, "t:res:1")
    prompt = await harness.last(liaison.id)
    assert prompt.force_reply
    await harness.say(liaison, "已更换灯泡", reply_to=prompt)
    assert (await harness.store.tickets.get(1)).status == "resolved"
    resolved = emu.messages(resident.id)[-1]
    assert shown("zh-Hans", "notice.resolved", id=1, note="已更换灯泡") in resolved.text
    await harness.press(resident, resolved, "⭐ 5")
    ticket = await harness.store.tickets.get(1)
    assert (ticket.status, ticket.rating) == ("rated", 5)

    # the worker's card followed every step; /ticket 1 shows it with the timeline
    card = emu.chat(worker.id).messages[card.message_id]
    assert state("en", "status.rated") in card.text and not card.buttons
    view = await harness.say(worker, "/ticket 1")
    assert view[0].text.startswith(card_head(1))
    assert shown("en", "event.accepted") in view[-1].text
    kinds = [e.kind for e in await harness.store.tickets.events(1)]
    assert kinds == ["created", "acknowledged", "whistled", "accepted", "resolved", "rated"]


async def test_tickets_pages_by_ten_with_more_and_filters(harness):
    emu = harness.emu
    resident = emu.add_user(first_name="李", language_code="zh-hans")
    worker = emu.add_user(first_name="Worker", language_code="en")
    await harness.start_bot(opinions_per_hour=20)
    await import_county(harness, None)
    async with harness.store.transaction():
        await harness.store.people.ensure(resident.id)
        await harness.store.people.set_building(resident.id, "B01010101")
    await grant(harness.store, worker.id, "grid_worker", "G0101")
    for user in (resident, worker):
        await harness.say(user, "/start")
    for n in range(12):
        await submit(harness, resident, f"问题{n + 1}", domain="red" if n < 2 else "green")

    page = await harness.say(worker, "/tickets")
    assert shown("en", "tickets.page", first=1, last=10, total=12) in page[0].text
    assert len([m for m in page if m.text.startswith("#")]) == 10
    more = page[-1]
    assert shown("en", "tickets.more_below", last=10, total=12) in more.text
    before_press = {m.message_id for m in emu.messages(worker.id)}
    await harness.press(worker, more, t("en", "btn.more"))
    second = [m for m in emu.messages(worker.id) if m.message_id not in before_press]
    assert shown("en", "tickets.page", first=11, last=12, total=12) in second[0].text
    assert len(second) == 3  # the title and two cards: no more "More"
    assert not emu.chat(worker.id).messages[more.message_id].buttons  # pressed once

    red = await harness.say(worker, "/tickets red")
    assert shown("en", "tickets.page", first=1, last=2, total=2) in red[0].text
    assert (await harness.say(worker, "/tickets G0101"))[0].text.startswith(
        before("en", "tickets.page", "first"))
    assert shown("en", "tickets.none_filtered", filters="mine") in \
        (await harness.say(worker, "/tickets mine"))[-1].text
    assert shown("en", "tickets.none_filtered", filters="overdue") in \
        (await harness.say(worker, "/tickets overdue"))[-1].text
    await harness.press(worker, emu.chat(worker.id).messages[page[1].message_id], "t:ack:1")
    mine = await harness.say(worker, "/tickets mine")
    assert shown("en", "tickets.page", first=1, last=1, total=1) in mine[0].text
    # bad filters are answered, naming the problem
    assert shown("en", "tickets.bad_filter", text="soon") in \
        (await harness.say(worker, "/tickets soon"))[-1].text
    assert shown("en", "tickets.filter_out_of_scope", code="C01") in \
        (await harness.say(worker, "/tickets C01"))[-1].text
    assert shown("en", "tickets.too_many_filters", most=3) in \
        (await harness.say(worker, "/tickets red mine overdue G0101"))[-1].text

    # in a staff group, a list with "More" under it (cards are for private chats)
    group = await harness.bound_group("第一网格工作群", "G0101", worker, [worker])
    listing = (await harness.say(worker, "/tickets", chat=group))[-1]
    assert shown("en", "tickets.page", first=1, last=10, total=12) in listing.text
    assert listing.text.count("\n#") == 10 and listing.buttons
    await harness.press(worker, listing, "tk:1:")
    rest = await harness.last(group.id)
    assert shown("en", "tickets.page", first=11, last=12, total=12) in rest.text
    assert not rest.buttons and not emu.chat(group.id).messages[listing.message_id].buttons
