"""The annual assessment (SPEC §12) on a seeded year (both engines): the measures, the
composite cell by cell against hand-computed values, the two-year flag, a year without data,
/assess's refusals and `gridhorn assess`."""

from __future__ import annotations

import asyncio
import io

import pytest
from openpyxl import load_workbook

from bot.cli import main
from bot.services.access import Action
from bot.services.assessment_files import HEADER_ROW
from bot.services.scopes import city_scope
from storage.evaluations import Evaluation
from tests.support.harness import grant, seed_map
from tests.support.schedules import Clock, add_event, add_horn, add_ticket, at, build
from tests.support.services import PROPERTY_UNIT, refused

HEAD, WORKER, LEADER, STAFF, WORKER2 = 1, 2, 3, 4, 21
NOW = at(2027, 1, 15, 10)
# the workbook's columns (1-based)
TICKETS, ON_TIME, LATE, RATE, RATING, RATINGS, DONE, DUE, HORNS, MEETINGS = range(4, 14)
JAN, FEB, MAR = 14, 15, 16
EVALUATION, COMPOSITE, PREVIOUS, FLAG = 26, 27, 28, 29


async def score(store, month, rater, unit, subject, value, position=1):
    kind = "grid" if subject == 0 else "worker"
    async with store.transaction():
        await store.evaluations.ask(Evaluation(month=month, rater_id=rater, kind=kind,
                                               unit_code=unit, subject_id=subject,
                                               position=position))
        await store.evaluations.rate(month, rater, unit, subject, value, 0.0)


async def seeded_year(store):
    """2026 (and 2025) with known facts; the hand computation is in each test."""
    await seed_map(store)
    for user_id, role, unit in ((HEAD, "building_head", "B01010101"),
                                (WORKER, "grid_worker", "G0101"),
                                (WORKER2, "grid_worker", "G0101"),
                                (LEADER, "grid_leader", "G0101"),
                                (STAFF, "community_staff", "C01")):
        await grant(store, user_id, role, unit)
    async with store.transaction():
        grid = await store.map.get("G0101")
        assert grid is not None
        await store.map.upsert(grid.model_copy(update={"patrol": "monthly"}))
    await score(store, "2026-01", STAFF, "G0101", 0, 4)
    await score(store, "2026-02", STAFF, "G0101", 0, 2)
    await score(store, "2026-01", LEADER, "G0101", WORKER, 2)
    await score(store, "2026-02", LEADER, "G0101", WORKER, 2)
    await score(store, "2026-01", LEADER, "G0101", WORKER2, 5, position=2)
    await score(store, "2025-03", LEADER, "G0101", WORKER, 1)
    await score(store, "2025-03", LEADER, "G0101", WORKER2, 5, position=2)
    # t1 on time, rated 5; t2 overdue, rated 1, whistled to MZJ; t3 open past its deadline;
    # t4 open, not yet due (neither); HEAD acknowledged t4
    t1 = await add_ticket(store, building="B01010101", grid="G0101", created=at(2026, 3, 1))
    await add_event(store, t1, "acknowledged", at(2026, 3, 1, 9), actor=WORKER)
    await add_event(store, t1, "resolved", at(2026, 3, 2), actor=WORKER)
    t2 = await add_ticket(store, building="B01010101", grid="G0101", created=at(2026, 4, 1))
    await add_event(store, t2, "acknowledged", at(2026, 4, 1, 9), actor=WORKER)
    await add_event(store, t2, "overdue", at(2026, 4, 9), data={"due": "resolve"})
    t3 = await add_ticket(store, building="B01010102", grid="G0101", created=at(2026, 5, 1))
    await add_event(store, t3, "acknowledged", at(2026, 5, 1, 9), actor=WORKER)
    t4 = await add_ticket(store, building="B01010101", grid="G0101", created=at(2026, 6, 1))
    await add_event(store, t4, "acknowledged", at(2026, 6, 1, 9), actor=HEAD)
    async with store.transaction():
        for ticket_id, status, rating, due, department in (
                (t1, "rated", 5, None, None), (t2, "rated", 1, None, "MZJ"),
                (t3, "acknowledged", None, at(2026, 5, 2).timestamp(), None),
                (t4, "acknowledged", None, at(2027, 2, 1).timestamp(), None)):
            await store.db.execute(
                "UPDATE tickets SET status = ?, rating = ?, due_at = ?, department_code = ? "
                "WHERE id = ?", (status, rating, due, department, ticket_id))
        for month in (1, 2, 3):
            await store.schedules.add_patrol("G0101", WORKER, at(2026, month, 5).timestamp(),
                                             None, None, None)
    await add_horn(store, grid="G0101", created=at(2026, 7, 4, 9),
                   confirmed=at(2026, 7, 4, 18), hours={WORKER: 1})


async def assessed(store, year="2026"):
    built = build(store, Clock(NOW), superadmins="999", default_locale="en")
    service = built.schedule.assessment
    assessment = await service.build(await city_scope(store), year, NOW)
    book = load_workbook(io.BytesIO(await service.workbook(assessment, "en")))
    return built, assessment, book


def row_of(sheet, key):
    for row in range(HEADER_ROW + 1, sheet.max_row + 1):
        if str(sheet.cell(row, 1).value) == str(key):
            return row
    raise AssertionError(f"{key} not in {sheet.title}")


async def test_workbook_has_one_sheet_per_level_with_the_header(store):
    await seeded_year(store)
    _, _, book = await assessed(store)
    assert book.sheetnames == ["Grids", "Grid leaders", "Grid workers", "Building heads",
                               "Member units", "Departments"]
    sheet = book["Grid workers"]
    assert sheet.cell(HEADER_ROW, TICKETS).value == "Tickets handled"
    assert sheet.cell(HEADER_ROW, JAN).value == "Evaluation 01"
    assert sheet.cell(HEADER_ROW, COMPOSITE).value == "Composite"
    assert sheet.cell(HEADER_ROW, FLAG).value == "Flag"
    assert "evaluation=40" in sheet.cell(2, 1).value and "below 60" in sheet.cell(2, 1).value


async def test_grid_worker_measures_and_composite_by_hand(store):
    await seeded_year(store)
    _, _, book = await assessed(store)
    sheet = book["Grid workers"]
    r = row_of(sheet, WORKER)
    values = [sheet.cell(r, c).value for c in (TICKETS, ON_TIME, LATE, RATING, RATINGS, DONE,
                                               DUE, HORNS, MEETINGS)]
    assert values == [3, 1, 2, 3, 2, 3, 12, 1, 0]
    assert sheet.cell(r, RATE).value == pytest.approx(1 / 3)
    assert [sheet.cell(r, c).value for c in (JAN, FEB, MAR)] == [2, 2, None]
    assert sheet.cell(r, EVALUATION).value == 2
    # evaluation 2/5 = 40 ×40, on time 33.33 ×20, rating 3/5 = 60 ×20, patrol 3/12 = 25 ×10,
    # participation 1 month of 12 = 8.33 ×10 → 3800 / 100
    assert sheet.cell(r, COMPOSITE).value == 38.0
    # 2025: evaluation 1/5 = 20 ×40, patrol 0/12 ×10, participation 0 ×10 → 800 / 60
    assert sheet.cell(r, PREVIOUS).value == 13.3
    assert sheet.cell(r, FLAG).value == "连续两年不胜任 / not competent two years running"
    other = row_of(sheet, WORKER2)
    # evaluation 100 ×40, patrol 0 ×10, participation 0 ×10 → 4000 / 60; 2025 likewise
    assert sheet.cell(other, COMPOSITE).value == 66.7
    assert sheet.cell(other, TICKETS).value == 0 and sheet.cell(other, RATE).value is None
    assert sheet.cell(other, FLAG).value in ("", None)


async def test_grid_leader_and_grid_rows_by_hand(store):
    await seeded_year(store)
    _, assessment, book = await assessed(store)
    leaders = book["Grid leaders"]
    r = row_of(leaders, LEADER)
    assert [leaders.cell(r, c).value for c in (JAN, FEB)] == [4, 2]
    # evaluation 3/5 = 60 ×40, patrol 0/12 ×10, participation 0 ×10 → 2400 / 60
    assert leaders.cell(r, COMPOSITE).value == 40.0
    # below the band this year, but 2025 had no evaluation of its grid: not flagged
    assert leaders.cell(r, PREVIOUS).value == 0.0 and leaders.cell(r, FLAG).value in ("", None)
    grids = book["Grids"]
    g = row_of(grids, "G0101")
    assert [grids.cell(g, c).value for c in (TICKETS, ON_TIME, LATE, RATING, DONE, DUE,
                                             HORNS)] == [4, 1, 2, 3, 3, 12, 1]
    # 60 ×40 + 33.33 ×20 + 60 ×20 + 25 ×10 + 8.33 ×10 → 4600 / 100
    assert grids.cell(g, COMPOSITE).value == 46.0
    empty = row_of(grids, "G0102")
    assert [grids.cell(empty, c).value for c in (TICKETS, DONE, DUE, HORNS, COMPOSITE)] == [
        0, 0, 0, 0, 0.0]
    departments = book["Departments"]
    d = row_of(departments, "MZJ")
    # on time 0 ×20, rating 1/5 = 20 ×20 → 400 / 40
    assert [departments.cell(d, c).value for c in (TICKETS, LATE, RATING, COMPOSITE)] == [
        1, 1, 1, 10.0]
    heads = book["Building heads"]
    h = row_of(heads, HEAD)
    assert heads.cell(h, TICKETS).value == 1 and heads.cell(h, DUE).value is None
    assert book["Member units"].max_row == HEADER_ROW          # the seam: none yet
    assert [row.name for row in assessment.flagged] == ["2"]


async def test_a_year_without_data_is_zeros_not_an_error(store):
    await seeded_year(store)
    _, assessment, book = await assessed(store, "2023")
    sheet = book["Grid workers"]
    r = row_of(sheet, WORKER)
    assert [sheet.cell(r, c).value for c in (TICKETS, ON_TIME, LATE, DONE, DUE, HORNS,
                                             MEETINGS)] == [0, 0, 0, 0, 12, 0, 0]
    assert sheet.cell(r, COMPOSITE).value == 0.0 and sheet.cell(r, FLAG).value in ("", None)
    assert assessment.flagged == []


async def test_assess_command_sends_the_workbook_through_the_outbox(store):
    await seeded_year(store)
    built = build(store, Clock(NOW), superadmins="999", default_locale="en")
    service = built.schedule.assessment
    staff = await built.schedule.access.actor(STAFF)
    assert built.schedule.access.can_somewhere(staff, Action.ASSESS)
    text = await service.asked(staff, "2026", -500, 0, "en", NOW)
    assert "Annual assessment 2026" in text and "1 grid leader or worker" in text
    (document,) = [i for i in await store.outbox.pending() if i.method == "sendDocument"]
    assert document.chat_id == -500
    assert document.payload["document"]["filename"] == "gridhorn-assessment-2026.xlsx"
    leader = await built.schedule.access.actor(LEADER)
    await refused(store, service.asked(leader, "2026", -500, 0, "en", NOW),
                  "assess.not_allowed")
    await refused(store, service.asked(staff, "26", -500, 0, "en", NOW), "assess.usage")
    await refused(store, service.asked(staff, None, -500, 0, "en", NOW), "assess.usage")
    await refused(store, service.asked(staff, "2028", -500, 0, "en", NOW),
                  "assess.future_year")


async def test_cli_assess_writes_the_workbook_and_text(tmp_path, monkeypatch, capsys):
    from storage.store import Store

    db = tmp_path / "g.db"
    store = await Store.open_sqlite(str(db))
    try:
        await seeded_year(store)
    finally:
        await store.close()
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("GRIDHORN_DEFAULT_LOCALE", "en")
    out = tmp_path / "out"
    assert await asyncio.to_thread(main, ["assess", "2026", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["gridhorn-assessment-2026.txt",
                                                     "gridhorn-assessment-2026.xlsx"]
    book = load_workbook(out / "gridhorn-assessment-2026.xlsx")
    assert book["Grid workers"].cell(row_of(book["Grid workers"], WORKER), COMPOSITE).value \
        in (38.0, 38)
    text = (out / "gridhorn-assessment-2026.txt").read_text(encoding="utf-8")
    assert "<b>" not in text and "Annual assessment 2026" in text
    assert await asyncio.to_thread(main, ["assess", "2999", "--out", str(out)]) == 2
    assert "2999" in capsys.readouterr().err


async def test_the_meeting_and_member_unit_seams_feed_their_columns(store, monkeypatch):
    """What the lead wires (SPEC §10 member units, §12 meetings) lands in the right cells."""
    from bot.services import assessment

    async def meetings(store, start, end, tz):
        if start >= at(2026, 1, 1).timestamp():
            return assessment.MeetingCounts(people={WORKER2: {3: 1, 5: 2}},
                                            units={"M01": {4: 1}, "G0102": {6: 1}})
        return assessment.MeetingCounts()

    async def members(store, scope):
        return [assessment.MemberUnitFacts(code="M01", name="县供电公司", community_code="C01")]

    monkeypatch.setattr(assessment, "meetings_attended", meetings)
    monkeypatch.setattr(assessment, "member_units", members)
    await seeded_year(store)
    _, _, book = await assessed(store)
    workers = book["Grid workers"]
    r = row_of(workers, WORKER2)
    assert workers.cell(r, MEETINGS).value == 3
    # evaluation 100 ×40, patrol 0 ×10, participation 2 months of 12 = 16.67 ×10 → 4166.7 / 60
    assert workers.cell(r, COMPOSITE).value == 69.4
    members_sheet = book["Member units"]
    m = row_of(members_sheet, "M01")
    assert members_sheet.cell(m, 2).value == "县供电公司"
    assert members_sheet.cell(m, 3).value == "欣山社区"
    assert members_sheet.cell(m, MEETINGS).value == 1
    # participation only: 1 month of 12
    assert members_sheet.cell(m, COMPOSITE).value == 8.3
    grids = book["Grids"]
    assert grids.cell(row_of(grids, "G0102"), MEETINGS).value == 1


async def test_meetings_attended_count_each_persons_and_each_units_meetings_by_month(store):
    """The meetings column reads the sign-ins (SPEC §12): a person per meeting, a unit once
    per meeting however many of its people signed in, in the month the meeting began."""
    from zoneinfo import ZoneInfo

    from bot.services.assessment import meetings_attended

    tz = ZoneInfo("Asia/Shanghai")
    march, april = at(2026, 3, 10, 19).timestamp(), at(2026, 4, 2, 19).timestamp()
    ids = []
    async with store.transaction():
        for n, starts in enumerate((march, april)):
            meeting = await store.meetings.create(
                kind="joint", unit_code="C01", grid_code=None, community_code="C01",
                title=f"m{n}", place="", agenda="", starts_at=starts, ends_at=starts + 3600,
                organiser_id=1, remind_at=None, offer_at=None, wrap_at=None,
                source_update_id=None)
            assert meeting is not None
            ids.append(meeting.id)
        for person in (11, 12):  # two of G0101's people at the March meeting
            await store.meetings.sign_in(ids[0], person, "G0101", march + 60, False)
        await store.meetings.sign_in(ids[1], 11, "G0102", april + 900, True)
    counts = await meetings_attended(store, march - 86400, april + 86400, tz)
    assert counts.people == {11: {3: 1, 4: 1}, 12: {3: 1}}
    assert counts.units == {"G0101": {3: 1}, "G0102": {4: 1}}
    assert (await meetings_attended(store, april + 86400, april + 2 * 86400, tz)).people == {}


async def test_member_units_list_their_meetings_attended_and_horns_answered(store):
    """The member units sheet (SPEC §10, §12): the member units of the map in scope, each
    with the meetings it attended (a unit once per meeting) and the horns it answered (pledged
    people, or had some confirmed by the horn's owner) in the year; participation is the share
    of the year's months with either."""
    from bot.services.assessment import member_units
    from bot.services.scopes import Scope
    from storage.models import Unit

    await seeded_year(store)
    async with store.transaction():
        await store.map.upsert(PROPERTY_UNIT)
        await store.map.upsert(Unit(code="M02", kind="member", name="县供电公司",
                                    parent_code="C01", member_type="social", position=1))
    horns = {}
    for name, created in (("march", at(2026, 3, 5)), ("july", at(2026, 7, 1)),
                          ("july2", at(2026, 7, 10)), ("before", at(2025, 6, 1))):
        horns[name] = await add_horn(store, grid=None, created=created, confirmed=None,
                                     hours={})
    async with store.transaction():
        for horn_id in horns.values():
            await store.units.call_units(horn_id, ["M01", "M02"])
        # M01: pledged in March, July and the year before; M02: only confirmed in July (2),
        # called in March without answering
        for name in ("march", "july", "before"):
            await store.units.pledge(horns[name], "M01", 3, 7, at(2026, 3, 5).timestamp())
        await store.units.confirm_unit(horns["july2"], "M02", 2)
        april = at(2026, 4, 8, 19).timestamp()
        meeting = await store.meetings.create(
            kind="joint", unit_code="C01", grid_code=None, community_code="C01", title="联席",
            place="", agenda="", starts_at=april, ends_at=april + 3600, organiser_id=STAFF,
            remind_at=None, offer_at=None, wrap_at=None, source_update_id=None)
        assert meeting is not None
        for person, unit, late in ((31, "M01", True), (32, "M02", False), (33, "M02", True)):
            await store.meetings.sign_in(meeting.id, person, unit, april + 60, late)

    community = await store.map.get("C01")
    grid = await store.map.get("G0101")
    assert community is not None and grid is not None
    assert [m.code for m in await member_units(store, Scope(units=(community,), grids=(grid,)))
            ] == ["M01", "M02"]
    assert await member_units(store, Scope(units=(grid,), grids=(grid,))) == []

    _, _, book = await assessed(store)
    sheet = book["Member units"]
    m1, m2 = row_of(sheet, "M01"), row_of(sheet, "M02")
    assert m1 < m2                                          # in map order
    assert [sheet.cell(m1, c).value for c in (2, 3, HORNS, MEETINGS)] == [
        "安居物业", "欣山社区", 2, 1]
    assert [sheet.cell(m2, c).value for c in (2, 3, HORNS, MEETINGS)] == [
        "县供电公司", "欣山社区", 1, 1]
    # participation only: M01 March, April, July = 3 of 12 months; M02 April, July = 2 of 12
    assert sheet.cell(m1, COMPOSITE).value == 25
    assert sheet.cell(m2, COMPOSITE).value == 16.7
