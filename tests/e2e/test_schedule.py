"""Schedules and reports through the Bot API emulator: /theme, /report, /board, /patrol and
a scheduled run that posts, pins and uploads files."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from bot.i18n import t
from bot.services import periods
from bot.services.boards import KINDS, UNIT_KINDS
from tests.support.harness import grant, seed_map
from tests.support.texts import before, label, line_of, shown

pytestmark = pytest.mark.asyncio


class World:
    """Community staff (English), a grid worker and a resident, a grid chat, a building chat."""

    def __init__(self, harness):
        self.h = harness
        emu = harness.emu
        self.staff = emu.add_user(first_name="Staff", language_code="en")
        self.worker = emu.add_user(first_name="网格员", language_code="zh-hans")
        self.resident = emu.add_user(first_name="居民", language_code="zh-hans")

    async def setup(self):
        h = self.h
        await h.start_bot()
        await seed_map(h.store)
        await grant(h.store, self.staff.id, "community_staff", "C01")
        await grant(h.store, self.worker.id, "grid_worker", "G0101")
        async with h.store.transaction():
            await h.store.people.ensure(self.resident.id)
            await h.store.people.set_building(self.resident.id, "B01010101")
        for user in (self.staff, self.worker, self.resident):
            await h.say(user, "/start")
        self.grid_chat = await h.bound_group("第一网格工作群", "G0101", self.worker,
                                             [self.worker])
        self.building_chat = await h.bound_group("1栋楼事群", "B01010101", self.staff,
                                                 [self.resident, self.staff])

    def now(self) -> datetime:
        return self.h.runtime.scheduler.now()


async def test_theme_answers_bad_input_refuses_residents_and_sets_a_good_one(harness):
    w = World(harness)
    await w.setup()
    say = harness.say
    current = periods.month_key(w.now())
    later = periods.shift_month(current, 2)
    earlier = periods.shift_month(current, -1)
    assert shown("en", "theme.bad_month", text="2026-13") in (
        await say(w.staff, "/theme 2026-13 x"))[-1].text
    assert shown("en", "theme.bad_month", text="next-month") in (
        await say(w.staff, "/theme next-month x"))[-1].text
    assert shown("en", "theme.past_month", month=earlier, current=current) in (
        await say(w.staff, f"/theme {earlier} x"))[-1].text
    assert shown("en", "theme.empty", month=later) in (
        await say(w.staff, f"/theme {later}"))[-1].text
    assert shown("en", "theme.not_community", code="G0101") in (
        await say(w.staff, f"/theme {later} G0101 x"))[-1].text
    refused = (await say(w.resident, f"/theme {later} 我来定主题"))[-1].text
    assert shown("zh-Hans", "theme.not_allowed") in refused
    assert (await say(w.worker, f"/theme {later} x", chat=w.grid_chat))[-1].text.startswith(
        shown("zh-Hans", "theme.not_allowed"))
    assert await harness.store.schedules.theme("C01", later) is None

    done = (await say(w.staff, f"/theme {later} 关爱独居老人 <b>&</b> 邻里守望"))[-1].text
    assert done == shown("en", "theme.set", month=later, units="欣山社区 (C01)")
    theme = await harness.store.schedules.theme("C01", later)
    assert theme.text == "关爱独居老人 <b>&</b> 邻里守望"
    text = (await say(w.resident, "/theme"))[-1].text
    assert text == "\n".join([shown("zh-Hans", "theme.current_title", month=current),
                              shown("zh-Hans", "theme.none_line", unit="欣山社区")])
    assert "/theme YYYY-MM" not in text
    assert shown("zh-Hans", "theme.how_to_set", month=current) not in text
    assert shown("en", "theme.how_to_set", month=current) in (
        await say(w.staff, "/theme"))[-1].text


async def test_report_answers_with_text_chart_and_workbook(harness):
    w = World(harness)
    await w.setup()
    said = await harness.say(w.worker, "/patrol 东门 消防通道畅通", chat=w.grid_chat)
    recorded = said[-1].text
    assert before("zh-Hans", "patrol.recorded", "at", grid="第一网格", code="G0101") in recorded
    assert line_of("zh-Hans", "patrol.recorded", "location", location="东门") in recorded
    assert line_of("zh-Hans", "patrol.recorded", "note", note="消防通道畅通") in recorded
    assert line_of("zh-Hans", "patrol.recorded", "count", count=1) in recorded

    messages = await harness.say(w.worker, "/report", chat=w.grid_chat)
    kinds = [m.kind for m in messages]
    assert kinds == ["text", "photo", "document"], kinds
    text, photo, document = messages
    month = periods.month_key(w.now())
    assert line_of("zh-Hans", "report.title_so_far", "scope", month=month,
                   scope="第一网格") in text.text
    assert before("zh-Hans", "report.title_so_far", "until") in text.text
    assert label("zh-Hans", "report.numbers", "patrols", 1) in text.text
    assert photo.photo.startswith(b"\x89PNG")
    assert photo.text == shown("zh-Hans", "report.chart_caption", month=month)
    assert document.file_name == f"gridhorn-report-{month}.xlsx"
    book = load_workbook(io.BytesIO(document.document))
    summary, patrols = t("zh-Hans", "xlsx.sheet_summary"), t("zh-Hans", "xlsx.sheet_patrols")
    assert book.sheetnames == [summary, t("zh-Hans", "xlsx.sheet_tickets"), patrols,
                               t("zh-Hans", "xlsx.sheet_redemptions")]
    assert book[summary]["A5"].value == "G0101" and book[summary]["L5"].value == 1
    assert book[patrols]["D2"].value == "东门"

    # community staff in English, for a past month without data: zeros, not an error
    messages = await harness.say(w.staff, "/report 2020-01")
    assert [m.kind for m in messages] == ["text", "photo", "document"]
    assert line_of("en", "report.numbers", "received", received=0, resolved=0,
                   overdue=0) in messages[0].text
    assert "第一网格" in messages[0].text and "第二网格" in messages[0].text
    english = load_workbook(io.BytesIO(messages[2].document))
    summary = t("en", "xlsx.sheet_summary")
    assert english[summary]["D5"].value == 0
    assert english[summary]["B7"].value == t("en", "xlsx.total")

    assert shown("en", "report.bad_month", text="2020-1") in (
        await harness.say(w.staff, "/report 2020-1"))[-1].text
    future = periods.shift_month(month, 1)
    assert shown("en", "report.future_month", month=future) in (
        await harness.say(w.staff, f"/report {future}"))[-1].text


async def test_board_and_patrol_refuse_residents_and_check_their_words(harness):
    w = World(harness)
    await w.setup()
    say = harness.say
    for command, words in (("/report", shown("zh-Hans", "report.not_allowed")),
                           ("/board", shown("zh-Hans", "board.not_allowed")),
                           ("/patrol 东门", shown("zh-Hans", "patrol.not_allowed"))):
        answers = await say(w.resident, command)
        assert [m.kind for m in answers] == ["text"] and words in answers[0].text, command
    assert await harness.store.schedules.patrols(None, 0, 4e9) == []

    board = (await say(w.worker, "/board"))[-1].text
    span = t("zh-Hans", "board.span_quarter", period=periods.quarter_key(w.now()))
    for title in ("board.title_volunteers", "board.title_party", "board.title_buildings",
                  "board.title_departments"):
        assert shown("zh-Hans", title, scope="第一网格", span=span) in board
    one = (await say(w.staff, "/board departments month"))[-1].text
    span = t("en", "board.span_month", period=periods.month_key(w.now()))
    assert shown("en", "board.title_departments", scope="欣山社区", span=span) in one
    assert shown("en", "board.title_volunteers", scope="欣山社区", span=span) not in one
    assert shown("en", "board.department_rule") in one
    assert shown("en", "board.usage", kinds=" | ".join(KINDS + UNIT_KINDS)) in (
        await say(w.staff, "/board everything"))[-1].text

    # community staff cover two grids: they name one, or patrol from a bound chat
    assert shown("en", "patrol.which_grid", grids="G0101, G0102") in (
        await say(w.staff, "/patrol 北门 一切正常"))[-1].text
    said = (await say(w.staff, "/patrol G0102 北门; 路灯不亮"))[-1].text
    assert before("en", "patrol.recorded", "at", grid="第二网格", code="G0102") in said
    assert line_of("en", "patrol.recorded", "location", location="北门") in said
    assert line_of("en", "patrol.recorded", "note", note="路灯不亮") in said
    said = (await say(w.staff, "/patrol", chat=w.building_chat))[-1].text
    assert before("en", "patrol.recorded", "at", grid="第一网格", code="G0101") in said
    assert line_of("en", "patrol.recorded", "location", location="—") in said
    refused = (await say(w.worker, "/patrol G0102 北门"))[-1].text
    assert shown("zh-Hans", "patrol.not_allowed_here", code="G0102") in refused


async def test_a_scheduled_run_posts_pins_and_uploads_through_the_outbox(harness):
    w = World(harness)
    await w.setup()
    await harness.say(w.staff, "/theme 2099-01 新春送温暖")
    scheduler = harness.runtime.scheduler
    tz = harness.runtime.settings.tz
    ran = await scheduler.run_due(datetime(2099, 1, 1, 10, 0, tzinfo=tz))
    assert {(r.job, r.period) for r in ran} >= {("theme", "2099-01"), ("report", "2098-12"),
                                                ("board", "2098-Q4")}
    assert await scheduler.run_due(datetime(2099, 1, 1, 10, 1, tzinfo=tz)) == []
    await harness.settle()

    building = harness.emu.messages(w.building_chat.id)
    theme = [m for m in building if "新春送温暖" in m.text]
    assert len(theme) == 1 and theme[0].pinned
    assert theme[0].text == shown("zh-Hans", "theme.post", month="2099-01", text="新春送温暖")
    short = [m for m in building
             if m.text.startswith(line_of("zh-Hans", "report.short", "grid", month="2098-12",
                                          grid="第一网格"))]
    assert len(short) == 1 and short[0].kind == "text"
    assert not [m for m in building if m.kind in ("photo", "document")]

    grid = harness.emu.messages(w.grid_chat.id)
    report = [m for m in grid if "2098-12" in m.text]
    assert [m.kind for m in report] == ["text", "photo", "document"]
    assert report[1].photo.startswith(b"\x89PNG")
    book = load_workbook(io.BytesIO(report[2].document))
    assert book[t("zh-Hans", "xlsx.sheet_summary")]["A1"].value == t(
        "zh-Hans", "xlsx.title", scope="第一网格", month="2098-12")
    party = shown("zh-Hans", "board.title_party", scope="第一网格",
                  span=t("zh-Hans", "board.span_quarter", period="2098-Q4"))
    assert any(party in m.text for m in grid)

    # a restart finds everything done: nothing is posted again
    await harness.stop_bot()
    await harness.start_bot()
    assert await harness.runtime.scheduler.run_due(
        datetime(2099, 1, 1, 10, 5, tzinfo=tz)) == []
    await harness.settle()
    assert len([m for m in harness.emu.messages(w.building_chat.id)
                if "新春送温暖" in m.text]) == 1
