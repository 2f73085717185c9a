"""The residents' quarterly vote 群众评单 and the property board (SPEC §10) end to end: the
scheduled run posts one vote in the building chat, residents vote and change their vote, a
neighbour from another building is refused, the vote closes after seven days with its result
posted once, and /board property ranks the firm by it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.i18n import t
from bot.services import periods
from bot.services.unit_votes import JOB
from storage.models import Unit
from tests.support.harness import grant, seed_map
from tests.support.services import PROPERTY_UNIT
from tests.support.texts import plain, shown

pytestmark = pytest.mark.asyncio

TZ = ZoneInfo("Asia/Shanghai")
NEW_YEAR = datetime(2027, 1, 1, 9, 0, tzinfo=TZ)


async def test_a_quarterly_vote_with_a_changed_vote_a_refused_outsider_and_the_board(harness):
    travel = time_machine.travel(NEW_YEAR, tick=True)
    clock = travel.start()
    try:
        await _scenario(harness, clock)
    finally:
        travel.stop()


async def _scenario(harness, clock) -> None:
    emu = harness.emu
    staff = emu.add_user(first_name="Staff", language_code="en")
    residents = [emu.add_user(first_name=f"R{i}", language_code="en") for i in range(2)]
    outsider = emu.add_user(first_name="Neighbour", language_code="en")
    await harness.start_bot()
    store = harness.store
    await seed_map(store)
    async with store.transaction():
        await store.map.upsert(PROPERTY_UNIT)
        await store.map.upsert(Unit(code="E010101", kind="estate", name="阳光小区",
                                    parent_code="G0101", property_code="M01"))
        for resident in residents:
            await store.people.ensure(resident.id)
            await store.people.set_building(resident.id, "B01010101")
        await store.people.ensure(outsider.id)
        await store.people.set_building(outsider.id, "B01010102")
    await grant(store, staff.id, "community_staff", "C01")
    for user in (staff, *residents, outsider):
        await harness.say(user, "/start")
    building = await harness.bound_group("1栋楼事群", "B01010101", staff,
                                         [staff, *residents, outsider])

    scheduler = harness.runtime.scheduler
    clock.move_to(datetime(2027, 1, 1, 10, 0, 5, tzinfo=TZ))
    ran = await scheduler.run_due()
    assert (JOB, "2027-Q1") in {(r.job, r.period) for r in ran}
    assert JOB not in {r.job for r in await scheduler.run_due()}      # once per period
    await harness.settle()
    await harness.stop_bot()                   # a restart finds it done: nothing posted again
    await harness.start_bot()
    scheduler = harness.runtime.scheduler
    assert JOB not in {r.job for r in await scheduler.run_due()}
    await harness.settle()
    posts = [m for m in emu.messages(building.id) if m.buttons
             and m.buttons[0][0].callback_data.startswith("uv:")]
    assert len(posts) == 1
    post = posts[0]
    assert [b.text for b in post.buttons[0]] == [f"⭐ {n}" for n in range(1, 6)]
    vote_id = int(post.buttons[0][0].callback_data.split(":")[1])
    closes = (datetime(2027, 1, 1, 10, 0, 5, tzinfo=TZ) + timedelta(days=7)).strftime(
        "%Y-%m-%d %H:%M")
    values = {"period": "2027-Q1", "unit": "安居物业 (M01)", "building": "1栋 (B01010101)",
              "closes": closes}
    assert post.text == shown("zh-Hans", "board_units.vote_post", count=0, **values)

    one, two = residents
    assert (await harness.press(one, post, f"uv:{vote_id}:5")).text == plain(
        t("en", "board_units.voted", stars=5))
    assert (await harness.press(two, post, f"uv:{vote_id}:3")).text == plain(
        t("en", "board_units.voted", stars=3))
    assert (await harness.press(two, post, f"uv:{vote_id}:4")).text == plain(
        t("en", "board_units.vote_changed", stars=4))
    refused = await harness.press(outsider, post, f"uv:{vote_id}:1")
    assert refused.text == plain(t("en", "board_units.not_resident", building="1栋"))
    await harness.settle()
    shown_now = next(m for m in emu.messages(building.id) if m.message_id == post.message_id)
    # the count, not the average, while it is open
    assert shown_now.text == shown("zh-Hans", "board_units.vote_post", count=2, **values)

    # seven days on: closed by the scheduler's run, the result posted once
    clock.move_to(datetime(2027, 1, 8, 10, 0, 10, tzinfo=TZ))
    await scheduler.run_due()
    await scheduler.run_due()
    await harness.settle()
    result = shown("zh-Hans", "board_units.vote_result", period="2027-Q1",
                   unit="安居物业 (M01)", average="4.5", count=2, points="45.0")
    assert [m.text for m in emu.messages(building.id)].count(result) == 1
    closed = next(m for m in emu.messages(building.id) if m.message_id == post.message_id)
    assert closed.text == shown("zh-Hans", "board_units.vote_post_closed", count=2,
                                **{k: v for k, v in values.items() if k != "closes"})
    assert not closed.buttons                 # no more taps (a stale one is refused: unit test)

    board = (await harness.say(staff, "/board property"))[-1].text
    span = t("en", "board.span_quarter", period=periods.quarter_key(
        datetime(2027, 1, 8, tzinfo=TZ)))
    assert shown("en", "board_units.title_property", scope="欣山社区", span=span) in board
    assert shown("en", "board_units.line", rank=1, name="安居物业 (M01)", score="45.0",
                 hours="0", slots=0, resources=0, meetings=0,
                 vote=t("en", "board_units.vote_figure", average="4.5", count=2)) in board
