"""Leaderboards 排行榜 (SPEC §6) on a temporary store: who may see them and which scope,
ranking and ties, the top ten, the texts, and the quarterly posts to staff chats (once each,
in the chat's language). The month's figures themselves are checked in test_report."""

from __future__ import annotations

import pytest

from bot.i18n import t, tn
from bot.services import periods
from bot.services.boards import KINDS, TOP, UNIT_KINDS, score_departments
from bot.services.outbox import Priority
from bot.services.scopes import city_scope, unit_scope
from bot.textsplit import LIMIT, plain_text, visible_length
from storage.models import DepartmentEvent
from tests.support.harness import grant
from tests.support.schedules import TZ, add_event, add_horn, add_ticket, at
from tests.support.services import (
    ADMIN,
    HEAD,
    LEADER,
    LIAISON,
    RESIDENT,
    STAFF,
    VOLUNTEER,
    WORKER,
    bind,
    build_services,
    queued,
    refused,
    staffed_map,
    texts_to,
)

NOW = at(2026, 11, 20, 12)
Q4 = periods.quarter("2026-Q4", TZ)
C01_CHAT, G0101_CHAT, G0102_CHAT, B1_CHAT = -200, -201, -202, -210


@pytest.fixture
async def services(store):
    await staffed_map(store)
    return build_services(store)


async def named(store, user_id, name, points=0):
    async with store.transaction():
        await store.people.ensure(user_id)
        await store.db.execute("UPDATE people SET first_name = ?, points = ? WHERE user_id = ?",
                               (name, points, user_id))


async def board(services, user_id, *args):
    return await services.schedule.board(await services.actor(user_id), list(args), NOW, "en")


@pytest.mark.parametrize("user_id", [HEAD, LIAISON, VOLUNTEER, RESIDENT])
async def test_only_grid_staff_and_up_see_the_boards(services, user_id):
    await refused(services.store, board(services, user_id), "board.not_allowed")


@pytest.mark.parametrize("args", [["everything"], ["party", "party"], ["month", "year"]])
async def test_bad_arguments_are_answered_with_the_usage(services, args):
    refusal = await refused(services.store, board(services, WORKER, *args), "board.usage")
    assert refusal.values == {"kinds": " | ".join(KINDS + UNIT_KINDS)}


async def test_the_board_covers_the_askers_scope_and_the_chosen_span(services):
    text = await board(services, WORKER, "volunteers", "month")
    assert text == "\n".join([
        t("en", "board.title_volunteers", scope="第一网格",
          span=t("en", "board.span_month", period="2026-11")),
        t("en", "board.empty")])
    text = await board(services, ADMIN, "departments", "year")
    assert text == "\n".join([
        t("en", "board.title_departments", scope=t("en", "scope.city"),
          span=t("en", "board.span_year", period="2026")),
        t("en", "board.empty"), t("en", "board.department_rule"),
        t("en", "board.department_weighting")])
    # all four, this quarter, when no kind is named
    text = await board(services, STAFF)
    assert text.split("\n\n") == [
        services.boards.text(await services.boards.board(
            kind, await unit_scope(services.store, await services.store.map.get("C01")), Q4),
            "en") for kind in KINDS]


async def test_volunteers_rank_by_hours_then_points_and_the_top_ten_show(services):
    store = services.store
    hours = {100 + n: float(n) for n in range(1, 13)}          # 101: 1 h … 112: 12 h
    hours[120] = hours[121] = 5.0                              # ties with 105
    for user_id in hours:
        await grant(store, user_id, "volunteer", "B01010101")
        await named(store, user_id, f"V{user_id}", points=50 if user_id == 121 else 10)
    await add_horn(store, grid="G0101", created=at(2026, 10, 5, 9),
                   confirmed=at(2026, 10, 5, 18), hours=hours)
    result = await services.boards.board("volunteers", await city_scope(store), Q4)
    assert len(result.lines) == TOP
    assert [line.name for line in result.lines] == [
        "V112", "V111", "V110", "V109", "V108", "V107", "V106", "V121", "V105", "V120"]
    assert result.lines[0].values == {"hours": "12", "points": 10}
    assert services.boards.text(result, "zh-Hans").splitlines()[1] == tn(
        "zh-Hans", "board.line_volunteers", 10, rank=1, name="V112", hours="12", points=10)


async def test_hours_outside_the_scope_or_period_do_not_count(services):
    store = services.store
    await grant(store, 130, "volunteer", "B01020101")
    await named(store, 130, "远")
    await add_horn(store, grid="G0102", created=at(2026, 10, 5, 9),
                   confirmed=at(2026, 10, 5, 18), hours={130: 3})
    await add_horn(store, grid="G0101", created=at(2026, 9, 5, 9),
                   confirmed=at(2026, 9, 5, 18), hours={130: 2})
    grid1 = await unit_scope(store, await store.map.get("G0101"))
    assert (await services.boards.board("volunteers", grid1, Q4)).lines == ()
    grid2 = await unit_scope(store, await store.map.get("G0102"))
    assert [(line.name, line.values["hours"]) for line in (
        await services.boards.board("volunteers", grid2, Q4)).lines] == [("远", "3")]


async def test_buildings_rank_by_resolved_then_rating(services):
    store = services.store
    for building, rating in (("B01010101", "3"), ("B01010102", "5"), ("B01010102", None),
                             ("B01020101", "4")):
        ticket = await add_ticket(store, building=building, grid="G0101"
                                  if building != "B01020101" else "G0102",
                                  created=at(2026, 10, 2, 9))
        await add_event(store, ticket, "resolved", at(2026, 10, 3, 9))
        if rating:
            await add_event(store, ticket, "rated", at(2026, 10, 3, 10), note=rating)
    result = await services.boards.board("buildings", await city_scope(store), Q4)
    assert [(line.name, line.values) for line in result.lines] == [
        ("2栋 (B01010102)", {"resolved": 2, "rating": "5.0", "ratings": 1}),
        ("3栋 (B01020101)", {"resolved": 1, "rating": "4.0", "ratings": 1}),
        ("1栋 (B01010101)", {"resolved": 1, "rating": "3.0", "ratings": 1})]


def test_a_department_is_judged_once_per_whistle_by_its_outcome():
    def event(ticket_id, kind, at_, **data):
        return DepartmentEvent(ticket_id=ticket_id, kind=kind, at=at_, note=None,
                               data=data or None)

    events = [
        event(1, "whistled", 10, department="MZJ"), event(1, "rejected", 11),
        event(1, "accepted", 12),                                  # not its whistle any more
        event(2, "whistled", 10, department="MZJ"),
        event(2, "overdue", 20, due="accept"), event(2, "declined", 21),   # missed only
        event(3, "whistled", 10, department="CGJ"), event(3, "accepted", 11),
        event(3, "declined", 12),                                  # after accepting: nothing
        event(4, "whistled", 10, department="CGJ"), event(4, "accepted", 99),  # outside
    ]
    scores = score_departments(events, 0, 50, {"MZJ": "县民政局", "CGJ": "县城管局"})
    assert {code: (s.points, {k: n for k, n in s.counts.items() if n})
            for code, s in scores.items()} == {
        "MZJ": (-2, {"missed": 1}), "CGJ": (3, {"in_time": 1})}


async def test_the_quarters_boards_go_to_community_and_grid_staff_chats_once(services):
    store = services.store
    await bind(store, "C01", C01_CHAT, locale="en")
    await bind(store, "G0101", G0101_CHAT)
    await bind(store, "G0102", G0102_CHAT, active=False)
    await bind(store, "B01010101", B1_CHAT)
    async with store.transaction():
        assert await services.boards.post_quarter("2026-Q4") == 2
    assert sorted({i.chat_id for i in await queued(store)}) == [G0101_CHAT, C01_CHAT]
    c01 = await unit_scope(store, await store.map.get("C01"))
    assert await texts_to(store, C01_CHAT) == [await services.boards.all_text(c01, Q4, "en")]
    g0101 = await unit_scope(store, await store.map.get("G0101"))
    assert await texts_to(store, G0101_CHAT) == [
        await services.boards.all_text(g0101, Q4, "zh-Hans")]
    assert all(i.quiet and i.priority == Priority.ROUTINE for i in await queued(store))
    async with store.transaction():
        assert await services.boards.post_quarter("2026-Q4") == 0
    assert len(await queued(store)) == 2


async def test_a_long_board_is_split_never_cut(services):
    store = services.store
    await bind(store, "C01", C01_CHAT)
    long_name = "长" * 380
    hours = {}
    for n in range(TOP):
        await grant(store, 300 + n, "volunteer", "B01010101")
        await named(store, 300 + n, f"{long_name}{n}")
        hours[300 + n] = float(n + 1)
    await add_horn(store, grid="G0101", created=at(2026, 10, 5, 9),
                   confirmed=at(2026, 10, 5, 18), hours=hours)
    async with store.transaction():
        assert await services.boards.post_quarter("2026-Q4") == 1
    parts = await texts_to(store, C01_CHAT)
    assert len(parts) > 1 and all(visible_length(p) <= LIMIT for p in parts)
    whole = await services.boards.all_text(
        await unit_scope(store, await store.map.get("C01")), Q4, "zh-Hans")
    assert "".join(plain_text(p) for p in parts).replace("\n", "") == \
        plain_text(whole).replace("\n", "")


async def test_leaders_see_the_same_board_as_workers_of_their_grid(services):
    assert await board(services, LEADER, "party") == await board(services, WORKER, "party")
