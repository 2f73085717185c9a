"""The whistle catalogue at work (吹哨清单, 积分管理, SPEC §11): the two-step picker, a
whistle with an item (its department, its time to accept, remembered by the ticket), the
points a department earns by it, and the whistler's rating of the department's work, which
the departments' board weighs as a third of the score."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.i18n import t
from bot.services import periods
from bot.services import ticket_views as views
from bot.services.boards import BoardService, score_departments
from bot.services.mapfile import import_map
from bot.services.scopes import city_scope
from bot.services.ticket_states import TicketAction
from storage.models import DepartmentEvent, DueKind, WhistleRating
from tests.support.services import refused
from tests.support.tickets import (
    DEPT_CHAT,
    HEAD,
    LIAISON,
    STAFF,
    WORKER,
    TicketWorld,
    ticket_world,
)

HOUR = 3600
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
  - code: MZ02
    category: 民生保障
    name: 独居老人探访
    department: MZJ
"""


async def catalogue_world(store) -> TicketWorld:
    world = await ticket_world(store)
    result = await import_map(store, CATALOGUE.encode(), "catalogue.yaml")
    assert result.ok, result.errors
    return world


def data_of(rows: views.Buttons) -> list[list[str]]:
    return [[b["callback_data"] for b in row] for row in rows]


# the picker


async def test_the_picker_shows_categories_then_a_categorys_items(store):
    world = await catalogue_world(store)
    ticket = await world.submit()
    worker = await world.actor(WORKER)
    menu = await world.tickets.whistle_menu(worker, ticket.id)
    assert [i.code for i in menu.items] == ["MZ01", "CS01", "MZ02"]
    rows = views.category_buttons("en", ticket.id, menu.items)
    welfare, city = views.category_key("民生保障"), views.category_key("城市管理")
    assert [[b["text"] for b in row] for row in rows] == [
        ["📂 民生保障 (2)"], ["📂 城市管理 (1)"], [t("en", "whistle.other")]]
    assert data_of(rows) == [[f"t:wh:{ticket.id}:c.{welfare}"], [f"t:wh:{ticket.id}:c.{city}"],
                             [f"t:wh:{ticket.id}:*"]]
    # a category: its items, each with the department it goes to, and the way back
    menu = await world.tickets.whistle_menu(worker, ticket.id, welfare)
    assert menu.category == "民生保障" and [i.code for i in menu.items] == ["MZ01", "MZ02"]
    rows = views.item_buttons("en", ticket.id, menu.items, menu.departments)
    assert [[b["text"] for b in row] for row in rows] == [
        ["📣 困难群众临时救助 → 县民政局"], ["📣 独居老人探访 → 县民政局"],
        [t("en", "whistle.back")]]
    assert data_of(rows) == [[f"t:wh:{ticket.id}:i.MZ01"], [f"t:wh:{ticket.id}:i.MZ02"],
                             [f"t:wh:{ticket.id}:."]]
    # "Other" and the department buttons still read as a department's code
    for arg in ("MZJ", "CGJ"):
        assert views.WHISTLE_OTHER not in arg and not arg.startswith(
            (views.WHISTLE_CATEGORY, views.WHISTLE_ITEM, views.WHISTLE_BACK))


async def test_a_press_is_checked_again(store):
    world = await catalogue_world(store)
    ticket = await world.submit()
    worker = await world.actor(WORKER)
    await refused(store, world.tickets.whistle_menu(worker, ticket.id, "00000000"),
                  "whistle.category_gone")
    await refused(store, world.tickets.whistle(worker, ticket.id, item_code="GONE"),
                  "whistle.item_gone")
    head = await world.actor(HEAD)  # building heads do not whistle (SPEC §1)
    await refused(store, world.tickets.whistle_menu(head, ticket.id), "ticket.not_allowed")
    await refused(store, world.tickets.whistle(head, ticket.id, item_code="MZ01"),
                  "ticket.not_allowed")
    await world.tickets.whistle(worker, ticket.id, item_code="MZ01")
    await refused(store, world.tickets.whistle(worker, ticket.id, item_code="CS01"),
                  "ticket.bad_state")
    await refused(store, world.tickets.whistle_menu(worker, ticket.id), "ticket.bad_state")


def test_callback_data_stays_within_64_bytes():
    longest = views.press_data(TicketAction.WHISTLE, 2 ** 63 - 1, views.WHISTLE_ITEM + "X" * 32)
    assert len(longest.encode()) <= views.CALLBACK_DATA_MAX
    category = views.press_data(TicketAction.WHISTLE, 2 ** 63 - 1,
                                views.WHISTLE_CATEGORY + views.category_key("很长" * 500))
    assert len(category.encode()) <= views.CALLBACK_DATA_MAX
    with pytest.raises(ValueError):
        views.press_data(TicketAction.WHISTLE, 2 ** 63 - 1, views.WHISTLE_ITEM + "X" * 40)


# a whistle with an item


async def test_an_item_names_the_department_and_the_time_to_accept(store):
    world = await catalogue_world(store)
    ticket = await world.submit()
    worker = await world.actor(WORKER)
    whistled = await world.tickets.whistle(worker, ticket.id, item_code="MZ01")
    assert (whistled.department_code, whistled.whistle_item) == ("MZJ", "MZ01")
    assert whistled.due_kind == DueKind.ACCEPT
    assert whistled.due_at - whistled.due_from == 2 * HOUR  # the item's, not the urgency's
    event = (await store.tickets.events(ticket.id))[-1]
    assert (event.kind, event.actor_id, event.note, event.data) == (
        "whistled", WORKER, "县民政局 · 困难群众临时救助",
        {"department": "MZJ", "item": "MZ01", "points": 8})
    card = [i for i in await world.pending(DEPT_CHAT, "sendMessage") if i.ref][-1]
    assert t("zh-Hans", "whistle.card_item", category="民生保障", item="困难群众临时救助") \
        in card.payload["text"]
    # a new urgency keeps the item's time to accept
    urgent = await world.tickets.set_urgency(worker, ticket.id, "urgent")
    assert urgent.due_at - urgent.due_from == 2 * HOUR
    # a decline returns it to the grid without its item
    declined = await world.tickets.decline(await world.actor(LIAISON), ticket.id, "不归我们")
    assert (declined.department_code, declined.whistle_item) == (None, None)


async def test_an_item_without_deadline_or_points_and_a_free_whistle(store):
    world = await catalogue_world(store)
    worker = await world.actor(WORKER)
    first = await world.submit()
    whistled = await world.tickets.whistle(worker, first.id, item_code="MZ02")
    span = world.tickets.span(whistled.urgency, DueKind.ACCEPT)
    assert whistled.due_at - whistled.due_from == span
    assert (await store.tickets.events(first.id))[-1].data == {"department": "MZJ",
                                                               "item": "MZ02"}
    second = await world.submit(text="另一件事")
    whistled = await world.tickets.whistle(worker, second.id, "CGJ")  # "Other"
    assert whistled.whistle_item is None
    assert (await store.tickets.events(second.id))[-1].data == {"department": "CGJ"}


# the whistler's rating


async def whistled_and_resolved(world: TicketWorld, item: str = "MZ01") -> int:
    ticket = await world.submit()
    await world.tickets.whistle(await world.actor(WORKER), ticket.id, item_code=item)
    liaison = await world.actor(LIAISON)
    await world.tickets.accept(liaison, ticket.id)
    await world.deliver()
    await world.tickets.resolve(liaison, ticket.id, "已救助")
    return ticket.id


async def test_the_whistler_is_asked_to_rate_once_the_department_resolved(store):
    world = await catalogue_world(store)
    ticket_id = await whistled_and_resolved(world)
    asks = await world.pending(WORKER, "sendMessage")
    assert len(asks) == 1
    text = asks[0].payload["text"]
    assert text.startswith(t("zh-Hans", "whistle.rate_ask", id=ticket_id, title="楼道灯坏了",
                             department="县民政局"))
    assert asks[0].payload["reply_markup"]["inline_keyboard"] == [[
        {"text": f"⭐ {n}", "callback_data": f"t:wr:{ticket_id}:{n}"} for n in range(1, 6)]]
    # a whistle the grid resolves itself, before the department accepted: nothing to rate
    await world.deliver()
    other = await world.submit(text="另一件事")
    worker = await world.actor(WORKER)
    await world.tickets.whistle(worker, other.id, item_code="MZ01")
    await world.tickets.resolve(worker, other.id, "网格已处理")
    assert await world.pending(WORKER, "sendMessage") == []
    await refused(store, world.tickets.rate_department(worker, other.id, 5, WORKER, 1),
                  "whistle.not_rateable")


async def test_only_the_whistler_rates_once_and_may_comment(store):
    world = await catalogue_world(store)
    ticket_id = await whistled_and_resolved(world)
    await world.deliver()
    staff, worker = await world.actor(STAFF), await world.actor(WORKER)
    await refused(store, world.tickets.rate_department(staff, ticket_id, 5, STAFF, 1),
                  "whistle.rating_not_yours")
    await refused(store, world.tickets.rate_department(worker, ticket_id, 6, WORKER, 1),
                  "button.stale")
    await world.tickets.rate_department(worker, ticket_id, 4, WORKER, 1234)
    whistle = [e for e in await store.tickets.events(ticket_id) if e.kind == "whistled"][-1]
    rating = await store.whistles.rating(whistle.id)
    assert rating is not None
    assert (rating.department_code, rating.item_code, rating.points, rating.rater_id,
            rating.stars, rating.comment) == ("MZJ", "MZ01", 8, WORKER, 4, None)
    assert (await store.tickets.events(ticket_id))[-1].kind == "department_rated"
    await refused(store, world.tickets.rate_department(worker, ticket_id, 5, WORKER, 1234),
                  "whistle.already_rated")
    # a reply to the rated message is the comment
    done = await world.tickets.answer_prompt(worker, WORKER, 1234, "响应很及时")
    assert done is not None and done[0] == TicketAction.COMMENT_DEPARTMENT
    assert (await store.whistles.rating(whistle.id)).comment == "响应很及时"
    last = (await store.tickets.events(ticket_id))[-1]
    assert (last.kind, last.note) == ("department_commented", "响应很及时")
    assert await world.tickets.answer_prompt(worker, WORKER, 1234, "again") is None


# points and the board


def event(ticket_id: int, kind: str, at: float, **data: object) -> DepartmentEvent:
    return DepartmentEvent(ticket_id=ticket_id, kind=kind, at=at, note=None, data=data or None)


def rating(ticket_id: int, department: str, stars: int, at: float,
           points: int | None = None) -> WhistleRating:
    return WhistleRating(whistle_event=ticket_id, ticket_id=ticket_id,
                         department_code=department, item_code=None, points=points,
                         rater_id=WORKER, stars=stars, at=at)


def test_an_items_points_when_accepted_in_time_and_resolved():
    events = [
        event(1, "whistled", 10, department="MZJ", item="MZ01", points=8),
        event(1, "accepted", 11), event(1, "resolved", 12),              # +8
        event(2, "whistled", 10, department="MZJ", item="MZ01", points=8),
        event(2, "overdue", 11, due="accept"), event(2, "accepted", 12),  # −2 −1
        event(2, "resolved", 13),                                         # +2 (late)
        event(3, "whistled", 10, department="MZJ", item="MZ02"),          # no points
        event(3, "accepted", 11), event(3, "resolved", 12),               # +3 +2
        event(4, "whistled", 10, department="CGJ", item="CS01", points=5),
        event(4, "accepted", 11),                                         # 0 until resolved
        event(5, "whistled", 10, department="CGJ", item="CS01", points=5),
        event(5, "declined", 11),                                         # −1
    ]
    scores = score_departments(events, 0, 50, {"MZJ": "县民政局", "CGJ": "县城管局"})
    mzj, cgj = scores["MZJ"], scores["CGJ"]
    assert mzj.points == 8 - 2 - 1 + 2 + 5
    assert {k: n for k, n in mzj.counts.items() if n} == {
        "in_time": 2, "resolved": 3, "late": 1, "missed": 1}
    assert dict(mzj.items) == {"MZ01": 2, "MZ02": 1}
    assert (cgj.points, dict(cgj.items)) == (-1, {})
    assert {k: n for k, n in cgj.counts.items() if n} == {"in_time": 1, "declined": 1}


def test_the_staff_rating_is_a_third_of_the_score():
    events = [event(1, "whistled", 10, department="MZJ", item="MZ01", points=9),
              event(1, "accepted", 11), event(1, "resolved", 12),
              event(2, "whistled", 10, department="CGJ"),
              event(2, "accepted", 11), event(2, "resolved", 12)]
    names = {"MZJ": "县民政局", "CGJ": "县城管局"}
    unrated = score_departments(events, 0, 50, names)
    assert unrated["MZJ"].score == pytest.approx(2 / 3 * 9)
    assert unrated["CGJ"].score == pytest.approx(2 / 3 * 5)
    assert unrated["MZJ"].rating is None
    ratings = [rating(1, "MZJ", 5, 20, points=9), rating(2, "CGJ", 2, 20),
               rating(3, "CGJ", 4, 99)]  # given after the period: not in it
    scores = score_departments(events, 0, 50, names, ratings)
    assert scores["MZJ"].score == pytest.approx(9)  # full worth: a third from the rating
    assert scores["MZJ"].rating_points == pytest.approx(9)
    assert scores["CGJ"].score == pytest.approx(2 / 3 * 5 + 1 / 3 * (2 / 5 * 5))
    assert (scores["CGJ"].rating, scores["CGJ"].stars) == (2, [2])
    # a rating alone (the whistle scored in an earlier period) still counts
    later = score_departments(events, 15, 50, names, ratings)
    assert later["CGJ"].points == 0 and later["CGJ"].score == pytest.approx(2 / 3)


async def test_the_board_shows_the_score_the_rating_and_the_items(store):
    world = await catalogue_world(store)
    ticket_id = await whistled_and_resolved(world)
    boards = BoardService(store, world.tickets.outbox, world.tickets.settings)
    now = datetime.now(world.tickets.settings.tz)
    period = periods.current("year", now)
    scope = await city_scope(store)

    async def line() -> list[str]:
        board = await boards.board("departments", scope, period)
        return boards.text(board, "en").splitlines()[1:4]

    before = await line()
    assert before[1] == t("en", "board.line_department_score", score="5.3", points=8,
                          rated="0.0", rating="—", ratings=0)
    assert before[2] == t("en", "board.line_department_items", items="困难群众临时救助 ×1")
    world.clock.now = now.timestamp()
    await world.tickets.rate_department(await world.actor(WORKER), ticket_id, 4, WORKER, 1)
    after = await line()
    assert after[0] == before[0]
    assert after[1] == t("en", "board.line_department_score", score="7.5", points=8,
                         rated="6.4", rating="4.0", ratings=1)
