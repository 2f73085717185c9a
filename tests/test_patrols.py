"""Patrols 巡查 (SPEC §6) on a temporary store: who records one for which grid, how the words
after /patrol become a place and a note, and the reminder owed once per period."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import t
from bot.services.outbox import Priority
from bot.services.patrols import MAX_LOCATION, MAX_NOTE
from tests.support.harness import grant
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
    set_locale,
    staffed_map,
    texts_to,
)

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 12, 7, 10, 0, tzinfo=TZ)
LEADER2 = 41          # grid leader of G0102, which has no grid worker
GROUP = -300


@pytest.fixture
async def services(store):
    await staffed_map(store)
    await grant(store, LEADER2, "grid_leader", "G0102")
    return build_services(store)


async def frequencies(store, **by_grid):
    async with store.transaction():
        for unit in await store.map.all():
            if unit.code in by_grid:
                await store.map.upsert(unit.model_copy(update={"patrol": by_grid[unit.code]}))


async def record(services, user_id, args, chat_id=None, now=MONDAY):
    return await services.patrols.record(await services.actor(user_id),
                                         user_id if chat_id is None else chat_id, args, now)


@pytest.mark.parametrize("user_id", [HEAD, LIAISON, VOLUNTEER, RESIDENT])
async def test_only_grid_staff_record_patrols(services, user_id):
    await refused(services.store, record(services, user_id, "G0101 东门"), "patrol.not_allowed")


@pytest.mark.parametrize("args, code", [("G0102 东门", "G0102"), ("B01020101 楼道", "G0102"),
                                        ("E010201", "G0102")])
async def test_a_grid_outside_ones_scope_is_refused_and_changes_nothing(services, args, code):
    refusal = await refused(services.store, record(services, WORKER, args),
                            "patrol.not_allowed_here")
    assert refusal.values == {"code": code}


@pytest.mark.parametrize("args, location, note", [
    ("", None, None),
    ("东门", "东门", None),
    ("东门 垃圾堆放 已清理", "东门", "垃圾堆放 已清理"),
    ("东门广场 北侧；垃圾堆放 已清理", "东门广场 北侧", "垃圾堆放 已清理"),
    ("东门广场 北侧;垃圾堆放", "东门广场 北侧", "垃圾堆放"),
    ("东门广场 北侧\n垃圾堆放", "东门广场 北侧", "垃圾堆放"),
    ("G0101 东门 垃圾堆放", "东门", "垃圾堆放"),
    ("B01010101 楼道堆物", "1栋", "楼道堆物"),
    ("E010101", "阳光小区", None),
])
async def test_the_words_after_patrol_are_a_place_and_a_note(services, args, location, note):
    done = await record(services, WORKER, args)
    assert (done.grid.code, done.patrol.location, done.patrol.note) == ("G0101", location, note)
    assert (done.patrol.user_id, done.patrol.at, done.this_month) == (
        WORKER, MONDAY.timestamp(), 1)
    stored = await services.store.schedules.patrols(["G0101"], 0, MONDAY.timestamp() + 1)
    assert [(p.location, p.note) for p in stored] == [(location, note)]


async def test_too_long_a_place_or_note_is_refused(services):
    await refused(services.store, record(services, WORKER, "长" * (MAX_LOCATION + 1)),
                  "patrol.too_long")
    await refused(services.store, record(services, WORKER, "东门 " + "长" * (MAX_NOTE + 1)),
                  "patrol.too_long")


async def test_the_grid_is_the_codes_else_the_chats_else_ones_only_grid(services):
    refusal = await refused(services.store, record(services, STAFF, "东门"), "patrol.which_grid")
    assert refusal.values == {"grids": "G0101, G0102"}
    await refused(services.store, record(services, ADMIN, "东门"), "patrol.which_grid")
    await bind(services.store, "B01020101", GROUP)
    assert (await record(services, STAFF, "东门", chat_id=GROUP)).grid.code == "G0102"
    assert (await record(services, LEADER2, "东门", chat_id=GROUP)).grid.code == "G0102"
    # a chat of a grid the sender does not cover is no answer: their own grid is
    assert (await record(services, WORKER, "东门", chat_id=GROUP)).grid.code == "G0101"
    assert (await record(services, STAFF, "G0101 东门", chat_id=GROUP)).grid.code == "G0101"


async def test_the_months_count_is_the_grids(services):
    await record(services, WORKER, "东门", now=MONDAY - timedelta(days=10))   # November
    await record(services, LEADER, "东门")
    assert (await record(services, WORKER, "西门")).this_month == 2
    assert (await record(services, LEADER2, "北门")).this_month == 1


async def test_workers_are_reminded_once_per_period_while_none_is_recorded(services):
    store = services.store
    await frequencies(store, G0101="weekly", G0102="daily")
    await set_locale(store, LEADER2, "en")
    async with store.transaction():
        assert await services.patrols.remind_due(MONDAY) == 2
    # the grid's workers; its leaders only where it has no worker
    assert await texts_to(store, WORKER) == [t("zh-Hans", "patrol.reminder", grid="第一网格",
                                               code="G0101",
                                               frequency=t("zh-Hans", "patrol.freq_weekly"))]
    assert await texts_to(store, LEADER2) == [t("en", "patrol.reminder", grid="第二网格",
                                                code="G0102",
                                                frequency=t("en", "patrol.freq_daily"))]
    assert await texts_to(store, LEADER) == []
    assert all(i.priority == Priority.PERSONAL for i in await queued(store))
    async with store.transaction():
        assert await services.patrols.remind_due(MONDAY + timedelta(hours=5)) == 0
    # next day: the daily grid owes again, the weekly one not; a patrol settles the period
    await record(services, LEADER2, "北门", now=MONDAY + timedelta(days=1))
    async with store.transaction():
        assert await services.patrols.remind_due(MONDAY + timedelta(days=1, hours=1)) == 0
    async with store.transaction():
        assert await services.patrols.remind_due(MONDAY + timedelta(days=2)) == 1
    assert len(await texts_to(store, LEADER2)) == 2
    assert len(await texts_to(store, WORKER)) == 1


async def test_a_recorded_patrol_means_no_reminder_and_grids_without_frequency_owe_none(
        services):
    store = services.store
    await frequencies(store, G0101="monthly")
    await record(services, WORKER, "东门", now=MONDAY - timedelta(days=3))
    async with store.transaction():
        assert await services.patrols.remind_due(MONDAY) == 0
    assert await queued(store) == []


async def test_a_crontab_frequency_owes_one_patrol_between_its_firings(services):
    store = services.store
    await frequencies(store, G0101="0 8 * * 1,4", G0102="daily")
    async with store.transaction():
        assert await services.patrols.remind_due(MONDAY, crontab_only=True) == 1
    assert await texts_to(store, WORKER) == [t("zh-Hans", "patrol.reminder", grid="第一网格",
                                               code="G0101",
                                               frequency=t("zh-Hans", "patrol.freq_cron",
                                                           cron="0 8 * * 1,4"))]
    assert await texts_to(store, LEADER2) == []
    async with store.transaction():   # Wednesday: still Monday's period
        assert await services.patrols.remind_due(MONDAY + timedelta(days=2)) == 1  # G0102
    async with store.transaction():   # Thursday 08:00: a new period
        assert await services.patrols.remind_due(MONDAY + timedelta(days=3, hours=-1),
                                                 crontab_only=True) == 1
    assert len(await texts_to(store, WORKER)) == 2

