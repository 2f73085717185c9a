"""The scheduler: each job posts once per period and chat, across month ends, double fires,
restarts and outages; a clock moved by hand, no sleeping."""

from __future__ import annotations

import pytest

from bot.services import periods
from bot.settings import SettingsError, load_settings
from storage.store import Store
from tests.support.harness import grant, seed_map
from tests.support.schedules import Clock, at, bind, build

STAFF, WORKER, ADMIN = 101, 102, 900
B1_CHAT, B2_CHAT, B3_CHAT, GRID_CHAT, COMMUNITY_CHAT = -1001, -1002, -1003, -2001, -3001
GRID2_CHAT, B3_NEW_CHAT = -2002, -1004


async def world(store: Store, clock: Clock):
    built = build(store, clock, superadmins=str(ADMIN))
    await seed_map(store)
    await grant(store, STAFF, "community_staff", "C01")
    await grant(store, WORKER, "grid_worker", "G0101")
    await bind(store, "B01010101", B1_CHAT)
    await bind(store, "B01020101", B3_CHAT, can_pin=False)
    await bind(store, "G0101", GRID_CHAT)
    await bind(store, "C01", COMMUNITY_CHAT)
    return built


async def reopen(store: Store, path: str) -> Store:
    await store.close()
    return await Store.open(path)


def texts(items, chat_id, word):
    return [i for i in items if i.chat_id == chat_id and i.method == "sendMessage"
            and word in i.payload["text"]]


async def theme_posts(store, chat_id):
    return texts(await store.outbox.pending(), chat_id, "每月主题")


async def runs(store, job):
    rows = await store.db.fetchall(
        "SELECT period FROM schedule_runs WHERE job = ? ORDER BY period", (job,))
    return [r["period"] for r in rows]


async def test_theme_posts_once_per_chat_across_month_end_double_fire_and_restart(database_url):
    path = database_url
    store = await Store.open(path)
    clock = Clock(at(2026, 11, 28, 12))
    built = await world(store, clock)
    admin = await built.schedule.access.actor(ADMIN)
    await built.scheduler.run_due()  # first start: this month's runs (no theme yet)
    done = await built.schedule.themes.set_theme(
        await built.schedule.access.actor(STAFF), "2026-12 关爱独居老人", clock())
    assert done.month == "2026-12" and done.posted == 0
    await built.schedule.themes.set_theme(admin, "2026-12 全市：垃圾分类", clock())

    clock.set(at(2026, 11, 30, 23, 59))
    assert [r.job for r in await built.scheduler.run_due()] == ["daily"]
    assert await theme_posts(store, B1_CHAT) == []

    clock.set(at(2026, 12, 1, 9))
    ran = await built.scheduler.run_due()
    assert ("theme", "2026-12", 2) in [(r.job, r.period, r.posts) for r in ran]
    b1 = await theme_posts(store, B1_CHAT)
    assert len(b1) == 1 and "关爱独居老人" in b1[0].payload["text"]
    assert b1[0].payload["_pin"] is True and b1[0].quiet
    b3 = await theme_posts(store, B3_CHAT)  # G0102's building: same community C01
    assert len(b3) == 1 and "_pin" not in b3[0].payload  # the bot may not pin there

    # the trigger fires again (a second wake-up, a duplicate tick): nothing more
    clock.set(at(2026, 12, 1, 9, 0, 30))
    assert await built.scheduler.run_due() == []
    assert await built.scheduler.run_due() == []

    # restart at 09:05: start-up catch-up finds December's theme done
    store = await reopen(store, path)
    clock.set(at(2026, 12, 1, 9, 5))
    built = build(store, clock, superadmins=str(ADMIN))
    assert await built.scheduler.start() == []
    await built.scheduler.stop()
    assert len(await theme_posts(store, B1_CHAT)) == 1
    assert len(await theme_posts(store, B3_CHAT)) == 1
    assert await store.schedules.posted("theme", "2026-12") == [(B3_CHAT, 0), (B1_CHAT, 0)]

    # 10:00: November's report, once, to staff chats in full and to building chats in short
    clock.set(at(2026, 12, 1, 10))
    assert [(r.job, r.period) for r in await built.scheduler.run_due()] == [
        ("report", "2026-11")]
    assert await built.scheduler.run_due() == []
    items = await store.outbox.pending()

    def of_november(item):
        return "2026-11" in (item.payload.get("text") or item.payload.get("caption") or "")

    grid = [i for i in items if i.chat_id == GRID_CHAT and of_november(i)]
    assert [i.method for i in grid] == ["sendMessage", "sendPhoto", "sendDocument"]
    assert grid[1].payload["photo"]["filename"] == "gridhorn-report-2026-11.png"
    assert grid[2].payload["document"]["filename"] == "gridhorn-report-2026-11.xlsx"
    assert len([i for i in items if i.chat_id == COMMUNITY_CHAT and of_november(i)]) == 3
    short = [i for i in texts(items, B1_CHAT, "一月一公示") if of_november(i)]
    assert len(short) == 1 and "第一网格" in short[0].payload["text"]
    assert {i.method for i in items if i.chat_id == B1_CHAT} == {"sendMessage"}
    await store.close()


async def test_catch_up_after_an_outage_runs_the_current_period_once_and_no_older(database_url):
    path = database_url
    store = await Store.open(path)
    clock = Clock(at(2026, 10, 10, 12))
    built = await world(store, clock)
    await built.scheduler.run_due()
    assert await runs(store, "report") == ["2026-09"]
    admin = await built.schedule.access.actor(ADMIN)
    await built.schedule.themes.set_theme(admin, "2026-12 平安社区", clock())

    # down from 10 October to 3 December, 15:00: two 1sts and a 25th were missed
    store = await reopen(store, path)
    clock.set(at(2026, 12, 3, 15))
    built = build(store, clock, superadmins=str(ADMIN))
    ran = await built.scheduler.start()
    await built.scheduler.stop()
    assert sorted((r.job, r.period) for r in ran) == [
        ("daily", "2026-12-03"), ("evaluation", "2026-11"), ("meeting_nudge", "2026-11"),
        ("post_check", "2026-12"), ("report", "2026-11"), ("theme", "2026-12"),
        ("theme_reminder", "2026-12")]      # the boards of Q3 went out on 10 October
    assert await runs(store, "report") == ["2026-09", "2026-11"]       # October not replayed
    assert await runs(store, "theme") == ["2026-10", "2026-12"]        # November not replayed
    assert await runs(store, "daily") == ["2026-10-10", "2026-12-03"]
    assert len(await theme_posts(store, B1_CHAT)) == 1

    # a second restart the same day changes nothing
    store = await reopen(store, path)
    built = build(store, clock, superadmins=str(ADMIN))
    assert await built.scheduler.run_due() == []
    assert len(await theme_posts(store, B1_CHAT)) == 1
    await store.close()


async def test_a_chat_bound_mid_month_gets_the_theme_at_the_next_run(store):
    clock = Clock(at(2026, 12, 1, 9))
    built = await world(store, clock)
    admin = await built.schedule.access.actor(ADMIN)
    await built.schedule.themes.set_theme(admin, "2026-12 邻里守望", at(2026, 11, 20))
    await built.scheduler.run_due()
    assert len(await theme_posts(store, B1_CHAT)) == 1
    await built.scheduler.run_due(at(2026, 12, 10, 9))

    await bind(store, "B01010102", B2_CHAT)            # bound at 14:00 on the 10th
    assert await built.scheduler.run_due(at(2026, 12, 10, 14)) == []
    assert await theme_posts(store, B2_CHAT) == []
    ran = await built.scheduler.run_due(at(2026, 12, 11, 9))   # the next run
    assert [(r.job, r.posts) for r in ran] == [("daily", 2)]   # and November's report
    assert len(await theme_posts(store, B2_CHAT)) == 1
    assert len(await theme_posts(store, B1_CHAT)) == 1
    await built.scheduler.run_due(at(2026, 12, 12, 9))
    assert len(await theme_posts(store, B2_CHAT)) == 1
    # January: both get January's theme (the city-wide one), once
    await built.schedule.themes.set_theme(admin, "2027-01 新春送温暖", at(2026, 12, 20))
    await built.scheduler.run_due(at(2027, 1, 1, 9))
    for chat in (B1_CHAT, B2_CHAT, B3_CHAT):
        assert len([i for i in await theme_posts(store, chat)
                    if "新春送温暖" in i.payload["text"]]) == 1


async def test_a_chat_bound_after_the_report_run_gets_the_report_on_display_once(database_url):
    """SPEC §6: the report of the month before is on display (公示) from the 1st's run: a staff
    chat bound later gets it in full, a building chat in short, from the next daily run, once
    across restarts; after the next month's run only the new one is on display."""
    path = database_url
    store = await Store.open(path)
    try:
        clock = Clock(at(2026, 12, 1, 10))
        built = await world(store, clock)
        assert ("report", "2026-11") in [(r.job, r.period) for r in await built.scheduler.run_due()]
        await built.scheduler.run_due(at(2026, 12, 10, 9))

        await bind(store, "G0102", GRID2_CHAT)             # bound on the 10th, after the run
        await bind(store, "B01010102", B2_CHAT)
        ran = await built.scheduler.run_due(at(2026, 12, 11, 9))
        assert [(r.job, r.posts) for r in ran] == [("daily", 2)]
        items = await store.outbox.pending()
        grid2 = [i for i in items if i.chat_id == GRID2_CHAT]
        assert [i.method for i in grid2] == ["sendMessage", "sendPhoto", "sendDocument"]
        assert "2026-11" in grid2[0].payload["text"] and "第二网格" in grid2[0].payload["text"]
        assert grid2[2].payload["document"]["filename"] == "gridhorn-report-2026-11.xlsx"
        short = texts(items, B2_CHAT, "一月一公示")
        assert len(short) == 1 and "2026-11" in short[0].payload["text"]
        assert len(texts(items, B1_CHAT, "一月一公示")) == 1    # had it from the run: not again

        store = await reopen(store, path)                   # a restart, then the next days
        built = build(store, clock, superadmins=str(ADMIN))
        await built.scheduler.run_due(at(2026, 12, 11, 9, 30))
        await built.scheduler.run_due(at(2026, 12, 12, 9))
        items = await store.outbox.pending()
        assert len([i for i in items if i.chat_id == GRID2_CHAT]) == 3
        assert len(texts(items, B2_CHAT, "一月一公示")) == 1

        # 3栋 moves to a new group on 1 January before the report's run: November's report is no
        # longer on display, December's reaches the new group from the run itself
        await built.scheduler.run_due(at(2027, 1, 1, 9))
        await bind(store, "B01020101", B3_NEW_CHAT)
        await built.scheduler.run_due(at(2027, 1, 1, 9, 30))
        await built.scheduler.run_due(at(2027, 1, 1, 10))
        await built.scheduler.run_due(at(2027, 1, 2, 9))
        items = await store.outbox.pending()
        moved = texts(items, B3_NEW_CHAT, "一月一公示")
        assert len(moved) == 1 and "2026-12" in moved[0].payload["text"]
        assert (B3_NEW_CHAT, 0) not in await store.schedules.posted("report", "2026-11")
    finally:
        await store.close()


async def test_a_theme_set_after_the_months_run_goes_out_at_once(store):
    clock = Clock(at(2026, 12, 1, 9))
    built = await world(store, clock)
    await built.scheduler.run_due()               # the 1st: no theme yet, nothing posted
    assert await theme_posts(store, B1_CHAT) == []
    staff = await built.schedule.access.actor(STAFF)
    done = await built.schedule.themes.set_theme(staff, "2026-12 C01 冬季防火", at(2026, 12, 5))
    assert done.posted == 2 and [u.code for u in done.units] == ["C01"]
    assert len(await theme_posts(store, B1_CHAT)) == 1
    again = await built.schedule.themes.set_theme(staff, "2026-12 冬季防火（更新）",
                                                  at(2026, 12, 6))
    assert again.posted == 0 and len(await theme_posts(store, B1_CHAT)) == 1
    shown = await built.schedule.themes.show(staff, B1_CHAT, at(2026, 12, 7))
    assert shown.themes[0][1].text == "冬季防火（更新）"


async def test_theme_reminder_on_the_25th_when_next_month_has_none(store):
    clock = Clock(at(2026, 12, 25, 9))
    built = await world(store, clock)
    ran = await built.scheduler.run_due()
    assert ("theme_reminder", "2027-01") in [(r.job, r.period) for r in ran]
    items = await store.outbox.pending()
    for chat in (STAFF, ADMIN, COMMUNITY_CHAT):
        reminders = texts(items, chat, "2027-01")
        assert len(reminders) == 1 and "欣山社区 (C01)" in reminders[0].payload["text"]
    assert not texts(items, WORKER, "2027-01")
    assert await built.scheduler.run_due(at(2026, 12, 25, 18)) == []

    # with January's theme set, February's reminder on 25 January goes out; January's none
    staff = await built.schedule.access.actor(STAFF)
    await built.schedule.themes.set_theme(staff, "2027-02 春节安全", at(2027, 1, 20))
    ran = await built.scheduler.run_due(at(2027, 1, 25, 9))
    assert ("theme_reminder", "2027-02", 0) in [(r.job, r.period, r.posts) for r in ran]


async def test_patrol_reminders_once_per_period_until_one_is_recorded(store):
    clock = Clock(at(2026, 12, 7, 9))      # a Monday
    built = await world(store, clock)
    async with store.transaction():
        grid = await store.map.get("G0101")
        await store.map.upsert(grid.model_copy(update={"patrol": "weekly"}))
        other = await store.map.get("G0102")
        await store.map.upsert(other.model_copy(update={"patrol": "0 8 * * 1,4"}))
    await grant(store, 103, "grid_leader", "G0102")   # G0102 has no worker: its leader
    await built.scheduler.run_due()

    def reminders(items, user):
        return [i for i in items if i.chat_id == user and "巡查提醒" in i.payload["text"]]

    items = await store.outbox.pending()
    assert len(reminders(items, WORKER)) == 1 and len(reminders(items, 103)) == 1
    await built.scheduler.run_due(at(2026, 12, 8, 9))
    items = await store.outbox.pending()
    assert len(reminders(items, WORKER)) == 1      # same week
    assert len(reminders(items, 103)) == 1         # no fire since Monday 08:00
    await built.scheduler.run_due(at(2026, 12, 10, 9))   # Thursday: the crontab fired at 08:00
    assert len(reminders(await store.outbox.pending(), 103)) == 2

    worker = await built.schedule.access.actor(WORKER)
    done = await built.schedule.patrols.record(worker, WORKER, "东门 消防通道畅通",
                                               at(2026, 12, 14, 8))
    assert (done.grid.code, done.patrol.location, done.patrol.note) == (
        "G0101", "东门", "消防通道畅通")
    await built.scheduler.run_due(at(2026, 12, 14, 9))   # next Monday: recorded already
    assert len(reminders(await store.outbox.pending(), WORKER)) == 1
    await built.scheduler.run_due(at(2026, 12, 21, 9))
    assert len(reminders(await store.outbox.pending(), WORKER)) == 2


async def test_a_crontab_patrol_frequency_is_reminded_at_each_of_its_periods(store):
    clock = Clock(at(2026, 12, 7, 9))
    built = await world(store, clock)
    async with store.transaction():
        grid = await store.map.get("G0101")
        await store.map.upsert(grid.model_copy(update={"patrol": "0 8,20 * * *"}))

    def reminders(items):
        return [i for i in items if i.chat_id == WORKER and "巡查提醒" in i.payload["text"]]

    await built.scheduler.run_due()                        # the 08:00 period
    assert len(reminders(await store.outbox.pending())) == 1
    await built.scheduler.run_due(at(2026, 12, 7, 20, 10))  # the 20:00 one, same day
    assert len(reminders(await store.outbox.pending())) == 2
    await built.scheduler.run_due(at(2026, 12, 7, 20, 40))  # still the 20:00 period
    assert len(reminders(await store.outbox.pending())) == 2


async def test_start_arms_one_trigger_per_job_in_the_time_zone(store):
    clock = Clock(at(2026, 12, 1, 8))
    built = build(store, clock, board_cron="30 7 1 */3 *")
    await built.scheduler.start()
    try:
        fires = built.scheduler.next_fire_times()
    finally:
        await built.scheduler.stop()
    assert set(fires) == {"theme", "theme_reminder", "report", "board", "daily", "evaluation",
                          "patrol_check", "meeting_nudge", "post_check", "unit_vote"}
    for name, moment in fires.items():
        assert moment is not None and moment.utcoffset().total_seconds() == 8 * 3600, name
    assert (fires["report"].day, fires["report"].hour) == (1, 10)
    assert (fires["board"].minute, fires["board"].hour) == (30, 7)


def test_last_fire_and_periods():
    trigger = periods.cron_trigger("0 9 1 * *", at(2026, 1, 1).tzinfo)
    assert periods.last_fire(trigger, at(2026, 12, 1, 9)) == at(2026, 12, 1, 9)
    assert periods.last_fire(trigger, at(2026, 12, 1, 8, 59)) == at(2026, 11, 1, 9)
    yearly = periods.cron_trigger("0 0 1 1 *", at(2026, 1, 1).tzinfo)
    assert periods.last_fire(yearly, at(2026, 12, 31)) == at(2026, 1, 1)
    assert periods.previous_quarter_key(at(2027, 1, 1, 10)) == "2026-Q4"
    assert periods.quarter("2026-Q4", at(2026, 1, 1).tzinfo).end == at(2027, 1, 1)
    assert periods.shift_month("2026-12", 1) == "2027-01"
    assert periods.shift_month("2027-01", -1) == "2026-12"
    assert periods.week(at(2026, 12, 9, 15)).key == "2026-W50"
    assert periods.parse_month("2026-13") is None and periods.parse_month("2026-1") is None
    cron = periods.patrol_period("0 8 * * 1,4", at(2026, 12, 9, 12))   # a Wednesday
    assert (cron.start, cron.end) == (at(2026, 12, 7, 8), at(2026, 12, 10, 8))


@pytest.mark.parametrize("variable", ["GRIDHORN_THEME_CRON", "GRIDHORN_REPORT_CRON",
                                      "GRIDHORN_BOARD_CRON", "GRIDHORN_THEME_REMINDER_CRON",
                                      "GRIDHORN_DAILY_CRON"])
def test_a_crontab_that_does_not_parse_stops_start_up_naming_it(monkeypatch, variable):
    monkeypatch.setenv(variable, "0 9 32 * *")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(variable + ":")


async def test_runs_and_failures_are_counted_per_job(store, monkeypatch):
    """`/metrics` (SPEC §15): each job's runs, and a job that raises counted as failed (the
    others still run; the failed one runs at the next wake-up)."""
    clock = Clock(at(2026, 12, 3, 15))
    built = await world(store, clock)

    async def broken(period):
        raise RuntimeError("the boards' query failed")

    monkeypatch.setattr(built.schedule.boards, "post_quarter", broken)
    ran = await built.scheduler.run_due()
    assert "board" not in {r.job for r in ran} and "theme" in {r.job for r in ran}
    text = built.scheduler.metrics.exposition().decode()
    assert 'gridhorn_scheduler_failures_total{job="board"} 1.0' in text
    assert 'gridhorn_scheduler_runs_total{job="theme"} 1.0' in text
    assert 'gridhorn_scheduler_runs_total{job="board"}' not in text
