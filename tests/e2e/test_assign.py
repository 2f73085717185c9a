"""点将 from a ticket card through the emulator (SPEC §10): Assign opens the picker filtered by
the ticket's domain ("All" shows everyone); the chosen volunteer declines; Assign again to
another, who accepts (the assignee, as Take makes one), posts progress and resolves with the
hours it took; the points are credited to the time bank. The resident rates it one star: the
reopened ticket loses its assignee, its card offers Assign again, and the same person is asked
anew, accepts and resolves it a second time (no more hours credited)."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.labels import SKILL
from bot.services import ticket_views as views
from tests.e2e.test_tickets import World
from tests.support.harness import grant
from tests.support.texts import before, shown

pytestmark = pytest.mark.asyncio


def _data(message) -> list[str]:
    return [b.callback_data for row in message.buttons for b in row]


async def test_assign_decline_assign_again_accept_update_resolve_with_hours(harness):
    w = World(harness)
    await w.setup()
    fixer = harness.emu.add_user(first_name="Fixer", language_code="en")
    nurse = harness.emu.add_user(first_name="Nurse", language_code="en")
    for user, skill in ((fixer, "repairs"), (nurse, "medical")):
        await grant(harness.store, user.id, "volunteer", "G0101")
        async with harness.store.transaction():
            await harness.store.people.set_volunteer_profile(user.id, [skill], None)
        await harness.say(user, "/start")
    await w.submit(text="单元门关不上了", domain="purple", anonymous=True)

    # Assign on the grid's card: the picker, people whose skills suit purple (repairs)
    card = w.card(w.grid_chat.id)
    assert "t:asg:1" in _data(card)
    # a resident's crafted press is refused
    refused = await harness.press(w.neighbour, card, "t:asg:1")
    assert refused.text == shown("en", "ticket.not_allowed", id=1)
    await harness.press(w.worker, card, "t:asg:1")
    picker = await harness.last(w.grid_chat.id)
    assert f"t:asg:1:p{fixer.id}" in _data(picker)
    assert f"t:asg:1:p{nurse.id}" not in _data(picker)
    await harness.press(w.worker, picker, "t:asg:1:*")          # All
    picker = await harness.last(w.grid_chat.id)
    assert {f"t:asg:1:p{fixer.id}", f"t:asg:1:p{nurse.id}"} <= set(_data(picker))

    answer = await harness.press(w.worker, picker, f"t:asg:1:p{fixer.id}")
    assert answer.text == shown("en", "assign.asked", id=1, name="Fixer")
    ask = await harness.last(fixer.id)
    assert "单元门关不上了" in ask.text and "李" not in ask.text    # anonymous
    assert _data(ask) == ["t:asa:1", "t:asd:1"]
    # someone who was not asked forges Accept in their own chat: refused
    forged = harness.emu.inject_callback(nurse, await harness.last(nurse.id), "t:asa:1")
    assert (await forged.wait_answered(timeout=5)).text == shown("en", "button.stale")
    await harness.settle()
    assert (await harness.press(fixer, ask, "t:asd:1")).text == \
        shown("en", "assign.declined", id=1)
    assert shown("en", "assign.staff_declined", id=1, name="Fixer") in \
        harness.texts(w.grid_chat.id)
    # pressed again after the decline: no longer open; asked again: refused
    stale = harness.emu.inject_callback(fixer, ask, "t:asa:1")
    assert (await stale.wait_answered(timeout=5)).text == shown("en", "assign.answered", id=1)
    await harness.settle()
    again = harness.emu.inject_callback(w.worker, picker, f"t:asg:1:p{fixer.id}")
    assert (await again.wait_answered(timeout=5)).text == \
        shown("en", "assign.asked_before", id=1, name="Fixer")
    await harness.settle()

    # assign again, from the card, to the nurse (through "All"): she accepts
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:asg:1")
    await harness.press(w.worker, await harness.last(w.grid_chat.id), "t:asg:1:*")
    picker = await harness.last(w.grid_chat.id)
    assert f"t:asg:1:p{fixer.id}" not in _data(picker)           # asked before: no button
    await harness.press(w.worker, picker, f"t:asg:1:p{nurse.id}")
    ask = await harness.last(nurse.id)
    assert (await harness.press(nurse, ask, "t:asa:1")).text == \
        shown("en", "assign.accepted", id=1)
    assert (await harness.store.tickets.get(1)).assignee_id == nurse.id
    assert shown("zh-Hans", "notice.taken", id=1) in harness.texts(w.resident.id)
    assert before("en", "ticket.card_taker", "taker") in w.card(w.grid_chat.id).text
    assert "t:asg:1" not in _data(w.card(w.grid_chat.id))
    yours = await harness.last(nurse.id)
    assert yours.text == shown("en", "assign.yours", id=1)
    assert _data(yours) == ["t:prg:1", "t:prg:1:r"]

    # Update: the progress goes to the staff thread
    await harness.press(nurse, yours, "t:prg:1")
    assert (await harness.last(nurse.id)).text == shown("en", "assign.ask_update", id=1)
    said = await harness.say(nurse, "已联系物业，明天来修")
    assert said[-1].text == shown("en", "assign.updated", id=1)
    assert shown("en", "assign.staff_progress", id=1, name="Nurse",
                 note="已联系物业，明天来修") in harness.texts(w.grid_chat.id)

    # Resolve: the note, then the hours (a bad number asked again)
    await harness.press(nurse, yours, "t:prg:1:r")
    said = await harness.say(nurse, "门已修好")
    assert said[-1].text == shown("en", "assign.ask_hours", id=1, max="8")
    said = await harness.say(nurse, "lots")
    assert said[-1].text == shown("en", "assign.bad_hours", max="8")
    said = await harness.say(nurse, "2.5")
    assert said[-1].text == shown("en", "assign.resolved", id=1, hours="2.5", points=25,
                                  balance=25)
    ticket = await harness.store.tickets.get(1)
    assert (ticket.status, ticket.result_note) == ("resolved", "门已修好")
    assert shown("zh-Hans", "notice.resolved", id=1, note="门已修好") in \
        harness.texts(w.resident.id)
    lines = await harness.store.shop.ledger(nurse.id, 5)
    assert [(x.kind, x.delta, x.ticket_id) for x in lines] == [("credit", 25, 1)]
    assert await harness.store.shop.balance(nurse.id) == 25
    points = (await harness.say(nurse, "/points"))[-1].text
    assert shown("en", "assign.line_credit", when="", delta="+25", ticket=1).strip() in points
    # /talent shows the hours this year and no open assignment left
    talent = (await harness.say(w.worker, "/talent"))[-1].text
    assert shown("en", "talent.line", name="Nurse", user=nurse.id, party="", unit="",
                 skills=t("en", SKILL["medical"]), hours="2.5", posts=0,
                 assignments=0) in talent

    # the resident rates it one star: reopened without its assignee, Assign offered again
    rating = next(m for m in reversed(harness.emu.messages(w.resident.id)) if m.buttons)
    await harness.press(w.resident, rating, "⭐ 1")
    ticket = await harness.store.tickets.get(1)
    assert (ticket.status, ticket.assignee_id) == ("escalated", None)
    assert (await harness.last(nurse.id)).text == shown("en", "assign.reopened", id=1)
    card = w.card(w.grid_chat.id)
    assert "t:asg:1" in _data(card)
    assert before("en", "ticket.card_taker", "taker") not in card.text
    stale = harness.emu.inject_callback(nurse, yours, "t:prg:1:r")
    assert (await stale.wait_answered(timeout=5)).text == shown("en", "assign.not_yours", id=1)
    await harness.settle()
    await harness.press(w.worker, card, "t:asg:1")
    await harness.press(w.worker, await harness.last(w.grid_chat.id), "t:asg:1:*")
    picker = await harness.last(w.grid_chat.id)
    assert f"t:asg:1:p{nurse.id}" in _data(picker)               # asked anew
    assert f"t:asg:1:p{fixer.id}" not in _data(picker)           # her decline stands
    await harness.press(w.worker, picker, f"t:asg:1:p{nurse.id}")
    ask = await harness.last(nurse.id)
    assert _data(ask) == ["t:asa:1", "t:asd:1"]
    await harness.press(nurse, ask, "t:asa:1")
    assert (await harness.store.tickets.get(1)).assignee_id == nurse.id
    yours = await harness.last(nurse.id)
    await harness.press(nurse, yours, "t:prg:1:r")
    said = await harness.say(nurse, "返修好了")
    assert said[-1].text == shown("en", "assign.resolved_again", id=1)
    assert (await harness.store.tickets.get(1)).status == "resolved"
    assert await harness.store.shop.balance(nurse.id) == 25


async def test_staff_resolve_before_the_volunteer_answers_ends_her_ask(harness):
    """A volunteer is asked; the grid worker resolves the ticket before she answers: her ask
    ends with it (her load is 0 on /talent), she is told privately in her language, and her
    late Accept is refused with the reason."""
    w = World(harness)
    await w.setup()
    vera = harness.emu.add_user(first_name="Vera", language_code="en")
    await grant(harness.store, vera.id, "volunteer", "G0101")
    async with harness.store.transaction():
        await harness.store.people.set_volunteer_profile(vera.id, ["repairs"], None)
    await harness.say(vera, "/start")
    await w.submit(text="单元门关不上了", domain="purple", anonymous=True)
    await harness.press(w.worker, w.card(w.grid_chat.id), "t:asg:1")
    await harness.press(w.worker, await harness.last(w.grid_chat.id), f"t:asg:1:p{vera.id}")
    ask = await harness.last(vera.id)
    assert _data(ask) == ["t:asa:1", "t:asd:1"]
    talent = (await harness.say(w.worker, "/talent"))[-1].text
    line = dict(name="Vera", user=vera.id, party="", unit="",
                skills=t("en", SKILL["repairs"]), hours="0", posts=0)
    assert shown("en", "talent.line", **line, assignments=1) in talent

    await harness.press(w.worker, w.card(w.grid_chat.id), "t:res:1")
    await w.answer_prompt(w.worker, w.grid_chat, "物业已修好")
    assert (await harness.store.tickets.get(1)).status == "resolved"
    ticket = await harness.store.tickets.get(1)
    building = await harness.store.map.get(ticket.building_code)
    told = await harness.last(vera.id)
    assert told.text == shown("en", "assign.ended_offered", id=1,
                              domain=views.domain_label("en", "purple"),
                              building=building.name, state=t("en", "status.resolved"))
    assert "李" not in told.text                                   # anonymous reporter
    talent = (await harness.say(w.worker, "/talent"))[-1].text
    assert shown("en", "talent.line", **line, assignments=0) in talent

    late = await harness.press(vera, ask, "t:asa:1")
    assert late.text == shown("en", "assign.closed", id=1, state=t("en", "status.resolved"))
    ticket = await harness.store.tickets.get(1)
    assert (ticket.status, ticket.assignee_id) == ("resolved", None)
    assert [a.state for a in await harness.store.assignments.of_ticket(1)] == ["withdrawn"]
