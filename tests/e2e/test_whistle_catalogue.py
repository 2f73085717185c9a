"""The whistle catalogue end to end (吹哨清单, 积分管理, SPEC §11): a county's catalogue in its
map file; a grid worker whistles a resident's ticket by category and item; the department
accepts and resolves it and scores the item's points; the worker rates the department's work
with one tap and a comment, and the department board moves by a third."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.services import ticket_views as views
from bot.services.mapfile import import_map
from bot.services.ticket_states import TicketAction
from tests.support.harness import consent, grant, seed_map
from tests.support.texts import before, shown

pytestmark = pytest.mark.asyncio

CATALOGUE = """\
whistle_items:
  - code: MZ01
    category: 民生保障
    name: 困难群众临时救助
    department: MZJ
    points: 8
    deadline: 2h
  - code: CS01
    category: 城市管理
    name: 占道经营
    department: CGJ
    points: 5
"""


def message(harness, chat_id, message_id):
    """A message as it reads now (after its edits)."""
    return next(m for m in harness.emu.messages(chat_id) if m.message_id == message_id)


async def test_a_catalogue_whistle_scores_the_items_points_and_the_rating_moves_the_board(
        harness):
    h = harness
    emu = h.emu
    resident = emu.add_user(first_name="李", language_code="zh-hans")
    worker = emu.add_user(first_name="Worker", language_code="en")
    liaison = emu.add_user(first_name="Liaison", language_code="zh-hans")
    await h.start_bot()
    await seed_map(h.store)
    assert (await import_map(h.store, CATALOGUE.encode(), "catalogue.yaml")).ok
    await grant(h.store, worker.id, "grid_worker", "G0101")
    await grant(h.store, liaison.id, "department_liaison", "MZJ")
    async with h.store.transaction():
        await h.store.people.ensure(resident.id)
        await h.store.people.set_building(resident.id, "B01010101")
    await consent(h.store, resident.id)
    for user in (resident, worker, liaison):
        await h.say(user, "/start")
    grid_chat = await h.bound_group("第一网格工作群", "G0101", worker, [worker])
    async with h.store.transaction():
        await h.store.map.set_chat_locale(grid_chat.id, "en")
    dept_chat = await h.bound_group("民政局", "MZJ", liaison, [liaison])

    # a resident's opinion
    draft = (await h.say(resident, "独居老人家里断粮了"))[-1]
    await h.press(resident, draft, "dr:dom:orange")
    await h.press(resident, draft, "dr:submit")
    card_head = before("en", "ticket.card_title", "domain", id=1)
    grid_card = [m for m in emu.messages(grid_chat.id)
                 if m.text.startswith(card_head) and m.buttons][-1]

    # Whistle: the categories, then the items of one, each naming its department
    await h.press(worker, grid_card, "t:wh:1")
    picker = await h.last(grid_chat.id)
    assert picker.text == shown("en", "whistle.pick_category", id=1)
    assert picker.button_texts == [["📂 民生保障 (1)"], ["📂 城市管理 (1)"],
                                   [t("en", "whistle.other")]]
    await h.press(worker, picker, "📂 民生保障 (1)")
    picker = message(h, grid_chat.id, picker.message_id)
    assert picker.text == shown("en", "whistle.pick_item", id=1, category="民生保障")
    assert picker.button_texts == [["📣 困难群众临时救助 → 县民政局"], [t("en", "whistle.back")]]
    # "Other" is today's department picker; Back returns to the categories
    await h.press(worker, picker, t("en", "whistle.back"))
    picker = message(h, grid_chat.id, picker.message_id)
    await h.press(worker, picker, t("en", "whistle.other"))
    picker = message(h, grid_chat.id, picker.message_id)
    assert picker.buttons[0][0].callback_data == "t:wh:1:MZJ"  # the lead department first
    await h.press(worker, picker, t("en", "whistle.back"))
    picker = message(h, grid_chat.id, picker.message_id)
    await h.press(worker, picker, "📂 民生保障 (1)")
    # a forged press for an item that is not in the catalogue changes nothing
    forged = emu.inject_callback(worker, picker, "t:wh:1:i.NOPE")
    assert (await forged.wait_answered(timeout=5)).text == \
        shown("en", "whistle.item_gone", code="NOPE")
    assert (await h.store.tickets.get(1)).status == "new"
    answer = await h.press(worker, message(h, grid_chat.id, picker.message_id),
                           "t:wh:1:i.MZ01")
    assert answer.text == shown("en", "done.wh", id=1)
    assert not message(h, grid_chat.id, picker.message_id).buttons
    ticket = await h.store.tickets.get(1)
    assert (ticket.status, ticket.department_code, ticket.whistle_item) == \
        ("whistled", "MZJ", "MZ01")
    assert ticket.due_at - ticket.due_from == 2 * 3600  # the item's time to accept
    dept_card = [m for m in emu.messages(dept_chat.id) if m.buttons][-1]
    assert shown("zh-Hans", "whistle.card_item", category="民生保障",
                 item="困难群众临时救助") in dept_card.text

    # the department accepts in time and resolves
    await h.press(liaison, dept_card, "t:acc:1")
    await h.press(liaison, [m for m in emu.messages(dept_chat.id) if m.buttons][-1], "t:res:1")
    prompt = await h.last(dept_chat.id)
    await h.say(liaison, "已送去米面油", chat=dept_chat, reply_to=prompt)
    assert (await h.store.tickets.get(1)).status == "resolved"

    # the board: the item's 8 points, two thirds of them the score until the rating
    board = (await h.say(worker, "/board departments"))[-1].text
    assert shown("en", "board.line_department_score", score="5.3", points=8, rated="0.0",
                 rating="—", ratings=0) in board
    assert shown("en", "board.line_department_items", items="困难群众临时救助 ×1") in board

    # the worker who whistled is asked privately, rates with one tap, then comments
    ask = [m for m in emu.messages(worker.id) if m.buttons][-1]
    assert ask.text.startswith(shown("en", "whistle.rate_ask", id=1, title="独居老人家里断粮了",
                                     department="县民政局"))
    assert [b.callback_data for b in ask.buttons[0]] == [
        views.press_data(TicketAction.RATE_DEPARTMENT, 1, n) for n in range(1, 6)]
    answer = await h.press(worker, ask, "⭐ 4")
    assert answer.text == shown("en", "whistle.done_rate", id=1, stars=4)
    rated = message(h, worker.id, ask.message_id)
    assert rated.text == shown("en", "whistle.rated", id=1, stars="⭐⭐⭐⭐") and not rated.buttons
    again = emu.inject_callback(worker, rated, "t:wr:1:5")
    assert (await again.wait_answered(timeout=5)).text == \
        shown("en", "whistle.already_rated", id=1)
    said = await h.say(worker, "送得很及时", reply_to=rated)
    assert said[-1].text == shown("en", "whistle.done_comment", id=1)

    # the rating moves the board: ⅔ × 8 + ⅓ × (4/5 × 8)
    board = (await h.say(worker, "/board departments"))[-1].text
    assert shown("en", "board.line_department_score", score="7.5", points=8, rated="6.4",
                 rating="4.0", ratings=1) in board
    timeline = (await h.say(worker, "/ticket 1"))[-1].text
    assert t("en", "event.department_rated") in timeline and "送得很及时" in timeline
