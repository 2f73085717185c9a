"""Staff intake (工单录入, SPEC §11): the guided flow and the short form make a ticket on the
Submit path, with its source on the card and its caller kept among staff; bad input is
refused naming the problem and changing nothing; the same source and reference twice is one
ticket; the caller's verdict rates (and reopens) the ticket."""

from __future__ import annotations

import pytest

from bot.i18n import t
from bot.services import ticket_views as views
from bot.services.errors import Refused
from bot.services.ticket_intake import IntakePress, IntakeStep
from bot.services.ticket_states import TicketAction
from bot.services.ticket_views import CardKind
from storage.inbox import UpdateMark, current_update
from storage.models import TicketSource, TicketStatus, Urgency
from tests.support.services import refused
from tests.support.tickets import (
    BUILDING_CHAT,
    DRAFT_CARD,
    GRID_CHAT,
    HEAD,
    RESIDENT,
    STAFF,
    WORKER,
    ticket_world,
)


async def hotline_case(world, user_id=WORKER, ref="a2025-0113", create=True):
    """The whole guided flow for a 12345 hotline case, up to the preview (and Create)."""
    tickets = world.tickets
    actor = await world.actor(user_id)
    flow = await tickets.start_intake(actor)
    assert flow.step == IntakeStep.SOURCE
    flow = await tickets.intake_press(actor, IntakePress.SOURCE, "hotline")
    assert flow.step == IntakeStep.REF
    flow = await tickets.intake_answer(actor, ref, None)
    flow = await tickets.intake_answer(actor, "B01010101", None)
    assert flow.step == IntakeStep.DOMAIN
    flow = await tickets.intake_press(actor, IntakePress.DOMAIN, "purple")
    flow = await tickets.intake_press(actor, IntakePress.URGENCY, "major")
    flow = await tickets.intake_answer(actor, "东门路灯不亮 <b>三天</b>", None)
    assert flow.step == IntakeStep.PHOTOS
    await tickets.intake_answer(actor, "", "P1")
    await tickets.intake_answer(actor, "", "P2")
    flow = await tickets.intake_press(actor, IntakePress.PHOTOS_DONE, "")
    assert flow.step == IntakeStep.CALLER
    flow = await tickets.intake_answer(actor, "张三 13800000000", None)
    assert flow.step == IntakeStep.PREVIEW
    preview = await tickets.intake_prompt(actor, "en", flow)
    assert "A2025-0113" in preview.text and "13800000000" in preview.text
    assert "&lt;b&gt;三天&lt;/b&gt;" in preview.text
    if not create:
        return flow
    return await tickets.intake_press(actor, IntakePress.CREATE, "")


async def test_the_guided_flow_makes_a_ticket_on_the_submit_path(store):
    world = await ticket_world(store)
    waiting = []
    world.tickets.cards_waiting = lambda: waiting.append(True)
    ticket = await hotline_case(world)
    assert (ticket.id, ticket.source, ticket.source_ref, ticket.urgency, ticket.domain) == \
        (1, TicketSource.HOTLINE, "A2025-0113", Urgency.MAJOR, "purple")
    assert (ticket.reporter_id, ticket.caller_name, ticket.caller_phone, ticket.photos) == \
        (WORKER, "张三", "13800000000", ("P1", "P2"))
    assert ticket.status == TicketStatus.NEW and not ticket.anonymous
    assert await world.tickets.intake_flow(WORKER) is None
    assert [e.kind for e in await store.tickets.events(1)] == ["created"]
    receipt = await world.texts(WORKER)
    assert len(receipt) == 1 and "#1" in receipt[0] and "📞 12345 #A2025-0113" in receipt[0]
    assert waiting == [True] and await store.tickets.cards_pending(10) == [1]

    # the cards show the source; the caller is on the staff cards only
    await world.tickets.post_pending_cards()
    for chat_id in (GRID_CHAT, HEAD):
        card = (await world.texts(chat_id))[0]
        assert "📞 12345 #A2025-0113" in card and "张三 13800000000" in card, card
    odd = ticket.model_copy(update={"caller_name": "A&B"})  # escaped once, not twice
    head_of = views.header("en", odd, None, world.tickets.settings.tz,
                           views.reporter_label("en", odd, None))
    assert "A&amp;B 13800000000" in head_of and "&amp;amp;" not in head_of
    dept, _ = await world.tickets._card_text("en", ticket, CardKind.DEPARTMENT, -200)
    assert "Source: 📞 12345 #A2025-0113" in dept and "13800000000" not in dept
    await world.deliver()

    # posted to the building for "Me too": no caller, no source reference
    await world.tickets.post_to_building(await world.actor(WORKER), 1)
    posts = await world.texts(BUILDING_CHAT)
    assert posts and not any("13800000000" in p or "张三" in p for p in posts)


async def test_the_short_form_asks_only_the_domain(store):
    world = await ticket_world(store)
    actor = await world.actor(WORKER)
    flow = await world.tickets.intake_short(actor, "hotline A2025-0200 B01010101 路灯不亮 好几天")
    assert flow.step == IntakeStep.DOMAIN
    view = await world.tickets.intake_prompt(actor, "zh-Hans", flow)
    assert len([b for row in view.buttons for b in row]) == 8 + 1  # 7 domains, Not sure, Cancel
    ticket = await world.tickets.intake_press(actor, IntakePress.DOMAIN, "unsure")
    assert (ticket.source_ref, ticket.urgency, ticket.domain, ticket.text) == \
        ("A2025-0200", Urgency.ROUTINE, None, "路灯不亮 好几天")
    # a walk-in has no reference
    flow = await world.tickets.intake_short(actor, "walk_in B01010101 楼道堆物")
    ticket = await world.tickets.intake_press(actor, IntakePress.DOMAIN, "green")
    assert (ticket.source, ticket.source_ref) == (TicketSource.WALK_IN, None)


async def test_bad_input_is_refused_naming_the_problem_and_changes_nothing(store):
    world = await ticket_world(store)
    tickets = world.tickets
    worker, head = await world.actor(WORKER), await world.actor(HEAD)
    got = await refused(store, tickets.intake_short(worker, "fax B01010101 路灯"),
                        "intake.unknown_source")
    assert got.values["source"] == "fax" and "hotline" in got.values["sources"]
    await refused(store, tickets.intake_short(worker, "hotline B01010101 路灯不亮"),
                  "intake.ref_required")
    await refused(store, tickets.intake_short(worker, "mailbox"), "intake.ref_required")
    got = await refused(store, tickets.intake_short(head, "walk_in B01010102 楼道堆物"),
                        "intake.building_not_allowed")
    assert got.values["code"] == "B01010102"
    await refused(store, tickets.intake_short(worker, "walk_in B09999999 楼道堆物"),
                  "intake.unknown_building")
    await refused(store, tickets.intake_short(worker, "walk_in G0101 楼道堆物"),
                  "intake.unknown_building")
    await refused(store, tickets.intake_short(worker, "walk_in B01010101"), "intake.usage")
    await refused(store, tickets.start_intake(await world.actor(RESIDENT)), "intake.not_staff")
    await refused(store, tickets.intake_short(worker, "hotline A~1 B01010101 路灯"),
                  "intake.bad_ref")

    # in the guided flow a bad answer is refused and the step stays
    flow = await tickets.start_intake(head)
    await refused(store, tickets.intake_answer(head, "fax", None), "intake.unknown_source")
    await refused(store, tickets.intake_press(head, IntakePress.DOMAIN, "green"), "button.stale")
    flow = await tickets.intake_press(head, IntakePress.SOURCE, "phone")
    assert flow.step == IntakeStep.BUILDING  # a phone call has no reference number
    view = await tickets.intake_prompt(head, "en", flow)
    assert view.buttons[0][0]["callback_data"] == "ik:bld:B01010101"  # the head's building
    await refused(store, tickets.intake_answer(head, "B01010102", None),
                  "intake.building_not_allowed")
    await refused(store, tickets.intake_press(head, IntakePress.BUILDING, "B01020101"),
                  "intake.building_not_allowed")
    assert (await tickets.intake_flow(HEAD)).step == IntakeStep.BUILDING
    assert await tickets.intake_press(head, IntakePress.CANCEL, "") is None
    assert await tickets.intake_flow(HEAD) is None
    assert await store.tickets.get(1) is None


async def test_the_same_reference_twice_is_one_ticket(store):
    world = await ticket_world(store)
    tickets = world.tickets
    staff = await world.actor(STAFF)
    # two staff members at the preview with the same case: the first Create wins
    await hotline_case(world, STAFF, ref="A2025-0113", create=False)
    first = await hotline_case(world, WORKER, ref="A2025-0113")
    got = await refused(store, tickets.intake_press(staff, IntakePress.CREATE, ""),
                        "intake.duplicate")
    assert (got.values["id"], got.values["ref"]) == (first.id, "A2025-0113")
    assert (await tickets.intake_flow(STAFF)).step == IntakeStep.PREVIEW  # nothing half-done
    # refused early too: at the reference step, and in the short form
    await tickets.start_intake(staff)
    await tickets.intake_press(staff, IntakePress.SOURCE, "hotline")
    await refused(store, tickets.intake_answer(staff, "#a2025-0113", None), "intake.duplicate")
    await refused(store, tickets.intake_short(staff, "hotline A2025-0113 B01010101 又坏了"),
                  "intake.duplicate")
    # the same number from another source is another case
    await tickets.intake_short(staff, "mailbox A2025-0113 B01010101 信箱来信")
    other = await tickets.intake_press(staff, IntakePress.DOMAIN, "unsure")
    assert other.id == first.id + 1
    # and the store is the judge: an insert with a used reference makes nothing
    assert await store.tickets.by_source_ref("hotline", "A2025-0113") == first
    async with store.transaction():
        assert await store.tickets.create(
            reporter_id=WORKER, anonymous=False, building_code="B01010101", grid_code="G0101",
            community_code="C01", domain=None, text="x", photo_file_id=None,
            source_update_id=None, due_kind="ack", due_from=0, due_at=1, remind_at=1,
            source="hotline", source_ref="A2025-0113") is None


async def test_a_replayed_create_makes_nothing_twice(store):
    world = await ticket_world(store)
    actor = await world.actor(WORKER)
    token = current_update.set(UpdateMark(4242))
    try:
        await world.tickets.intake_short(actor, "walk_in B01010101 楼道堆物")
        ticket = await world.tickets.intake_press(actor, IntakePress.DOMAIN, "green")
        assert await store.tickets.by_update(4242) == ticket
        # the same update again (its flow as it was): the store refuses a second ticket
        await world.tickets.intake_short(actor, "walk_in B01010101 楼道堆物")
        with pytest.raises(Refused):
            await world.tickets.intake_press(actor, IntakePress.DOMAIN, "green")
    finally:
        current_update.reset(token)
    assert await store.tickets.get(ticket.id + 1) is None
    assert len(await world.texts(WORKER)) == 1  # one receipt


async def test_the_callers_verdict_rates_or_reopens(store):
    world = await ticket_world(store)
    tickets = world.tickets
    worker = await world.actor(WORKER)
    ticket = await hotline_case(world)
    await world.deliver()
    await tickets.resolve(worker, ticket.id, "已更换灯泡")
    notice = (await world.pending(WORKER, "sendMessage"))[-1]
    locale = await world.tickets.people.locale_for(WORKER)
    assert "📞 12345 #A2025-0113" in notice.payload["text"]
    assert t(locale, "intake.notice_resolved", id=1, note="已更换灯泡") in notice.payload["text"]
    buttons = notice.payload["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [
        views.press_data(TicketAction.RATE, 1, n) for n in (5, 3, 1)]
    # only who entered it records the verdict
    await refused(store, tickets.rate(STAFF, ticket.id, 1), "button.stale")
    reopened = await tickets.rate(WORKER, ticket.id, 1)  # 不满意
    assert (reopened.status, reopened.rating) == (TicketStatus.ESCALATED, 1)
    await tickets.resolve(worker, ticket.id, "重新修好")
    rated = await tickets.rate(WORKER, ticket.id, 5)  # 满意
    assert (rated.status, rated.rating) == (TicketStatus.RATED, 5)
    assert [e.kind for e in await store.tickets.events(1)][-2:] == ["resolved", "rated"]


@pytest.mark.sqlite_only  # counts SQLite statements
async def test_create_takes_the_statements_of_a_submit(store):
    """Speed: the intake's final transaction is the Submit's path (one insert, its timeline
    row, its receipt): no more statements than a resident's Submit."""
    world = await ticket_world(store)
    actor = await world.actor(WORKER)
    connection = store.db._write
    statements: list[str] = []

    def writes() -> list[str]:
        skip = ("SELECT", "SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")
        return [s.strip() for s in statements if not s.strip().upper().startswith(skip)]

    await world.tickets.add_to_draft(RESIDENT, "楼道灯坏了", None)
    await world.tickets.draft_shown(RESIDENT, DRAFT_CARD)
    await world.tickets.intake_short(actor, "walk_in B01010101 楼道堆物")
    connection.set_trace_callback(statements.append)
    try:
        await world.tickets.submit(RESIDENT, DRAFT_CARD)
        submit = writes()
        statements.clear()
        await world.tickets.intake_press(actor, IntakePress.DOMAIN, "green")
        intake = writes()
    finally:
        connection.set_trace_callback(None)
    assert sum(s.startswith("INSERT INTO tickets") for s in intake) == 1
    assert sum(s.startswith("INSERT INTO tickets") for s in submit) == 1
    assert len(intake) <= len(submit), (intake, submit)


async def test_reports_count_tickets_by_source_and_export_the_caller(store):
    import io
    from datetime import datetime

    from openpyxl import load_workbook

    from bot.services.reports import ReportService
    from bot.services.scopes import unit_scope

    world = await ticket_world(store)
    await world.submit()
    await hotline_case(world)
    settings = world.tickets.settings
    reports = ReportService(store, world.tickets.outbox, settings)
    now = datetime.now(settings.tz)
    report = await reports.build(await unit_scope(store, await store.map.get("C01")),
                                 now.strftime("%Y-%m"), now)
    assert report.by_source == (("resident", 1), ("hotline", 1))
    text = reports.text(report, "en")
    assert "Received by source: 📱 Resident 1 · 📞 12345 1" in text
    assert "13800000000" not in text
    book = load_workbook(io.BytesIO((await reports.files(report, "en")).workbook))
    header, *rows = list(book["Tickets"].iter_rows(values_only=True))
    assert header[-4:] == ("Source", "Reference", "Caller", "Caller's phone")
    assert rows[1][-4:] == ("📞 12345", "A2025-0113", "张三", "13800000000")
    summary = [r for r in book["Summary"].iter_rows(values_only=True) if r and r[0]]
    assert ("📞 12345", 1) in [tuple(r[:2]) for r in summary]
