"""Evaluation after each monthly theme and the annual assessment (SPEC §12) through the Bot
API emulator: the month-end list sent once, a rating by button and its change, a note by
reply, a forged press outside scope, the reminder once, /evaluations, the window closing,
and /assess's workbook."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import load_workbook

from bot.i18n import t, tn
from bot.textsplit import plain_text
from tests.support.harness import grant, seed_map
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio

MONTH = "2099-01"


def at(*parts: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*parts, tzinfo=ZoneInfo("Asia/Shanghai"))  # type: ignore[misc]


def lists(harness, user):
    """The rating lists in a person's private chat (messages with `ev:` buttons)."""
    return [m for m in harness.emu.messages(user.id)
            if any((b.callback_data or "").startswith("ev:") for row in m.buttons for b in row)]


def message_in(harness, chat_id, message_id):
    return next(m for m in harness.emu.messages(chat_id) if m.message_id == message_id)


async def test_month_end_evaluation_by_button_with_reminder_and_window(harness):
    h, emu = harness, harness.emu
    await h.start_bot()
    staff = emu.add_user(first_name="Staff", language_code="en")
    leader = emu.add_user(first_name="网格长", language_code="zh-hans")
    worker = emu.add_user(first_name="网格员", language_code="zh-hans")
    await seed_map(h.store)
    await grant(h.store, staff.id, "community_staff", "C01")
    await grant(h.store, leader.id, "grid_leader", "G0101")
    await grant(h.store, worker.id, "grid_worker", "G0101")
    for user in (staff, leader, worker):
        await h.say(user, "/start")
    scheduler = h.runtime.scheduler

    # the month ends: staff are asked about both grids, the leader about the worker; once
    ran = await scheduler.run_due(at(2099, 2, 1, 9))
    assert ("evaluation", MONTH) in {(r.job, r.period) for r in ran}
    await h.settle()
    (staff_list,) = lists(h, staff)
    assert shown("en", "evaluation.ask", month=MONTH) in staff_list.text
    assert "1. 第一网格 (G0101) — not rated yet" in staff_list.text
    assert "2. 第二网格 (G0102) — not rated yet" in staff_list.text
    (leader_list,) = lists(h, leader)
    assert "1. 网格员 · 第一网格 — 尚未评分" in leader_list.text
    assert lists(h, worker) == []
    assert not [r for r in await scheduler.run_due(at(2099, 2, 1, 10)) if r.job == "evaluation"]
    await h.settle()
    assert len(lists(h, staff)) == 1 and len(lists(h, leader)) == 1

    # a rating by button, then changed; the list shows it
    answer = await h.press(staff, staff_list, f"ev:4:{MONTH}:G0101:0")
    assert answer.text == shown("en", "evaluation.rated", name="第一网格 (G0101)", score=4)
    edited = message_in(h, staff.id, staff_list.message_id)
    assert "1. 第一网格 (G0101) — ⭐ 4" in edited.text
    assert "✅ 4" in [b.text for b in edited.buttons[0]]
    await h.press(staff, edited, f"ev:2:{MONTH}:G0101:0")
    assert (await h.store.evaluations.get(MONTH, staff.id, "G0101", 0)).score == 2
    assert "1. 第一网格 (G0101) — ⭐ 2" in message_in(h, staff.id, staff_list.message_id).text

    # a note by reply to the list: on the item rated last; it never becomes an opinion
    answers = await h.say(staff, "垃圾分类宣传到位", reply_to=staff_list)
    assert answers[-1].text == shown("en", "evaluation.noted", name="第一网格 (G0101)")
    assert (await h.store.evaluations.get(MONTH, staff.id, "G0101", 0)).note == "垃圾分类宣传到位"
    assert "📝 垃圾分类宣传到位" in message_in(h, staff.id, staff_list.message_id).text
    assert await h.store.drafts.get(staff.id) is None

    # a forged press on what was not asked of the presser (the worker, by staff): refused
    forged = emu.inject_callback(staff, staff_list, f"ev:5:{MONTH}:G0101:{worker.id}")
    answer = await forged.wait_answered(timeout=5)
    assert answer.show_alert and answer.text == shown("en", "evaluation.not_yours")
    await h.settle()
    assert await h.store.evaluations.get(MONTH, staff.id, "G0101", worker.id) is None

    # three days on: those with ratings missing are reminded, once
    await scheduler.run_due(at(2099, 2, 4, 8, 59))
    await h.settle()
    assert len(lists(h, staff)) == 1
    await scheduler.run_due(at(2099, 2, 4, 9))
    await h.settle()
    staff_lists, leader_lists = lists(h, staff), lists(h, leader)
    assert len(staff_lists) == 2 and len(leader_lists) == 2
    assert staff_lists[-1].text.startswith(
        plain_text(tn("en", "evaluation.reminder", 1, count=1, month=MONTH)))
    assert leader_lists[-1].text.startswith(
        plain_text(tn("zh-Hans", "evaluation.reminder", 1, count=1, month=MONTH)))
    await scheduler.run_due(at(2099, 2, 5, 9))
    await h.settle()
    assert len(lists(h, staff)) == 2 and len(lists(h, leader)) == 2

    # the leader rates from the reminder; /evaluations shows given and missing in scope
    await h.press(leader, leader_lists[-1], f"ev:5:{MONTH}:G0101:{worker.id}")
    text = (await h.say(staff, f"/evaluations {MONTH}"))[-1].text
    assert shown("en", "evaluation.list_title", month=MONTH, scope="欣山社区") in text
    assert "第一网格 (G0101) — ⭐ 2.0: Staff ⭐ 2" in text
    assert "第二网格 (G0102) — no rating yet: Staff missing" in text
    assert "网格员 · 第一网格 — ⭐ 5.0: 网格长 ⭐ 5" in text
    assert text.endswith(plain_text(tn("en", "evaluation.list_missing_total", 1, count=1)))
    refused = (await h.say(worker, "/evaluations"))[-1].text
    assert refused == shown("zh-Hans", "evaluation.not_allowed")

    # the next month's evaluation opens: November's ratings can no longer change
    await scheduler.run_due(at(2099, 3, 1, 9))
    await h.settle()
    late = emu.press(staff, message_in(h, staff.id, staff_list.message_id),
                     f"ev:5:{MONTH}:G0101:0")
    answer = await late.wait_answered(timeout=5)
    assert answer.show_alert and answer.text == shown("en", "evaluation.closed", month=MONTH)
    await h.settle()
    assert (await h.store.evaluations.get(MONTH, staff.id, "G0101", 0)).score == 2


async def test_assess_sends_the_workbook_and_a_short_text(harness):
    h, emu = harness, harness.emu
    await h.start_bot()
    staff = emu.add_user(first_name="Staff", language_code="en")
    worker = emu.add_user(first_name="网格员", language_code="zh-hans")
    await seed_map(h.store)
    await grant(h.store, staff.id, "community_staff", "C01")
    await grant(h.store, worker.id, "grid_worker", "G0101")
    for user in (staff, worker):
        await h.say(user, "/start")
    answers = await h.say(staff, "/assess 2025")
    texts = [m.text for m in answers]
    assert any(shown("en", "assess.title", year="2025", scope="欣山社区") in x for x in texts)
    (document,) = [m for m in emu.messages(staff.id) if m.kind == "document"]
    assert document.text == shown("en", "assess.caption", year="2025")
    assert document.file_name == "gridhorn-assessment-2025.xlsx"
    book = load_workbook(io.BytesIO(document.document))
    assert book.sheetnames[:3] == [t("en", "assess.sheet_grids"),
                                   t("en", "assess.sheet_grid_leaders"),
                                   t("en", "assess.sheet_grid_workers")]
    workers = book[t("en", "assess.sheet_grid_workers")]
    assert workers.cell(5, 1).value == str(worker.id) and workers.cell(5, 4).value == 0
    assert (await h.say(worker, "/assess 2025"))[-1].text == shown("zh-Hans",
                                                                  "assess.not_allowed")
    assert (await h.say(staff, "/assess soon"))[-1].text == shown("en", "assess.usage")
