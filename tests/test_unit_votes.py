"""The residents' quarterly vote 群众评单 and the unit boards (SPEC §10) on a temporary store:
one vote post per building chat and quarter, one ballot per resident (a second tap changes
it), outsiders refused, the close after seven days once, and the score every board and
/units share."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.i18n import t
from bot.services import periods
from bot.services.boards import parse_board_args
from bot.services.scopes import unit_scope
from bot.services.unit_scores import months_held, unit_scores
from bot.services.unit_votes import OPEN_S, vote_data
from storage.models import Unit
from tests.support.services import (
    PROPERTY_UNIT,
    RESIDENT,
    STAFF,
    bind,
    build_services,
    refused,
    staffed_map,
)

NEIGHBOUR, CONTACT = 70, 71


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def services(store):
    await staffed_map(store)
    async with store.transaction():
        await store.map.upsert(PROPERTY_UNIT)
        await store.map.upsert(Unit(code="M02", kind="member", name="阳光社工",
                                    parent_code="C01", member_type="social", position=1))
        await store.map.upsert(Unit(code="E010101", kind="estate", name="阳光小区",
                                    parent_code="G0101", property_code="M01"))
        await store.people.ensure(NEIGHBOUR)
        await store.people.set_building(NEIGHBOUR, "B01010102")
    built = build_services(store)
    built.schedule.votes.clock = Clock()
    return built


def opening(services) -> datetime:
    return datetime(2027, 1, 1, 10, 0, tzinfo=services.settings.tz)


async def test_one_vote_per_building_chat_ballots_change_and_outsiders_are_refused(
        services, store):
    votes = services.schedule.votes
    await bind(store, "B01010101", -201)
    await bind(store, "B01010102", -202)
    await bind(store, "B01020101", -203)        # 月亮小区 names no property firm
    now = opening(services)
    votes.clock.now = now.timestamp() + 60
    async with store.transaction():
        assert await votes.open_quarter("2027-Q1", now) == 2
    async with store.transaction():
        assert await votes.open_quarter("2027-Q1", now) == 0   # once per building and quarter
    posts = [i for i in await store.outbox.pending() if i.method == "sendMessage"]
    assert sorted(i.chat_id for i in posts) == [-202, -201]
    post = next(i for i in posts if i.chat_id == -201)
    assert [b["text"] for b in post.payload["reply_markup"]["inline_keyboard"][0]] == [
        f"⭐ {n}" for n in range(1, 6)]
    vote = await store.votes.open("2027-Q1", "B01010101", "M01", -201, 0, 0, 0)
    assert vote is None
    vote_id = int(post.ref.split(":")[1])
    assert (await store.votes.get(vote_id)).closes_at == now.timestamp() + OPEN_S

    assert await votes.cast(RESIDENT, "B01010101", vote_data(vote_id, 4)) == (True, 4)
    assert await votes.cast(RESIDENT, "B01010101", vote_data(vote_id, 2)) == (False, 2)
    tally = await store.votes.tally([vote_id])
    assert (tally.votes, tally.stars) == (1, 2)          # changed, never added
    await refused(store, votes.cast(NEIGHBOUR, "B01010102", vote_data(vote_id, 5)),
                  "board_units.not_resident")
    await refused(store, votes.cast(STAFF, None, vote_data(vote_id, 5)),
                  "board_units.not_resident")
    await refused(store, votes.cast(RESIDENT, "B01010101", "uv:99:5"), "button.stale")

    # the close: not before seven days; then once, with the result posted
    assert await votes.close_due(now.timestamp() + OPEN_S - 1) == 0
    assert await votes.close_due(now.timestamp() + OPEN_S) == 2
    assert await votes.close_due(now.timestamp() + OPEN_S + 3600) == 0
    texts = [i.payload["text"] for i in await store.outbox.pending()
             if i.method == "sendMessage" and i.chat_id == -201]
    result = t("zh-Hans", "board_units.vote_result", period="2027-Q1", unit="安居物业 (M01)",
               average="2.0", count=1, points="20.0")
    assert texts.count(result) == 1
    none = t("zh-Hans", "board_units.vote_result_none", period="2027-Q1", unit="安居物业 (M01)",
             count=0)
    assert none in [i.payload["text"] for i in await store.outbox.pending()
                    if i.chat_id == -202]
    await refused(store, votes.cast(RESIDENT, "B01010101", vote_data(vote_id, 5)),
                  "board_units.vote_over")
    # erased (SPEC §14): the ballot stays counted, by no one
    async with store.transaction():
        await store.votes.erase_person(RESIDENT, -7)
    assert await store.votes.ballot(vote_id, RESIDENT) is None
    assert await store.votes.ballot(vote_id, -7) == 2
    assert (await store.votes.tally([vote_id])).votes == 1


async def test_the_score_counts_hours_slots_resources_meetings_and_the_vote(services, store):
    tz = services.settings.tz
    quarter = periods.quarter("2027-Q1", tz)
    start, end = quarter.span
    jan = datetime(2027, 1, 10, tzinfo=tz).timestamp()
    async with store.transaction():
        request = await store.units.request_resource(
            await store.units.add_resource("M02", "venue", "活动室", 1, CONTACT, jan),
            None, None, STAFF, jan)
        await store.units.answer_request(request, "accepted", None, jan + 60)
        post = await store.units.create_post("G0101", "C01", "消杀", 2, STAFF, jan)
        await store.units.claim(post, "u:M02", CONTACT, "M02", "holding", jan)
        feb = datetime(2027, 2, 15, tzinfo=tz).timestamp()
        await store.units.set_holder_state(post, "u:M02", "released", "holding", feb)
        vote = await store.votes.open("2027-Q1", "B01010101", "M01", -201, 0, jan, jan + 1)
        await store.votes.cast(vote.id, RESIDENT, 5, jan)
        await store.votes.cast(vote.id, NEIGHBOUR, 4, jan)
        await store.votes.close(vote.id, jan + 2)
        for late in (False, True):     # a meeting on time (its two people count once), one late
            meeting = await store.meetings.create(
                kind="joint", unit_code="C01", grid_code=None, community_code="C01",
                title="联席会议", place="", agenda="", starts_at=jan, ends_at=jan + 3600,
                organiser_id=STAFF, remind_at=None, offer_at=None, wrap_at=None,
                source_update_id=None)
            for person in (CONTACT, CONTACT + 1):
                await store.meetings.sign_in(meeting.id, person, "M02", jan, late)
    scores = await unit_scores(store, ["M01", "M02"], start, end, end, tz)
    assert (scores["M01"].votes, scores["M01"].vote_average, scores["M01"].score) == (
        2, 4.5, 45.0)
    # a slot held from 10 January to 15 February: two slot-months; a resource; a meeting
    # attended on time
    assert (scores["M02"].slot_months, scores["M02"].resources, scores["M02"].meetings,
            scores["M02"].score) == (2, 1, 1, 9.0)
    assert months_held(jan, None, start, end, tz) == 3
    assert months_held(end, None, start, end, tz) == 0
    assert months_held(start - 86400, start + 1, start, end, tz) == 1

    scope = await unit_scope(store, await store.map.get("C01"))
    board = await services.boards.board("property", scope, quarter)
    assert [line.name for line in board.lines] == ["安居物业 (M01)"]
    everyone = await services.boards.board("units", scope, quarter)
    assert [line.name for line in everyone.lines] == ["安居物业 (M01)", "阳光社工 (M02)"]
    text = services.boards.text(board, "en")
    assert t("en", "board_units.line", rank=1, name="安居物业 (M01)", score="45.0", hours="0",
             slots=0, resources=0, meetings=0,
             vote=t("en", "board_units.vote_figure", average="4.5", count=2)) in text
    assert parse_board_args(["property", "month"]) == (("property",), "month")

    # posted with the other boards, once per period (the board job's claims)
    await bind(store, "C01", -100)
    async with store.transaction():
        assert await services.boards.post_quarter("2027-Q1") == 1
        assert await services.boards.post_quarter("2027-Q1") == 0
    posted = "\n".join(i.payload["text"] for i in await store.outbox.pending()
                       if i.chat_id == -100)
    span = t("zh-Hans", "board.span_quarter", period="2027-Q1")
    for key in ("board_units.title_property", "board_units.title_social",
                "board_units.title_units"):
        assert t("zh-Hans", key, scope="欣山社区", span=span) in posted


async def test_units_lists_this_quarters_score_from_the_same_function(services, store):
    tz = services.settings.tz
    now = datetime.now(tz)
    start, end = periods.current("quarter", now).span
    async with store.transaction():
        vote = await store.votes.open("now", "B01010101", "M01", -201, 0, start, start + 1)
        await store.votes.cast(vote.id, RESIDENT, 3, start)
        await store.votes.close(vote.id, max(start, now.timestamp() - 1))
    lines = await services.units.unit_lines(await services.actor(STAFF), None, now)
    assert [(line.unit.code, line.score) for line in lines] == [("M01", 30.0), ("M02", 0.0)]
    expected = await unit_scores(store, ["M01"], start, end, now.timestamp(), tz)
    assert expected["M01"].score == 30.0
