"""Meetings (SPEC §12) over both stores: the flow and its refusals, publishing, the live
count, the reminder exactly once, sign-in (window, once, on time and late), minutes and
decisions as tickets, attendance for the evaluation, the nudge and the monthly report."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.i18n import t
from bot.services import periods
from bot.services.meeting_flow import Step
from bot.services.meeting_nudge import MeetingNudge
from bot.services.meeting_views import Press
from bot.services.meetings import Decided, MeetingService, WrapStep
from bot.services.outbox import Outbox
from bot.services.reports import ReportService
from bot.services.scopes import city_scope
from bot.services.ticket_views import when
from bot.settings import SettingsError, load_settings
from storage.models import (
    Flow,
    Meeting,
    MeetingKind,
    OutboxItem,
    TicketSource,
    TicketStatus,
    Unit,
)
from storage.store import Store
from tests.support import schedules
from tests.support.harness import grant, seed_map
from tests.support.schedules import Clock as SchedulerClock
from tests.support.schedules import at
from tests.support.services import PROPERTY_UNIT, refused
from tests.support.tickets import (
    BUILDING_CHAT,
    COMMUNITY_CHAT,
    GRID_CHAT,
    HEAD,
    STAFF,
    VOLUNTEER,
    WORKER,
    TicketWorld,
    bind,
    ticket_world,
)

pytestmark = pytest.mark.asyncio

HOUR = 3600
LEADER, OTHER = 3, 11
SWEEPER, CONTACT = 12, 13
GRID2_CHAT = -500
TZ = ZoneInfo("Asia/Shanghai")     # the tests' settings


def meetings_of(world: TicketWorld, restarted: bool = False) -> MeetingService:
    """The meeting service over the world's ticket service (`restarted`: a new one, nothing
    kept in memory, as after a restart)."""
    tickets = world.tickets
    outbox = Outbox(world.store, tickets.settings) if restarted else tickets.outbox
    return MeetingService(world.store, world.access, tickets.people, outbox,
                          tickets.settings, tickets, clock=world.clock)


async def setup(store: Store) -> tuple[TicketWorld, MeetingService]:
    world = await ticket_world(store)
    await grant(store, LEADER, "grid_leader", "G0101")
    async with store.transaction():
        await store.people.ensure(OTHER)
    await bind(store, "G0102", GRID2_CHAT)
    return world, meetings_of(world)


def ahead(world: TicketWorld, hours: int) -> float:
    """A start this many hours ahead, on the full hour (times are typed to the minute)."""
    return float((int(world.clock()) // HOUR + hours) * HOUR)


def local(moment: float) -> str:
    """A moment as staff type it, in the tests' time zone."""
    return datetime.fromtimestamp(moment, TZ).strftime("%Y-%m-%d %H:%M")


async def publish(meetings: MeetingService, user_id: int, text: str) -> Meeting:
    actor = await meetings.access.actor(user_id)
    flow = await meetings.short_form(actor, text)
    assert flow.step == Step.PREVIEW
    meeting, _ = await meetings.publish(actor)
    return meeting


def short(kind: str, unit: str, start: float, minutes: int, title: str) -> str:
    return f"{kind} {unit} {local(start)} {minutes} {title}"


async def test_the_guided_flow_publishes_a_joint_meeting_to_the_staff_chats(store):
    world, meetings = await setup(store)
    staff = await world.actor(STAFF)
    start = ahead(world, 48)
    flow = await meetings.start(staff)
    view = await meetings.prompt(staff, "en", flow)
    assert view.text == t("en", "meeting.ask_kind")
    assert [row[0]["callback_data"] for row in view.buttons][:4] == [
        "mt:k:joint", "mt:k:face_to_face", "mt:k:building", "mt:k:council"]
    flow = await meetings.press(staff, Press.KIND, "joint")
    await refused(store, meetings.press(staff, Press.KIND, "joint"), "button.stale")
    flow = await meetings.press(staff, Press.SCOPE, "C01")
    for text in ("垃圾分类联席会议", "社区会议室"):
        flow = await meetings.answer(staff, text)
    # bad input: a start in the past, then an end before the start
    await refused(store, meetings.answer(staff, local(world.clock() - 2 * HOUR)),
                  "meeting.time_past")
    await refused(store, meetings.answer(staff, "明天"), "meeting.bad_time")
    flow = await meetings.answer(staff, local(start))
    assert flow.step == Step.END
    await refused(store, meetings.answer(staff, local(start - HOUR)), "meeting.end_before_start")
    flow = await meetings.answer(staff, "90")
    flow = await meetings.answer(staff, "一、分类投放点；二、督导员排班")
    assert flow.step == Step.PREVIEW and flow.data["end"] == start + 90 * 60
    preview = await meetings.prompt(staff, "en", flow)
    assert "垃圾分类联席会议" in preview.text and "欣山社区 (C01)" in preview.text
    meeting, invited = await meetings.publish(staff)
    assert (meeting.kind, meeting.unit_code, meeting.grid_code) == (MeetingKind.JOINT, "C01", None)
    assert invited == 3                     # the community's and both grids' staff chats
    for chat in (COMMUNITY_CHAT, GRID_CHAT, GRID2_CHAT):
        texts = await world.texts(chat)
        assert len(texts) == 1 and "垃圾分类联席会议" in texts[0] and "0 · " in texts[0]
    assert await world.texts(BUILDING_CHAT) == []
    assert await store.flows.get(STAFF) is None
    await refused(store, meetings.publish(staff), "meeting.flow_gone")


async def test_refusals_change_nothing(store):
    world, meetings = await setup(store)
    head, worker = await world.actor(HEAD), await world.actor(WORKER)
    start = ahead(world, 24)
    await refused(store, meetings.start(head), "meeting.not_staff")
    await refused(store, meetings.short_form(worker, short("joint", "G0102", start, 60, "x")),
                  "meeting.scope_not_allowed")
    await refused(store, meetings.short_form(worker, short("party", "G0101", start, 60, "x")),
                  "meeting.bad_kind")
    await refused(store, meetings.short_form(worker, short("joint", "MZJ", start, 60, "x")),
                  "meeting.bad_scope")
    await refused(store, meetings.short_form(
        worker, short("joint", "G0101", world.clock() - 86400, 60, "x")), "meeting.time_past")
    await refused(store, meetings.short_form(worker, short("joint", "G0101", start, 0, "x")),
                  "meeting.bad_minutes")
    await refused(store, meetings.short_form(worker, "joint G0101"), "meeting.usage")
    # a preview whose time passed before Publish: refused, the draft kept
    await meetings.short_form(worker, short("face_to_face", "G0101", world.clock() + 60, 1,
                                            "x"))
    world.clock.now += 3 * 60
    await refused(store, meetings.publish(worker), "meeting.time_past")


async def test_answers_keep_a_live_count_and_the_reminder_goes_once(store):
    world, meetings = await setup(store)
    start = ahead(world, 3)
    meeting = await publish(meetings, WORKER, short("face_to_face", "G0101", start, 60,
                                                    "面对面恳谈"))
    assert await world.texts(BUILDING_CHAT) and await world.texts(GRID_CHAT) == []
    await world.deliver()
    head, other = await world.actor(HEAD), await world.actor(OTHER)
    await meetings.answer_invitation(head, meeting.id, BUILDING_CHAT, True)
    _, count = await meetings.answer_invitation(other, meeting.id, BUILDING_CHAT, True)
    assert count == 2
    _, count = await meetings.answer_invitation(other, meeting.id, BUILDING_CHAT, False)
    assert count == 1 and await store.meetings.counts(meeting.id) == (1, 1)
    edits = [i for i in await world.pending(BUILDING_CHAT, "editMessageText")]
    assert len(edits) == 1                                       # coalesced into one edit
    assert t("zh-Hans", "meeting.count", attending=1, absent=1) in edits[0].payload["text"]
    await refused(store, meetings.answer_invitation(head, meeting.id, GRID_CHAT, True),
                  "button.stale")                               # not invited there
    await world.deliver()

    assert await meetings.run_due() == 0                         # 3 h before: nothing due
    world.clock.now = start - HOUR + 1
    assert await meetings.run_due() == 1
    reminders = [x for x in await world.texts(BUILDING_CHAT)
                 if t("zh-Hans", "meeting.reminder") in x]
    assert len(reminders) == 1
    assert any(t("zh-Hans", "meeting.reminder") in x for x in await world.texts(HEAD))
    assert not any(t("zh-Hans", "meeting.reminder") in x for x in await world.texts(OTHER))
    assert await meetings.run_due() == 0
    assert await meetings_of(world, restarted=True).run_due() == 0   # a restart: not again
    assert (await store.meetings.get(meeting.id)).remind_at is None


async def test_sign_in_within_the_window_once_on_time_or_late(store):
    world, meetings = await setup(store)
    start = ahead(world, 2)
    meeting = await publish(meetings, STAFF, short("joint", "C01", start, 60, "联席会议"))
    await world.deliver()
    staff, worker, leader = (await world.actor(STAFF), await world.actor(WORKER),
                             await world.actor(LEADER))
    await refused(store, meetings.open_signin(staff, meeting.id), "meeting.signin_not_yet")
    world.clock.now = start - 20 * 60
    assert await meetings.run_due() == 2             # the reminder and the organiser's button
    offer = [x for x in await world.pending(STAFF) if x.payload.get("reply_markup")]
    assert offer[-1].payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == \
        f"mt:o:{meeting.id}"
    await refused(store, meetings.open_signin(worker, meeting.id), "meeting.not_organiser")
    _, posted = await meetings.open_signin(staff, meeting.id)
    assert posted == 3
    await refused(store, meetings.open_signin(staff, meeting.id), "meeting.signin_already_open")
    await world.deliver()
    await refused(store, meetings.sign_in(worker, meeting.id, BUILDING_CHAT), "button.stale")
    first = await meetings.sign_in(worker, meeting.id, GRID_CHAT)
    assert (first.unit_code, first.late) == ("G0101", False)
    await refused(store, meetings.sign_in(worker, meeting.id, GRID_CHAT),
                  "meeting.already_signed_in")
    world.clock.now = start + 11 * 60                 # the late mark is 10 minutes
    late = await meetings.sign_in(leader, meeting.id, GRID2_CHAT)
    assert (late.unit_code, late.late) == ("G0102", True)
    world.clock.now = start + 61 * 60
    await refused(store, meetings.sign_in(staff, meeting.id, COMMUNITY_CHAT),
                  "meeting.signin_closed")
    summary = await meetings.attendance(meeting)
    assert (summary.signed_in, summary.on_time, summary.late) == (2, ["G0101"], ["G0102"])
    listing = await meetings.listing(staff, "en")
    assert "联席会议" in listing and "第一网格" in listing and "第二网格" in listing
    rows = await store.meetings.attendance_between(start - 86400, start + 86400)
    assert [(r.user_id, r.unit_code, r.late, r.kind) for r in rows] == [
        (WORKER, "G0101", False, MeetingKind.JOINT), (LEADER, "G0102", True, MeetingKind.JOINT)]
    assert await store.meetings.attendance_between(start + 1, start + 86400) == []


async def test_a_joint_meeting_invites_member_units_by_their_chat_else_their_contacts(store):
    """SPEC §10/§12: a joint meeting invites the member units of its communities — a unit's
    bound chat, else each of its contacts privately (not one who blocked the bot); a chat
    gone inactive counts as none. Every invitation stands for its unit: a sign-in there
    counts for the member unit. Other kinds invite no member unit."""
    from storage.models import Chat

    world, meetings = await setup(store)
    contact, contact2, blocked, contact3 = 41, 42, 43, 44
    async with store.transaction():
        for code, kind, position in (("M01", "property", 0), ("M02", "social", 1),
                                     ("M03", "owners", 2)):
            await store.map.upsert(Unit(code=code, kind="member", name=code, parent_code="C01",
                                        member_type=kind, position=position))
    await bind(store, "M01", -700)
    await bind(store, "M03", -701)
    async with store.transaction():
        await store.map.upsert_chat(Chat(chat_id=-701, type="supergroup", title="M03",
                                         active=False))
    for user_id, unit in ((contact, "M01"), (contact2, "M02"), (blocked, "M02"),
                          (contact3, "M03")):
        await grant(store, user_id, "unit_contact", unit)
    async with store.transaction():
        await store.people.set_blocked(blocked, True)

    start = ahead(world, 2)
    meeting = await publish(meetings, STAFF, short("joint", "G0101", start, 60, "联席会议"))
    posts = {p.chat_id: p.unit_code for p in await store.meetings.posts(meeting.id, "invite")}
    assert posts == {GRID_CHAT: "G0101", -700: "M01", contact2: "M02", contact3: "M03"}
    assert any("联席会议" in text for text in await world.texts(contact2))
    assert await world.texts(contact) == []               # M01 is invited in its chat
    await world.deliver()

    world.clock.now = start - 20 * 60
    await meetings.run_due()
    await meetings.open_signin(await world.actor(STAFF), meeting.id)
    world.clock.now = start + 60
    signed = await meetings.sign_in(await world.actor(contact2), meeting.id, contact2)
    assert (signed.unit_code, signed.late) == ("M02", False)
    summary = await meetings.attendance(meeting)
    assert (summary.on_time, summary.late) == (["M02"], [])

    other = await publish(meetings, STAFF, short("council", "C01", ahead(world, 5), 60, "议事会"))
    assert {p.unit_code for p in await store.meetings.posts(other.id, "invite")} == \
        {"B01010101"}


async def test_minutes_and_decisions_become_tickets(store):
    """Each decision: a domain, an assignee from 点将台's lists for it (as Assign on a card
    lists them: people by skill, member units by their resources' domains, "All"), a
    deadline; its ticket is asked of the pick exactly as Assign asks (Accept / Decline)."""
    world, meetings = await setup(store)
    async with store.transaction():
        await store.people.touch(SWEEPER, "老周", None, None, "en", True)
        await store.people.set_volunteer_profile(SWEEPER, ["sanitation"], None)
        await store.people.touch(CONTACT, "物业张", None, None, "en", True)
        await store.map.upsert(PROPERTY_UNIT)
        await store.units.set_resource_domain(await store.units.add_resource(
            "M01", "vehicle", "清运车", 1, CONTACT, 0), "green")
    await grant(store, SWEEPER, "volunteer", "G0101")
    await grant(store, CONTACT, "unit_contact", "M01")
    start = ahead(world, 2)
    meeting = await publish(meetings, STAFF, short("joint", "C01", start, 60, "联席会议"))
    staff, worker = await world.actor(STAFF), await world.actor(WORKER)
    await refused(store, meetings.start_wrap(staff, meeting.id), "meeting.not_ended")
    world.clock.now = start + HOUR + 1
    assert await meetings.run_due() == 3                 # reminder, button (moot), minutes
    ended = [x for x in await world.pending(STAFF)
             if x.payload.get("reply_markup", {}).get("inline_keyboard", [[{}]])[0][0].get(
                 "callback_data") == f"mt:m:{meeting.id}"]
    assert len(ended) == 1
    await refused(store, meetings.start_wrap(worker, meeting.id), "meeting.not_organiser")
    flow = await meetings.start_wrap(staff, meeting.id)
    assert flow.step == WrapStep.MINUTES
    flow = await meetings.wrap_answer(staff, "议定两件事")
    assert (await store.meetings.get(meeting.id)).minutes == "议定两件事"
    assert flow.step == WrapStep.DECISION
    flow = await meetings.wrap_answer(staff, "增设两个分类投放点")
    assert flow.step == WrapStep.DOMAIN
    await refused(store, meetings.wrap_press(staff, Press.ASSIGNEE, f"p{SWEEPER}"),
                  "button.stale")
    flow = await meetings.wrap_press(staff, Press.DOMAIN, "green")
    # green: the sanitation volunteer and M01 (a green resource); staff are not 点将台's
    view = await meetings.wrap_prompt(staff, "en", flow)
    assert _data(view) == [f"mt:a:p{SWEEPER}", "mt:a:uM01", "mt:a:*", "mt:a:-"]
    assert view.text.startswith(t("en", "meeting.ask_assignee", domain="x").split("x")[0])
    await refused(store, meetings.wrap_press(staff, Press.ASSIGNEE, f"p{WORKER}"),
                  "assign.not_candidate_now")
    await refused(store, meetings.wrap_press(staff, Press.ASSIGNEE, "zz"), "button.stale")
    flow = await meetings.wrap_press(staff, Press.ASSIGNEE, "*")        # All
    assert _data(await meetings.wrap_prompt(staff, "en", flow)) == [
        f"mt:a:p{VOLUNTEER}", f"mt:a:p{SWEEPER}", "mt:a:uM01", "mt:a:-"]
    flow = await meetings.wrap_press(staff, Press.ASSIGNEE, f"p{SWEEPER}")
    assert flow.step == WrapStep.DEADLINE
    decided = await meetings.wrap_press(staff, Press.DEADLINE, "7")
    assert isinstance(decided, Decided) and decided.flow.step == WrapStep.DECISION
    ticket = decided.ticket
    assert (ticket.source, ticket.domain, ticket.assignee_id, ticket.status, ticket.level) == (
        TicketSource.MEETING, "green", None, TicketStatus.ACKNOWLEDGED, "community")
    assert ticket.due_at == pytest.approx(world.clock() + 7 * 86400)
    assert "增设两个分类投放点" in ticket.text
    # asked as Assign asks: the ticket privately with Accept / Decline, ASSIGN's row
    asks = await world.pending(SWEEPER, "sendMessage")
    assert len(asks) == 1 and "增设两个分类投放点" in asks[0].payload["text"]
    assert t("en", "assign.ask_due", due=when(ticket.due_at, TZ)) in asks[0].payload["text"]
    assert [b["callback_data"] for b in asks[0].payload["reply_markup"]["inline_keyboard"][0]
            ] == [f"t:asa:{ticket.id}", f"t:asd:{ticket.id}"]
    assert [e.kind for e in await store.tickets.events(ticket.id)][-1] == "assigned"
    accepted = await world.tickets.answer_assignment(await world.actor(SWEEPER), ticket.id,
                                                     True)
    assert accepted.assignee_id == SWEEPER
    assert [e.kind for e in await store.tickets.events(ticket.id)][-1] == "taken"

    # the second: purple lists no unit (M01 serves green); through "All", M01's contact is
    # asked, with a typed date, and declines
    await meetings.wrap_answer(staff, "楼道堆物清理")
    flow = await meetings.wrap_press(staff, Press.DOMAIN, "purple")
    assert _data(await meetings.wrap_prompt(staff, "en", flow)) == ["mt:a:*", "mt:a:-"]
    await meetings.wrap_press(staff, Press.ASSIGNEE, "*")
    await meetings.wrap_press(staff, Press.ASSIGNEE, "uM01")
    await refused(store, meetings.wrap_answer(staff, "2020-01-01"), "meeting.bad_deadline")
    second = await meetings.wrap_answer(staff, "2099-12-31")
    assert isinstance(second, Decided) and second.ticket.assignee_id is None
    assert [(a.user_id, a.unit_code) for a in await store.assignments.of_ticket(
        second.ticket.id)] == [(CONTACT, "M01")]
    await world.tickets.answer_assignment(await world.actor(CONTACT), second.ticket.id, False)
    assert [e.kind for e in await store.tickets.events(second.ticket.id)][-1] == \
        "assign_declined"

    # the third: the volunteer picked loses her role before the deadline is given: the
    # decision is not made and the pick asked again; then no one yet (Assign on its card)
    await meetings.wrap_answer(staff, "下月再议")
    await meetings.wrap_press(staff, Press.DOMAIN, "red")
    await meetings.wrap_press(staff, Press.ASSIGNEE, f"p{SWEEPER}")
    async with store.transaction():
        assert await store.people.revoke(SWEEPER, "volunteer", "G0101")
    back = await meetings.wrap_press(staff, Press.DEADLINE, "30")
    assert isinstance(back, Flow) and back.step == WrapStep.ASSIGNEE
    view = await meetings.wrap_prompt(staff, "en", back)
    assert view.text.startswith(t("en", "assign.not_candidate_now"))
    assert f"mt:a:p{SWEEPER}" not in _data(view)
    assert len(await store.meetings.decisions(meeting.id)) == 2
    third = await meetings.wrap_press(staff, Press.ASSIGNEE, "-")
    third = await meetings.wrap_press(staff, Press.DEADLINE, "30")
    assert isinstance(third, Decided) and await store.assignments.of_ticket(
        third.ticket.id) == []
    assert await store.meetings.decisions(meeting.id) == [
        ticket.id, second.ticket.id, third.ticket.id]
    assert await meetings.wrap_press(staff, Press.DONE, "") is None
    assert await store.flows.get(STAFF) is None


def _data(view) -> list[str]:
    return [b["callback_data"] for row in view.buttons for b in row]


async def test_the_nudge_and_the_monthly_report(store):
    world, meetings = await setup(store)
    start = ahead(world, 2)
    meeting = await publish(meetings, WORKER, short("face_to_face", "G0101", start, 60,
                                                    "面对面"))
    world.clock.now = start + 5 * 60
    await meetings.run_due()
    await meetings.open_signin(await world.actor(WORKER), meeting.id)
    await world.deliver()
    await meetings.sign_in(await world.actor(HEAD), meeting.id, BUILDING_CHAT)
    await grant(store, OTHER, "grid_leader", "G0102")

    nudger = MeetingNudge(store, world.access, world.tickets.people, world.tickets.outbox,
                          world.tickets.settings)
    now = datetime.fromtimestamp(start + HOUR, TZ)
    month = periods.month_key(now)
    async with store.transaction():
        told = await nudger.nudge(month, now)
    assert told == 1                                    # G0102's leader; G0101 met
    assert any("G0102" in x for x in await world.texts(OTHER))
    assert not any("G0101" in x for x in await world.texts(LEADER))
    async with store.transaction():
        assert await nudger.nudge(periods.shift_month(month, -1), now) == 0   # a past month

    reports = ReportService(store, world.tickets.outbox, world.tickets.settings)
    report = await reports.build(await city_scope(store), month, now)
    assert report.meetings_held == 1 and report.meeting_units == (("1栋", 1, 0),)
    assert t("en", "meeting.report_line", held=1, units="1栋 1/0") in reports.text(report, "en")


async def test_bad_meeting_settings_stop_start_up_naming_the_variable():
    for name, value in (("meeting_reminder", "an hour"), ("meeting_late", "10"),
                        ("meeting_nudge_cron", "0 9 20 *")):
        with pytest.raises(SettingsError, match=f"GRIDHORN_{name.upper()}"):
            load_settings(**{name: value})
    settings = load_settings()
    assert (settings.meeting_reminder_s, settings.meeting_late_s) == (3600, 600)


async def test_the_nudge_runs_once_per_month_from_the_scheduler(store):
    """GRIDHORN_MEETING_NUDGE_CRON: the 20th's run tells the grid leaders once; a second fire
    and a restart the same month tell no one again; the next month's run does."""
    await seed_map(store)
    await grant(store, LEADER, "grid_leader", "G0101")
    clock = SchedulerClock(at(2026, 12, 19, 12))
    built = schedules.build(store, clock)
    await built.scheduler.run_due()                   # November's catch-up: no one told

    def nudges(items: list[OutboxItem]) -> list[OutboxItem]:
        return [i for i in items if i.chat_id == LEADER and "G0101" in i.payload["text"]]

    assert nudges(await store.outbox.pending()) == []
    clock.set(at(2026, 12, 20, 9))
    ran = await built.scheduler.run_due()
    assert ("meeting_nudge", "2026-12", 1) in [(r.job, r.period, r.posts) for r in ran]
    clock.set(at(2026, 12, 20, 9, 30))
    await built.scheduler.run_due()
    await schedules.build(store, clock).scheduler.run_due()          # a restart
    assert len(nudges(await store.outbox.pending())) == 1
    clock.set(at(2027, 1, 20, 9))
    await built.scheduler.run_due()
    assert len(nudges(await store.outbox.pending())) == 2
