"""The monthly theme 每月主题 (SPEC §6) on a temporary store: who sets it for which
communities, what /theme shows where, the posts to building chats (once each, pinned, in the
chat's language) and the reminder when next month has none."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import t
from bot.services.outbox import Priority
from bot.services.themes import JOB, MAX_LENGTH
from storage.models import Unit
from tests.support.harness import grant
from tests.support.services import (
    ADMIN,
    HEAD,
    LEADER,
    LIAISON,
    RESIDENT,
    STAFF,
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
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=TZ)
STAFF2 = 40           # community staff of C02
B1, B2, B3, B21 = -101, -102, -103, -121     # building chats (B21: in C02)
C01_CHAT, G0101_CHAT = -110, -111


@pytest.fixture
async def services(store):
    await staffed_map(store)
    async with store.transaction():
        for unit in (Unit(code="C02", kind="community", name="鸣凤社区", position=1),
                     Unit(code="G0201", kind="grid", name="鸣凤一网格", parent_code="C02"),
                     Unit(code="E020101", kind="estate", name="鸣凤小区", parent_code="G0201"),
                     Unit(code="B02010101", kind="building", name="9栋",
                          parent_code="E020101")):
            await store.map.upsert(unit)
    await grant(store, STAFF2, "community_staff", "C02")
    return build_services(store)


async def set_theme(services, user_id, args):
    return await services.themes.set_theme(await services.actor(user_id), args, NOW)


async def theme_text(services, code, month="2026-12"):
    theme = await services.store.schedules.theme(code, month)
    return theme.text if theme else None


@pytest.mark.parametrize("user_id", [HEAD, WORKER, LEADER, LIAISON, RESIDENT])
async def test_only_community_staff_and_up_set_the_theme(services, user_id):
    await refused(services.store, set_theme(services, user_id, "2026-12 关爱独居老人"),
                  "theme.not_allowed")


@pytest.mark.parametrize("args, key, values", [
    ("12/2026 关爱独居老人", "theme.bad_month", {"text": "12/2026"}),
    ("2026-13 关爱独居老人", "theme.bad_month", {"text": "2026-13"}),
    ("2026-11 关爱独居老人", "theme.past_month", {"month": "2026-11", "current": "2026-12"}),
    ("2027-01", "theme.empty", {"month": "2027-01"}),
    ("2027-01 C01", "theme.empty", {"month": "2027-01"}),
    ("2027-01 G0101 关爱独居老人", "theme.not_community", {"code": "G0101"}),
    ("2027-01 C02 关爱独居老人", "theme.not_allowed_here", {"code": "C02"}),
    ("2027-01 " + "长" * (MAX_LENGTH + 1), "theme.too_long", {"limit": MAX_LENGTH}),
])
async def test_a_bad_theme_is_refused_and_changes_nothing(services, args, key, values):
    refusal = await refused(services.store, set_theme(services, STAFF, args), key)
    assert refusal.values == values


async def test_staff_set_their_own_communitys_theme(services):
    done = await set_theme(services, STAFF, "2027-01 关爱独居老人")
    assert (done.month, [u.code for u in done.units], done.posted) == ("2027-01", ["C01"], 0)
    assert await theme_text(services, "C01", "2027-01") == "关爱独居老人"
    assert await theme_text(services, "C02", "2027-01") is None
    # named explicitly, and set again: the last text stands
    await set_theme(services, STAFF, "2027-01 C01 垃圾分类")
    assert await theme_text(services, "C01", "2027-01") == "垃圾分类"


async def test_a_superadmin_sets_the_city_theme_that_communities_without_their_own_show(
        services):
    done = await set_theme(services, ADMIN, "2026-12 全市：垃圾分类")
    assert done.units == ()
    await set_theme(services, STAFF2, "2026-12 鸣凤：邻里守望")
    assert await theme_text(services, "C01") == "全市：垃圾分类"
    assert await theme_text(services, "C02") == "鸣凤：邻里守望"
    assert await queued(services.store) == []     # the month's run has not happened yet


async def test_a_theme_set_after_the_months_run_goes_out_at_once_once_per_chat(services):
    store = services.store
    await bind(store, "B01010101", B1, locale="en", thread_id=7)
    await bind(store, "B01010102", B2, can_pin=False)
    await bind(store, "B01020101", B3, active=False)      # the bot was removed there
    await bind(store, "B02010101", B21)                   # another community
    await bind(store, "G0101", G0101_CHAT)                # not a building chat
    async with store.transaction():
        await store.schedules.record_run(JOB, "2026-12", 0)
    done = await set_theme(services, STAFF, "2026-12 关爱独居老人")
    assert done.posted == 2
    posts = {i.chat_id: i for i in await queued(store)}
    assert sorted(posts) == [B2, B1]
    assert posts[B1].payload["text"] == t("en", "theme.post", month="2026-12",
                                          text="关爱独居老人")
    assert posts[B2].payload["text"] == t("zh-Hans", "theme.post", month="2026-12",
                                          text="关爱独居老人")
    assert posts[B1].payload["message_thread_id"] == 7
    assert posts[B1].payload.get("_pin") and not posts[B2].payload.get("_pin")
    assert all(i.priority == Priority.ROUTINE and i.quiet for i in posts.values())
    # set again: the chats that had the month's theme do not get it twice
    assert (await set_theme(services, STAFF, "2026-12 关爱独居老人（更新）")).posted == 0
    assert len(await queued(store)) == 2


async def test_the_run_posts_each_communitys_theme_to_chats_that_lack_it(services):
    store = services.store
    await bind(store, "B01010101", B1)
    await bind(store, "B02010101", B21)
    await set_theme(services, STAFF, "2026-12 关爱独居老人")
    async with store.transaction():
        assert await services.themes.post_month("2026-12") == 1   # C02 has no theme
    await set_theme(services, ADMIN, "2026-12 全市：垃圾分类")
    await bind(store, "B01010102", B2)                            # bound mid-month
    async with store.transaction():
        assert await services.themes.post_month("2026-12") == 2
    assert await texts_to(store, B1) == [t("zh-Hans", "theme.post", month="2026-12",
                                           text="关爱独居老人")]
    assert await texts_to(store, B2) == [t("zh-Hans", "theme.post", month="2026-12",
                                           text="关爱独居老人")]
    assert await texts_to(store, B21) == [t("zh-Hans", "theme.post", month="2026-12",
                                            text="全市：垃圾分类")]
    async with store.transaction():
        assert await services.themes.post_month("2026-12") == 0


async def test_staff_are_reminded_once_of_communities_without_next_months_theme(services):
    store = services.store
    await set_locale(store, STAFF2, "en")
    await bind(store, "C01", C01_CHAT, locale="zh-Hant")
    await set_theme(services, STAFF, "2027-01 关爱独居老人")
    async with store.transaction():
        assert await services.themes.remind_missing("2027-01") == 2   # STAFF2, ADMIN
    assert await texts_to(store, STAFF2) == [t("en", "theme.reminder", month="2027-01",
                                               communities="鸣凤社区 (C02)")]
    assert await texts_to(store, ADMIN) == [t("zh-Hans", "theme.reminder", month="2027-01",
                                              communities="鸣凤社区 (C02)")]
    assert await texts_to(store, STAFF) == [] and await texts_to(store, C01_CHAT) == []
    async with store.transaction():
        assert await services.themes.remind_missing("2027-01") == 0


async def test_the_reminder_lists_every_missing_community_and_reaches_their_staff_chat(
        services):
    store = services.store
    await bind(store, "C01", C01_CHAT, locale="zh-Hant")
    async with store.transaction():
        assert await services.themes.remind_missing("2027-02") == 4
    both = t("zh-Hans", "list.sep").join(["欣山社区 (C01)", "鸣凤社区 (C02)"])
    assert await texts_to(store, ADMIN) == [t("zh-Hans", "theme.reminder", month="2027-02",
                                              communities=both)]
    assert await texts_to(store, C01_CHAT) == [t("zh-Hant", "theme.reminder",
                                                 month="2027-02", communities="欣山社区 (C01)")]
    chat_item = next(i for i in await queued(store) if i.chat_id == C01_CHAT)
    assert chat_item.quiet and chat_item.priority == Priority.ROUTINE


async def test_show_finds_the_theme_where_the_asker_is(services):
    store = services.store
    await set_theme(services, STAFF, "2026-12 关爱独居老人")
    await set_theme(services, ADMIN, "2026-12 全市：垃圾分类")
    await bind(store, "B02010101", B21)

    async def shown(user_id, chat_id):
        result = await services.themes.show(await services.actor(user_id), chat_id, NOW)
        return result.month, [(u.code if u else None, th.text if th else None)
                              for u, th in result.themes], result.may_set

    assert await shown(RESIDENT, RESIDENT) == ("2026-12", [("C01", "关爱独居老人")], False)
    assert await shown(RESIDENT, B21) == ("2026-12", [("C02", "全市：垃圾分类")], False)
    assert await shown(WORKER, WORKER) == ("2026-12", [("C01", "关爱独居老人")], False)
    assert await shown(STAFF2, STAFF2) == ("2026-12", [("C02", "全市：垃圾分类")], True)
    assert await shown(ADMIN, ADMIN) == ("2026-12", [("C01", "关爱独居老人"),
                                                     ("C02", "全市：垃圾分类")], True)
    assert await shown(50, 50) == ("2026-12", [(None, "全市：垃圾分类")], False)
