"""Staff intake (工单录入, SPEC §11) through the emulator: a 12345 hotline case from /intake to
the caller's verdict, and the same reference entered again, refused naming the ticket."""

from __future__ import annotations

import pytest

from bot.i18n import t
from tests.support.harness import grant, seed_map
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio


async def test_a_hotline_case_from_intake_to_the_callers_verdict(harness):
    h = harness
    emu = h.emu
    worker = emu.add_user(first_name="Worker", language_code="en")
    head = emu.add_user(first_name="Head", language_code="en")
    await h.start_bot()
    await seed_map(h.store)
    await grant(h.store, worker.id, "grid_worker", "G0101")
    await grant(h.store, head.id, "building_head", "B01010101")
    for user in (worker, head):
        await h.say(user, "/start")
    grid_chat = await h.bound_group("第一网格工作群", "G0101", worker, [worker])
    async with h.store.transaction():
        await h.store.map.set_chat_locale(grid_chat.id, "en")

    # the guided flow: source, reference, building, domain, urgency, text, photos, caller
    sources = (await h.say(worker, "/intake"))[-1]
    assert shown("en", "intake.ask_source") in sources.text
    assert [b.text for row in sources.buttons for b in row][:2] == [
        t("en", "source.hotline"), t("en", "source.mailbox")]
    await h.press(worker, sources, "ik:src:hotline")
    assert (await h.last(worker.id)).text == shown("en", "intake.ask_ref")
    await h.say(worker, "A2025-0113")
    await h.say(worker, "B01010101")
    await h.press(worker, await h.last(worker.id), "ik:dom:purple")
    await h.press(worker, await h.last(worker.id), "ik:urg:routine")
    await h.say(worker, "东门路灯不亮三天了")
    photos = await h.last(worker.id)
    assert photos.text == shown("en", "intake.ask_photos")
    await h.press(worker, photos, "ik:done")
    await h.say(worker, "张三 13800000000")
    preview = await h.last(worker.id)
    assert "A2025-0113" in preview.text and "张三 13800000000" in preview.text
    await h.press(worker, preview, "ik:create")
    assert await h.store.tickets.get(2) is None
    ticket = await h.store.tickets.get(1)
    assert ticket is not None and ticket.source_ref == "A2025-0113"
    receipts = [m.text for m in emu.messages(worker.id) if "#1" in m.text]
    assert any("📞 12345 #A2025-0113" in text for text in receipts), receipts

    # the staff card names the source and the caller; the card's head as well
    card = next(m for m in emu.messages(grid_chat.id) if m.buttons and "#1" in m.text)
    assert "📞 12345 #A2025-0113" in card.text and "张三 13800000000" in card.text
    assert any("13800000000" in m.text for m in emu.messages(head.id))

    # resolved on the staff card: the notice goes to who entered it, with the verdict
    await h.press(worker, card, "t:res:1")
    prompt = await h.last(grid_chat.id)
    assert prompt.force_reply
    await h.say(worker, "已更换灯泡", chat=grid_chat, reply_to=prompt)
    notice = next(m for m in reversed(emu.messages(worker.id)) if m.buttons)
    assert shown("en", "intake.notice_resolved", id=1, note="已更换灯泡") in notice.text
    assert [b.text for b in notice.buttons[0]] == [
        t("en", "intake.verdict_satisfied"), t("en", "intake.verdict_mostly"),
        t("en", "intake.verdict_dissatisfied")]
    answer = await h.press(worker, notice, t("en", "intake.verdict_mostly"))
    assert answer.text == shown("en", "intake.verdict_recorded", id=1)
    rated = await h.store.tickets.get(1)
    assert (rated.status, rated.rating) == ("rated", 3)

    # the same source and reference again: refused, naming the ticket; nothing entered
    replies = await h.say(worker, "/intake hotline a2025-0113 B01010101 路灯又坏了")
    assert replies[-1].text == shown("en", "intake.duplicate", id=1, ref="A2025-0113",
                                     source=t("en", "source.hotline"))
    assert await h.store.tickets.get(2) is None
    assert await h.store.tickets.by_source_ref("hotline", "A2025-0113") == rated


async def test_patrol_offers_report_a_problem_with_the_source_filled_in(harness):
    h = harness
    worker = h.emu.add_user(first_name="Worker", language_code="en")
    await h.start_bot()
    await seed_map(h.store)
    await grant(h.store, worker.id, "grid_worker", "G0101")
    await h.say(worker, "/start")
    recorded = (await h.say(worker, "/patrol G0101 东门 消防通道堆物"))[-1]
    assert [b.text for row in recorded.buttons for b in row] == [
        t("en", "intake.btn_report_problem")]
    await h.press(worker, recorded, t("en", "intake.btn_report_problem"))
    assert (await h.last(worker.id)).text == shown("en", "intake.ask_building")
    await h.say(worker, "B01010101")
    await h.press(worker, await h.last(worker.id), "ik:dom:green")
    await h.press(worker, await h.last(worker.id), "ik:urg:urgent")
    await h.say(worker, "消防通道堆满杂物")
    await h.press(worker, await h.last(worker.id), "ik:done")
    await h.press(worker, await h.last(worker.id), "ik:skip")
    await h.press(worker, await h.last(worker.id), "ik:create")
    ticket = await h.store.tickets.get(1)
    assert (ticket.source, ticket.source_ref, ticket.urgency, ticket.caller_name) == \
        ("patrol", None, "urgent", None)
