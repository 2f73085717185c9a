"""Evaluation after each monthly theme (SPEC §12) on a temporary store (both engines): who is
asked when a month ends, once; ratings given, changed, refused outside scope or after the
window; the reminder after three days, once; notes by reply; /evaluations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.i18n import t
from bot.services.evaluations import Press, press_data, read_press
from bot.settings import SettingsError, load_settings
from storage.models import OutboxItem
from tests.support.harness import grant
from tests.support.schedules import Clock, at, build
from tests.support.services import (
    ADMIN,
    HEAD,
    LEADER,
    STAFF,
    WORKER,
    queued,
    refused,
    staffed_map,
)

WORKER2, LEADER2, WORKER3 = 21, 41, 42
OPENS = at(2026, 12, 1, 9)          # the default crontab's fire time for November


def make(store):
    return build(store, Clock(OPENS), superadmins=str(ADMIN), quiet_hours="",
                 default_locale="en")


@pytest.fixture
async def built(store):
    await staffed_map(store)
    await grant(store, WORKER2, "grid_worker", "G0101")
    await grant(store, LEADER2, "grid_leader", "G0102")
    await grant(store, WORKER3, "grid_worker", "G0102")
    return make(store)


async def lists(store, user_id):
    return [i for i in await queued(store) if i.chat_id == user_id
            and (i.ref or "").startswith("ev:")]


async def open_november(built):
    ran = await built.scheduler.run_due(OPENS)
    assert [r for r in ran if r.job == "evaluation"][0].period == "2026-11"


async def sent(built, item: OutboxItem, message_id: int) -> None:
    """The sender's hook for a list that went out (the message id it got)."""
    hook = built.outbox.hooks.sent_hook(item.ref)
    assert hook is not None
    async with built.store.transaction():
        await hook(item, {"message_id": message_id})


async def actor(built, user_id):
    return await built.schedule.access.actor(user_id)


async def rate(built, user_id, score, code, subject=0, month="2026-11", message_id=1,
               when=OPENS):
    return await built.schedule.evaluations.rate(
        await actor(built, user_id), Press(score, month, code, subject), user_id, message_id,
        "en", when)


async def test_the_month_end_asks_staff_for_grids_and_leaders_for_workers_once(built, store):
    async with store.transaction():
        await store.schedules.set_theme("C01", "2026-11", "垃圾分类 <进小区>", STAFF)
    await open_november(built)
    staff = await lists(store, STAFF)
    assert len(staff) == 1
    assert "🎯 Theme of 欣山社区: 垃圾分类 &lt;进小区&gt;" in staff[0].payload["text"]
    assert "第一网格 (G0101)" in staff[0].payload["text"]
    assert "第二网格 (G0102)" in staff[0].payload["text"]
    rows = staff[0].payload["reply_markup"]["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["1.", "⭐ 1", "⭐ 2", "⭐ 3", "⭐ 4", "⭐ 5"]
    assert rows[0][4]["callback_data"] == "ev:4:2026-11:G0101:0"
    asked = await store.evaluations.asked("2026-11", LEADER)
    assert [(i.kind, i.unit_code, i.subject_id) for i in asked] == [
        ("worker", "G0101", WORKER), ("worker", "G0101", WORKER2)]
    assert [(i.unit_code, i.subject_id) for i in
            await store.evaluations.asked("2026-11", LEADER2)] == [("G0102", WORKER3)]
    for nobody in (WORKER, WORKER2, WORKER3, HEAD, ADMIN):
        assert await lists(store, nobody) == []
    # a second fire, a restart (a new scheduler): nothing more
    before = len(await queued(store))
    assert not [r for r in await built.scheduler.run_due(OPENS + timedelta(hours=1))
                if r.job == "evaluation"]
    again = make(store)
    assert not [r for r in await again.scheduler.run_due(OPENS + timedelta(hours=2))
                if r.job == "evaluation"]
    assert len(await queued(store)) == before


async def test_a_rating_is_recorded_changed_and_shown_on_the_list(built, store):
    await open_november(built)
    rated = await rate(built, STAFF, 4, "G0101")
    assert rated.item.score == 4
    assert "1. 第一网格 (G0101) — ⭐ 4" in rated.view.text
    assert rated.view.buttons[0][4]["text"] == "✅ 4"
    await rate(built, STAFF, 2, "G0101", when=OPENS + timedelta(days=20))
    item = await store.evaluations.get("2026-11", STAFF, "G0101", 0)
    assert item is not None and item.score == 2
    await rate(built, LEADER, 5, "G0101", WORKER)
    assert (await store.evaluations.get("2026-11", LEADER, "G0101", WORKER)).score == 5


async def test_ratings_outside_scope_are_refused_and_change_nothing(built, store):
    await open_november(built)
    await refused(store, rate(built, LEADER, 3, "G0102", WORKER3), "evaluation.not_yours")
    await refused(store, rate(built, STAFF, 3, "G0101", WORKER), "evaluation.not_yours")
    await refused(store, rate(built, WORKER, 3, "G0101"), "evaluation.not_yours")
    await refused(store, rate(built, LEADER, 3, "G0101"), "evaluation.not_yours")
    await refused(store, rate(built, STAFF, 3, "G0101", month="2026-10"),
                  "evaluation.no_round")
    # a leader no longer leading: refused, though asked
    async with store.transaction():
        await store.people.revoke(LEADER, "grid_leader", "G0101")
    await refused(store, rate(built, LEADER, 3, "G0101", WORKER), "evaluation.not_yours")


async def test_a_rating_is_refused_once_the_next_month_opens(built, store):
    await open_november(built)
    await rate(built, STAFF, 4, "G0101")
    await built.scheduler.run_due(at(2027, 1, 1, 9))
    assert await store.evaluations.opened_at("2026-12") is not None
    await refused(store, rate(built, STAFF, 1, "G0101", when=at(2027, 1, 1, 10)),
                  "evaluation.closed")
    assert (await store.evaluations.get("2026-11", STAFF, "G0101", 0)).score == 4


async def test_reminder_after_three_days_to_who_still_owes_once(built, store):
    await open_november(built)
    for subject in (WORKER, WORKER2):
        await rate(built, LEADER, 4, "G0101", subject)
    first = len(await queued(store))
    await built.scheduler.run_due(OPENS + timedelta(days=3) - timedelta(minutes=1))
    assert len(await queued(store)) == first
    await built.scheduler.run_due(OPENS + timedelta(days=3))
    reminders = [i for i in (await queued(store))[first:]]
    assert sorted(i.chat_id for i in reminders) == [STAFF, LEADER2]
    staff_text = next(i for i in reminders if i.chat_id == STAFF).payload["text"]
    assert "2 ratings of 2026-11" in staff_text or "2026-11" in staff_text
    await built.scheduler.run_due(OPENS + timedelta(days=4))
    again = make(store)
    await again.scheduler.run_due(OPENS + timedelta(days=5))
    assert len(await queued(store)) == first + 2


async def test_a_note_by_reply_goes_to_the_numbered_or_last_rated_item(built, store):
    await open_november(built)
    (staff_list,) = await lists(store, STAFF)
    await sent(built, staff_list, 700)
    staff = await actor(built, STAFF)
    notes = built.schedule.evaluations
    await refused(store, notes.note(staff, STAFF, 700, "很好", "en"),
                  "evaluation.note_rate_first")
    assert await notes.note(staff, STAFF, 701, "not a list", "en") is None
    assert await notes.note(await actor(built, LEADER), STAFF, 700, "x", "en") is None
    await rate(built, STAFF, 5, "G0101", message_id=700)
    noted = await notes.note(staff, STAFF, 700, "垃圾分类做得好", "en")
    assert noted is not None and noted.item.unit_code == "G0101"
    assert "📝 垃圾分类做得好" in noted.view.text
    noted = await notes.note(staff, STAFF, 700, "2. 需加强巡查", "en")
    assert noted is not None and noted.item.unit_code == "G0102"
    assert (await store.evaluations.get("2026-11", STAFF, "G0102", 0)).note == "需加强巡查"
    await refused(store, notes.note(staff, STAFF, 700, "x" * 501, "en"),
                  "evaluation.note_too_long")


async def test_evaluations_lists_given_and_missing_within_scope(built, store):
    await open_november(built)
    await rate(built, STAFF, 4, "G0101")
    await rate(built, LEADER, 3, "G0101", WORKER)
    evaluations = built.schedule.evaluations
    now = at(2026, 12, 2, 9)
    text = await evaluations.listing(await actor(built, STAFF), None, now, "en")
    assert "Evaluations of 2026-11" in text
    assert "第一网格 (G0101) — ⭐ 4.0" in text
    assert "第二网格 (G0102) — no rating yet" in text
    assert "3 ratings missing." in text           # G0102, WORKER2 and WORKER3
    leader = await evaluations.listing(await actor(built, LEADER), "2026-11", now, "en")
    assert "第二网格" not in leader and "1 rating missing." in leader
    await refused(store, evaluations.listing(await actor(built, WORKER), None, now, "en"),
                  "evaluation.not_allowed")
    await refused(store, evaluations.listing(await actor(built, STAFF), "2026-13", now, "en"),
                  "evaluation.bad_month")
    await refused(store, evaluations.listing(await actor(built, STAFF), "2026-12", now, "en"),
                  "evaluation.future_month")
    october = await evaluations.listing(await actor(built, STAFF), "2026-10", now, "en")
    assert t("en", "evaluation.list_no_round", month="2026-10") in october


def test_button_data_is_read_back_and_bad_data_is_none():
    data = press_data(4, "2026-11", "G0101", 21)
    assert read_press(data) == Press(4, "2026-11", "G0101", 21)
    assert read_press(press_data("i", "2026-11", "G0101", 0)) == Press(None, "2026-11",
                                                                       "G0101", 0)
    for bad in ("ev:6:2026-11:G0101:0", "ev:4:2026-13:G0101:0", "ev:4:2026-11::0",
                "ev:4:2026-11:G0101:x", "ev:4", None, "t:4:2026-11:G0101:0"):
        assert read_press(bad) is None


@pytest.mark.parametrize("value", ["evaluation=50", "evaluation=40,ontime=20,rating=20,"
                                   "patrol=10,participation=20", "x=1", "evaluation=a"])
def test_malformed_weights_stop_start_up_naming_the_variable(value):
    with pytest.raises(SettingsError, match="^GRIDHORN_ASSESS_WEIGHTS: "):
        load_settings(assess_weights=value)


def test_weights_and_band_defaults():
    settings = load_settings()
    assert settings.assess_weights.items() == [
        ("evaluation", 40), ("ontime", 20), ("rating", 20), ("patrol", 10),
        ("participation", 10)]
    assert settings.assess_bottom_band == 60
    assert settings.evaluation_cron == "0 9 1 * *"


async def test_names_are_escaped_once(built, store):
    async with store.transaction():
        grid = await store.map.get("G0102")
        await store.map.upsert(grid.model_copy(update={"name": "二<网格> & 东"}))
    await open_november(built)
    (staff,) = await lists(store, STAFF)
    assert "2. 二&lt;网格&gt; &amp; 东 (G0102) — not rated yet" in staff.payload["text"]
    rated = await rate(built, STAFF, 3, "G0102")
    assert rated.name == "二&lt;网格&gt; &amp; 东 (G0102)"
    assert "二&lt;网格&gt; &amp; 东 (G0102) — ⭐ 3" in rated.view.text
    text = await built.schedule.evaluations.listing(await actor(built, STAFF), "2026-11",
                                                    at(2026, 12, 2), "en")
    assert "二&lt;网格&gt; &amp; 东 (G0102) — ⭐ 3.0" in text and "&amp;lt;" not in text
