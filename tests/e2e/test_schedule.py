"""Schedules and reports through the Bot API emulator: /theme, /report, /board, /patrol and
a scheduled run that posts, pins and uploads files."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from bot.services import periods
from tests.support.harness import grant, seed_map

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
        return self.h.runtime.services.scheduler.now()


async def test_theme_answers_bad_input_refuses_residents_and_sets_a_good_one(harness):
    w = World(harness)
    await w.setup()
    say = harness.say
    current = periods.month_key(w.now())
    later = periods.shift_month(current, 2)
    earlier = periods.shift_month(current, -1)
    assert "is not a month" in (await say(w.staff, "/theme 2026-13 x"))[-1].text
    assert "is not a month" in (await say(w.staff, "/theme next-month x"))[-1].text
    assert "is in the past" in (await say(w.staff, f"/theme {earlier} x"))[-1].text
    assert "Write the theme" in (await say(w.staff, f"/theme {later}"))[-1].text
    assert "is not a community" in (await say(w.staff, f"/theme {later} G0101 x"))[-1].text
    refused = (await say(w.resident, f"/theme {later} 我来定主题"))[-1].text
    assert "只有社区干部可以设置每月主题" in refused
    assert (await say(w.worker, f"/theme {later} x", chat=w.grid_chat))[-1].text.startswith(
        "只有社区干部")
    assert await harness.store.schedules.theme("C01", later) is None

    done = (await say(w.staff, f"/theme {later} 关爱独居老人 <b>&</b> 邻里守望"))[-1].text
    assert done == f"✅ Theme of {later} set for 欣山社区 (C01)."
    theme = await harness.store.schedules.theme("C01", later)
    assert theme.text == "关爱独居老人 <b>&</b> 邻里守望"
    shown = (await say(w.resident, "/theme"))[-1].text
    assert f"每月主题 · {current}" in shown and "欣山社区" in shown and "本月还没有主题" in shown
    assert "/theme YYYY-MM" not in shown and "设置主题" not in shown
    assert "To set it" in (await say(w.staff, "/theme"))[-1].text


async def test_report_answers_with_text_chart_and_workbook(harness):
    w = World(harness)
    await w.setup()
    said = await harness.say(w.worker, "/patrol 东门 消防通道畅通", chat=w.grid_chat)
    assert "巡查已登记：第一网格 (G0101)" in said[-1].text and "地点：东门" in said[-1].text
    assert "情况：消防通道畅通" in said[-1].text and "本月该网格已巡查 1 次" in said[-1].text

    messages = await harness.say(w.worker, "/report", chat=w.grid_chat)
    kinds = [m.kind for m in messages]
    assert kinds == ["text", "photo", "document"], kinds
    text, photo, document = messages
    month = periods.month_key(w.now())
    assert f"一月一公示 · {month} · 第一网格" in text.text and "本月截至" in text.text
    assert "巡查 1" in text.text
    assert photo.photo.startswith(b"\x89PNG") and month in photo.text
    assert document.file_name == f"gridhorn-report-{month}.xlsx"
    book = load_workbook(io.BytesIO(document.document))
    assert book.sheetnames == ["汇总", "工单", "巡查"]
    assert book["汇总"]["A5"].value == "G0101" and book["汇总"]["L5"].value == 1
    assert book["巡查"]["D2"].value == "东门"

    # community staff in English, for a past month without data: zeros, not an error
    messages = await harness.say(w.staff, "/report 2020-01")
    assert [m.kind for m in messages] == ["text", "photo", "document"]
    assert "Received 0 · resolved 0 · overdue 0" in messages[0].text
    assert "第一网格" in messages[0].text and "第二网格" in messages[0].text
    english = load_workbook(io.BytesIO(messages[2].document))
    assert english["Summary"]["D5"].value == 0 and english["Summary"]["B7"].value == "Total"

    assert "is not a month" in (await harness.say(w.staff, "/report 2020-1"))[-1].text
    future = periods.shift_month(month, 1)
    assert "has not begun" in (await harness.say(w.staff, f"/report {future}"))[-1].text


async def test_board_and_patrol_refuse_residents_and_check_their_words(harness):
    w = World(harness)
    await w.setup()
    say = harness.say
    for command, words in (("/report", "只有网格员、网格长和社区干部可以查看月度公示报告"),
                           ("/board", "只有网格员、网格长和社区干部可以查看排行榜"),
                           ("/patrol 东门", "只有网格员、网格长和社区干部可以登记巡查")):
        answers = await say(w.resident, command)
        assert [m.kind for m in answers] == ["text"] and words in answers[0].text, command
    assert await harness.store.schedules.patrols(None, 0, 4e9) == []

    board = (await say(w.worker, "/board"))[-1].text
    for title in ("志愿者明星榜", "党员先锋榜", "楼栋榜", "部门吹哨报到榜"):
        assert title in board
    assert "第一网格" in board and f"{periods.quarter_key(w.now())} 季度" in board
    one = (await say(w.staff, "/board departments month"))[-1].text
    assert "Departments: whistle response" in one and "Volunteer stars" not in one
    assert "accepted within the deadline +3" in one
    assert "Usage: /board" in (await say(w.staff, "/board everything"))[-1].text

    # community staff cover two grids: they name one, or patrol from a bound chat
    assert "name one first" in (await say(w.staff, "/patrol 北门 一切正常"))[-1].text
    said = (await say(w.staff, "/patrol G0102 北门; 路灯不亮"))[-1].text
    assert "Patrol recorded: 第二网格 (G0102)" in said and "Place: 北门" in said
    assert "Note: 路灯不亮" in said
    said = (await say(w.staff, "/patrol", chat=w.building_chat))[-1].text
    assert "第一网格 (G0101)" in said and "Place: —" in said
    refused = (await say(w.worker, "/patrol G0102 北门"))[-1].text
    assert "G0102 不在您的管辖范围内" in refused


async def test_a_scheduled_run_posts_pins_and_uploads_through_the_outbox(harness):
    w = World(harness)
    await w.setup()
    await harness.say(w.staff, "/theme 2099-01 新春送温暖")
    scheduler = harness.runtime.services.scheduler
    tz = harness.runtime.services.settings.tz
    ran = await scheduler.run_due(datetime(2099, 1, 1, 10, 0, tzinfo=tz))
    assert {(r.job, r.period) for r in ran} >= {("theme", "2099-01"), ("report", "2098-12"),
                                                ("board", "2098-Q4")}
    assert await scheduler.run_due(datetime(2099, 1, 1, 10, 1, tzinfo=tz)) == []
    await harness.settle()

    building = harness.emu.messages(w.building_chat.id)
    theme = [m for m in building if "新春送温暖" in m.text]
    assert len(theme) == 1 and theme[0].pinned and "每月主题 · 2099-01" in theme[0].text
    short = [m for m in building if "一月一公示 · 2098-12" in m.text]
    assert len(short) == 1 and short[0].kind == "text"
    assert not [m for m in building if m.kind in ("photo", "document")]

    grid = harness.emu.messages(w.grid_chat.id)
    report = [m for m in grid if "2098-12" in m.text]
    assert [m.kind for m in report] == ["text", "photo", "document"]
    assert report[1].photo.startswith(b"\x89PNG")
    book = load_workbook(io.BytesIO(report[2].document))
    assert book["汇总"]["A1"].value == "一月一公示 · 第一网格 · 2098-12"
    assert any("党员先锋榜" in m.text and "2098-Q4" in m.text for m in grid)

    # a restart finds everything done: nothing is posted again
    await harness.stop_bot()
    await harness.start_bot()
    assert await harness.runtime.services.scheduler.run_due(
        datetime(2099, 1, 1, 10, 5, tzinfo=tz)) == []
    await harness.settle()
    assert len([m for m in harness.emu.messages(w.building_chat.id)
                if "新春送温暖" in m.text]) == 1
