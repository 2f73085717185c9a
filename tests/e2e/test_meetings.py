"""Meetings (SPEC §12) through the emulator: a joint meeting published with /meeting's short
form to three staff chats and two member units (SPEC §10) — one by its bound chat, one by its
contact privately; Attend counted live on every invitation; the reminder once; the
organiser's "Open sign-in"; a member unit on time, the other late, a grid on time and the
rest not at all, shown in /meetings and the monthly report; then the minutes and two
decisions that become tickets with deadlines, each given through 点将台's lists for its
domain (a volunteer by her skill, a member unit by the domain its contact gave its resource)
and asked as "Assign / 点将" asks: the volunteer accepts, the unit's contact declines.

The wall clock is a fixed day (time_machine, ticking) so that the month's report counts the
meeting; the meeting service's clock is moved (its timed steps run by the meetings' watcher)."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.i18n import t
from bot.services.meeting_views import units_line
from bot.services.ticket_views import domain_label
from storage.models import TicketSource, Unit
from tests.support.harness import grant, seed_map
from tests.support.services import PROPERTY_UNIT
from tests.support.texts import plain, shown

pytestmark = pytest.mark.asyncio

HOUR = 3600
TZ = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=TZ)
TITLE = "垃圾分类联席会议"


async def test_a_joint_meeting_from_invitation_to_decision(harness):
    travel = time_machine.travel(MORNING, tick=True)
    clock = travel.start()
    try:
        await _joint_meeting(harness, clock)
    finally:
        travel.stop()


async def _joint_meeting(h, clock) -> None:
    emu = h.emu
    staff = emu.add_user(first_name="Staff", language_code="en")
    worker = emu.add_user(first_name="Worker", language_code="en")
    leader = emu.add_user(first_name="Leader", language_code="en")
    zhou = emu.add_user(first_name="Zhou", language_code="en")    # contact of M01 (its chat)
    qian = emu.add_user(first_name="Qian", language_code="en")    # contact of M02 (no chat)
    sweeper = emu.add_user(first_name="Sweeper", language_code="en")  # a volunteer
    runtime = await h.start_bot()
    await seed_map(h.store)
    async with h.store.transaction():
        await h.store.map.upsert(PROPERTY_UNIT)
        await h.store.map.upsert(Unit(code="M02", kind="member", name="县供电公司",
                                      parent_code="C01", member_type="resident_unit",
                                      position=1))
    await grant(h.store, staff.id, "community_staff", "C01")
    await grant(h.store, worker.id, "grid_worker", "G0101")
    await grant(h.store, leader.id, "grid_leader", "G0102")
    await grant(h.store, zhou.id, "unit_contact", "M01")
    await grant(h.store, qian.id, "unit_contact", "M02")
    await grant(h.store, sweeper.id, "volunteer", "G0101")
    async with h.store.transaction():
        await h.store.people.set_volunteer_profile(sweeper.id, ["sanitation"], None)
    for user in (staff, worker, leader, zhou, qian, sweeper):
        await h.say(user, "/start")
    # M02's contact lists a resource and says the domain it serves (orange)
    added = (await h.say(qian, "/resources add equipment 2 轮椅"))[-1]
    assert added.text == shown("en", "resource.added", id=1, name="轮椅", quantity=2,
                               kind=t("en", "resource.kind.equipment")) + "\n" + \
        shown("en", "resource.ask_domain")
    await h.press(qian, added, "rs:m:1:orange")
    assert (await h.last(qian.id)).text == shown(
        "en", "resource.domain_set", id=1, domain=domain_label("en", "orange"))
    chats = {}
    for code, by, members in (("C01", staff, [staff, worker, leader]),
                              ("G0101", worker, [staff, worker, leader]),
                              ("G0102", leader, [staff, worker, leader]),
                              ("M01", zhou, [zhou])):
        chats[code] = await h.bound_group(f"{code} 工作群", code, by, members)
        async with h.store.transaction():
            await h.store.map.set_chat_locale(chats[code].id, "en")
    chats["M02"] = qian                                  # the unit without a chat: its contact
    meetings = runtime.services.meetings
    tz = runtime.settings.tz
    start = float((int(time.time()) // HOUR + 3) * HOUR)
    when = datetime.fromtimestamp(start, tz).strftime("%Y-%m-%d %H:%M")

    # bad input first: an end in the past; then the short form to the preview, and Publish
    past = datetime.fromtimestamp(start - 2 * 86400, tz).strftime("%Y-%m-%d %H:%M")
    replies = await h.say(staff, f"/meeting joint C01 {past} 60 旧会")
    assert replies[-1].text == shown("en", "meeting.time_past")
    preview = (await h.say(staff, f"/meeting joint C01 {when} 60 {TITLE}"))[-1]
    assert TITLE in preview.text and preview.buttons
    await h.press(staff, preview, t("en", "meeting.btn_publish"))
    assert (await h.last(staff.id)).text == shown("en", "meeting.published", id=1,
                                                  title=TITLE, chats=5)
    invitations = {code: await h.last(chat.id) for code, chat in chats.items()}
    for message in invitations.values():
        assert TITLE in message.text
        assert [b.text for b in message.buttons[0]] == [t("en", "meeting.btn_attend"),
                                                        t("en", "meeting.btn_absent")]
    posts = {p.chat_id: p.unit_code for p in await h.store.meetings.posts(1, "invite")}
    assert posts == {chat.id: code for code, chat in chats.items()}
    assert not any(TITLE in m.text for m in emu.messages(zhou.id))  # M01 has its chat

    # Attend: the count is edited on every invitation (the private one too)
    answer = await h.press(worker, invitations["G0101"], t("en", "meeting.btn_attend"))
    assert answer.text == shown("en", "meeting.answer_attend", title=TITLE, count=1)
    await h.press(leader, invitations["G0102"], t("en", "meeting.btn_absent"))
    count = shown("en", "meeting.count", attending=1, absent=1)

    def current(code: str):
        return next(m for m in emu.messages(chats[code].id)
                    if m.message_id == invitations[code].message_id)

    await emu.wait_until(lambda: all(count in current(code).text for code in chats),
                         timeout=10)

    # the reminder, an hour before: once, under each invitation and to who attends
    meetings.clock = lambda: start - HOUR + 60
    runtime.meeting_watch.wake()
    reminder = shown("en", "meeting.reminder")
    await emu.wait_until(lambda: any(reminder in m.text for m in emu.messages(worker.id)),
                         timeout=10)
    await h.settle()
    assert await meetings.run_due() == 0
    await h.settle()
    for code, chat in chats.items():
        reminders = [m for m in emu.messages(chat.id) if reminder in m.text]
        assert len(reminders) == 1 and reminders[0].reply_to_message_id == \
            invitations[code].message_id
    assert not any(reminder in m.text for m in emu.messages(leader.id))

    # 20 minutes before: the organiser's "Open sign-in"
    meetings.clock = lambda: start - 20 * 60
    assert await meetings.run_due() == 1
    await h.settle()
    offer = await h.last(staff.id)
    assert offer.text == plain(t("en", "meeting.offer_signin", id=1, title=TITLE,
                                 start=when))
    await h.press(staff, offer, t("en", "meeting.btn_open_signin"))
    signin = {code: await h.last(chat.id) for code, chat in chats.items()}
    assert all(m.buttons[0][0].text == t("en", "meeting.btn_sign_in") for m in signin.values())

    # M01 signs in on time in its chat, the grid G0101 on time too, M02 late (its contact
    # privately); G0102 and the community not at all
    meetings.clock = lambda: start + 3 * 60
    answer = await h.press(zhou, signin["M01"], t("en", "meeting.btn_sign_in"))
    assert answer.text == shown("en", "meeting.signed_in")
    meetings.clock = lambda: start + 5 * 60
    answer = await h.press(worker, signin["G0101"], t("en", "meeting.btn_sign_in"))
    assert answer.text == shown("en", "meeting.signed_in")
    again = await h.press(worker, signin["G0101"], t("en", "meeting.btn_sign_in"))
    assert again.text == shown("en", "meeting.already_signed_in", title=TITLE)
    meetings.clock = lambda: start + 15 * 60
    answer = await h.press(qian, signin["M02"], t("en", "meeting.btn_sign_in"))
    assert answer.text == shown("en", "meeting.signed_in_late")
    assert [(s.unit_code, s.late) for s in await h.store.meetings.signins([1])] == [
        ("M01", False), ("G0101", False), ("M02", True)]
    labels = {"M01": "安居物业", "G0101": "第一网格", "M02": "县供电公司"}
    present = plain(units_line("en", labels, ["M01", "G0101"], ["M02"]))
    listing = (await h.say(staff, "/meetings"))[-1].text
    assert present in listing

    # after the end: sign-in is closed; the minutes, then two decisions → two tickets
    meetings.clock = lambda: start + 61 * 60
    late = await h.press(staff, signin["C01"], t("en", "meeting.btn_sign_in"))
    assert late.text == shown("en", "meeting.signin_closed", title=TITLE)
    assert await meetings.run_due() == 1
    await h.settle()
    ended = await h.last(staff.id)
    assert shown("en", "meeting.ended", id=1, title=TITLE, signed_in=3) in ended.text
    assert present in ended.text
    await h.press(staff, ended, t("en", "meeting.btn_minutes"))
    assert (await h.last(staff.id)).text == shown("en", "meeting.ask_minutes", title=TITLE)
    await h.say(staff, "一、增设投放点；二、清理楼道")
    for text, domain, who, days in (("增设两个分类投放点", "green", "Sweeper", 7),
                                     ("清理3栋楼道杂物", "orange", "🏢 县供电公司", 15)):
        await h.say(staff, text)
        await h.press(staff, await h.last(staff.id), f"mt:d:{domain}")
        picker = await h.last(staff.id)
        # 点将台 for the domain: no staff; a unit only by its resource's domain
        labels = [b.text for row in picker.buttons for b in row]
        assert who in labels and "Worker" not in labels and "🏢 安居物业" not in labels
        assert labels[-2:] == [t("en", "assign.btn_all"), t("en", "meeting.btn_nobody_yet")]
        await h.press(staff, picker, who)
        await h.press(staff, await h.last(staff.id), t("en", "meeting.btn_days", days=days))
    assert await h.store.meetings.decisions(1) == [1, 2]
    first, second = await h.store.tickets.get(1), await h.store.tickets.get(2)
    assert first is not None and second is not None
    assert (first.source, first.domain, first.assignee_id) == (TicketSource.MEETING, "green",
                                                               None)
    assert (second.source, second.domain, second.assignee_id) == (TicketSource.MEETING,
                                                                  "orange", None)
    assert first.due_at == pytest.approx(start + 61 * 60 + 7 * 86400)
    assert second.due_at == pytest.approx(start + 61 * 60 + 15 * 86400)
    for number in (1, 2):
        assert any(shown("en", "meeting.decision_receipt", id=number) == m.text
                   for m in emu.messages(staff.id))
    # each is asked privately as Assign asks; the volunteer accepts, the unit's contact
    # declines (the staff are told in the ticket's staff chat)
    ask = await h.last(sweeper.id)
    assert "#1" in ask.text and "增设两个分类投放点" in ask.text
    assert [b.callback_data for b in ask.buttons[0]] == ["t:asa:1", "t:asd:1"]
    assert (await h.press(sweeper, ask, "t:asa:1")).text == shown("en", "assign.accepted", id=1)
    assert (await h.store.tickets.get(1)).assignee_id == sweeper.id
    assert shown("en", "notice.taken", id=1) in h.texts(staff.id)[-1]   # the organiser
    ask = await h.last(qian.id)
    assert "#2" in ask.text and "清理3栋楼道杂物" in ask.text
    assert (await h.press(qian, ask, "t:asd:2")).text == shown("en", "assign.declined", id=2)
    assert any(shown("en", "assign.staff_declined", id=2, name="Qian") in text
               for code in ("C01", "G0101") for text in h.texts(chats[code].id))
    assert [e.kind for e in await h.store.tickets.events(2)][-2:] == [
        "assigned", "assign_declined"]
    assert not any(b.callback_data == "t:asa:1" for m in emu.messages(worker.id)
                   for row in m.buttons for b in row)                  # staff are not asked
    prompt = next(m for m in reversed(emu.messages(staff.id)) if m.buttons)
    await h.press(staff, prompt, t("en", "meeting.btn_done"))
    assert (await h.last(staff.id)).text == shown("en", "meeting.wrap_done")
    assert (await h.store.meetings.get(1)).minutes == "一、增设投放点；二、清理楼道"

    # the month's report (the wall clock past the meeting) counts it, by unit
    clock.move_to(datetime.fromtimestamp(start + 2 * HOUR, TZ))
    report = await h.say(staff, "/report")
    text = next(m.text for m in report if m.kind == "text")
    assert plain(t("en", "meeting.report_line", held=1,
                   units="安居物业 1/0 · 第一网格 1/0 · 县供电公司 0/1")) in text


async def test_the_guided_flow_with_buttons_and_a_refused_time(harness):
    """/meeting step by step: the kind by button, the rest typed; an end before the
    start is answered and the step asked again; a building meeting invites the building's
    chat only; a unit contact (building head) may not call one."""
    h = harness
    emu = h.emu
    worker = emu.add_user(first_name="Worker", language_code="en")
    head = emu.add_user(first_name="Head", language_code="en")
    runtime = await h.start_bot()
    await seed_map(h.store)
    await grant(h.store, worker.id, "grid_worker", "G0101")
    await grant(h.store, head.id, "building_head", "B01010101")
    for user in (worker, head):
        await h.say(user, "/start")
    building = await h.bound_group("1栋 楼事群", "B01010101", head, [head, worker])
    grid = await h.bound_group("第一网格 工作群", "G0101", worker, [worker])
    assert (await h.say(head, "/meeting"))[-1].text == shown("en", "meeting.not_staff")

    tz = runtime.settings.tz
    start = float((int(time.time()) // HOUR + 26) * HOUR)
    kinds = (await h.say(worker, "/meeting"))[-1]
    assert kinds.text == shown("en", "meeting.ask_kind")
    await h.press(worker, kinds, "mt:k:building")
    scopes = await h.last(worker.id)
    assert [row[0].callback_data for row in scopes.buttons][:2] == ["mt:u:G0101", "mt:u:E010101"]
    await h.say(worker, "b01010101")                    # a unit not among the buttons: typed
    assert (await h.last(worker.id)).text == shown("en", "meeting.ask_title")
    await h.say(worker, "1栋楼栋见面会")
    await h.say(worker, "1栋架空层")
    await h.say(worker, datetime.fromtimestamp(start, tz).strftime("%Y-%m-%d %H:%M"))
    before = datetime.fromtimestamp(start - HOUR, tz).strftime("%Y-%m-%d %H:%M")
    replies = await h.say(worker, before)
    assert replies[0].text == shown("en", "meeting.end_before_start",
                                    start=datetime.fromtimestamp(start, tz).strftime(
                                        "%Y-%m-%d %H:%M"))
    assert replies[-1].text.startswith(shown("en", "meeting.ask_end", example="")[:20])
    await h.say(worker, "45")
    preview = (await h.say(worker, "-"))[-1]
    assert "1栋楼栋见面会" in preview.text and "1栋架空层" in preview.text
    await h.press(worker, preview, "mt:pub")
    invitation = await h.last(building.id)
    assert "1栋楼栋见面会" in invitation.text and invitation.buttons
    assert not any("1栋楼栋见面会" in m.text for m in emu.messages(grid.id))
    meeting = await h.store.meetings.get(1)
    assert meeting is not None and meeting.ends_at == start + 45 * 60
    assert meeting.kind == "building" and meeting.grid_code == "G0101"
