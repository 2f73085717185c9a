"""Annual assessment 年度考核 (SPEC §12): `/assess YYYY` and `gridhorn assess YYYY --out DIR`.

One row per grid, grid leader, grid worker, building head, member unit and department in
scope, with the year's measures (all in the configured time zone, the year [Jan 1, Jan 1)):

- tickets handled: a grid's tickets received in the year; a person's, those received in the
  year on which they took a handling step (acknowledge, reply, whistle, resolve, …); a
  department's, those whistled to it;
- on time / late: of those, a ticket that went overdue, or is still open past its deadline
  (at the time of the assessment), is late; one resolved (or rated) without going overdue is
  on time; open tickets not yet due, rejected and merged ones count neither way;
- average rating: the residents' ratings (1–5) of those tickets;
- patrols done vs due: a grid's patrols recorded in the year and the periods of its patrol
  frequency begun in the year (up to now); a grid leader's or worker's, their own patrols
  against the periods of the grids they hold;
- horns answered: check-ins standing (or confirmed present) in the year; a grid's, at its
  horns; a member unit's, the horns sounded in the year it pledged people to (or had people
  confirmed at), `member_horns_answered`;
- meetings attended: `meetings_attended` (sign-ins at meetings, SPEC §12);
- the twelve monthly evaluation scores (the average of the month's ratings): a grid's from
  community staff, a grid worker's from their grid leaders, a grid leader's the average of
  their grids' scores;
- composite (0–100): the weighted average (GRIDHORN_ASSESS_WEIGHTS) of the measures that
  have data: evaluation = average monthly score ÷ 5, on-time rate, rating = average ÷ 5,
  patrol = min(done, due) ÷ due, participation = the share of the year's months (so far) with
  a horn answered or a meeting attended; none with data: no composite;
- "not competent two years running" (grid leaders and workers): a composite below the bottom
  band (GRIDHORN_ASSESS_BOTTOM_BAND) this year and the year before, each year with monthly
  evaluation scores.

Grid leaders, workers and building heads are those holding the role now. A year without data
gives rows of zeros, not an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo

from bot.cron import cron_trigger
from bot.i18n import t, tn
from bot.services import periods
from bot.services.access import Access, Action, Actor
from bot.services.assessment_data import Assessment, Row, composite
from bot.services.assessment_files import render_workbook
from bot.services.errors import Refused
from bot.services.outbox import Outbox, Priority, file_field
from bot.services.scopes import Scope, actor_scope, city_scope
from bot.settings import Settings
from storage.evaluations import CLOSED, GRID, OPEN, WORKER, Evaluation, YearTicket
from storage.models import Patrol, RoleGrant, Unit
from storage.store import Store

LEVELS = ("grids", "grid_leaders", "grid_workers", "building_heads", "member_units",
          "departments")
MAX_FLAGGED_SHOWN = 20


# ---------------------------------------------------------------------- meetings, member units

@dataclass(frozen=True)
class MeetingCounts:
    """Meetings attended, by month (1–12 → count), per person and per unit (member units,
    grids, communities)."""

    people: dict[int, dict[int, int]] = field(default_factory=dict)
    units: dict[str, dict[int, int]] = field(default_factory=dict)


async def meetings_attended(store: Store, start: float, end: float,
                            tz: tzinfo) -> MeetingCounts:
    """The meetings each person and unit attended (signed in, on time or late) in [start,
    end), by local month of the meeting's start: a unit counts once per meeting however
    many of its people signed in."""
    counts = MeetingCounts()
    seen: set[tuple[str, int]] = set()
    starts = {m.id: m.starts_at for m in await store.meetings.between(start, end)}
    for row in await store.meetings.attendance_between(start, end):
        month = datetime.fromtimestamp(starts.get(row.meeting_id, row.at), tz).month
        person = counts.people.setdefault(row.user_id, {})
        person[month] = person.get(month, 0) + 1
        if (row.unit_code, row.meeting_id) not in seen:
            seen.add((row.unit_code, row.meeting_id))
            unit = counts.units.setdefault(row.unit_code, {})
            unit[month] = unit.get(month, 0) + 1
    return counts


@dataclass(frozen=True)
class MemberUnitFacts:
    """A member unit (SPEC §10) as the assessment lists it."""

    code: str
    name: str
    community_code: str | None = None


async def member_units(store: Store, scope: Scope) -> list[MemberUnitFacts]:
    """The member units (SPEC §10) of the communities the scope holds (all for the city), in
    map order."""
    if scope.city:
        members = await store.map.members()
    else:
        communities: list[str] = []
        for top in scope.units:
            communities += [u.code for u in await store.map.descendants(top.code, "community")
                            if u.code not in communities]
        members = await store.map.members(communities) if communities else []
    return [MemberUnitFacts(code=u.code, name=u.name, community_code=u.parent_code)
            for u in members]


async def member_horns_answered(store: Store, start: float, end: float,
                                tz: tzinfo) -> dict[str, dict[int, int]]:
    """The horns each member unit answered in [start, end), by local month of the horn."""
    counts: dict[str, dict[int, int]] = {}
    for unit_code, _, sounded in await store.units.answered_between(start, end):
        month = datetime.fromtimestamp(sounded, tz).month
        unit = counts.setdefault(unit_code, {})
        unit[month] = unit.get(month, 0) + 1
    return counts


def patrol_periods(frequency: str | None, start: datetime, end: datetime) -> int:
    """How many periods of a patrol frequency begin in [start, end)."""
    if not frequency or end <= start:
        return 0
    if frequency in ("daily", "weekly", "monthly"):
        keys = set()
        day = start
        while day < end:
            period = periods.patrol_period(frequency, day)
            if period is not None and period.start >= start:  # begun before: last year's
                keys.add(period.key)
            day = datetime.combine(day.date() + timedelta(days=1), datetime.min.time(),
                                   tzinfo=day.tzinfo)
        return len(keys)
    try:
        trigger = cron_trigger(frequency, start.tzinfo)  # type: ignore[arg-type]
    except ValueError:
        return 0
    count, moment = 0, trigger.get_next_fire_time(None, start)
    while moment is not None and moment < end and count < 200_000:
        count += 1
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return count


@dataclass(frozen=True)
class _Year:
    """The facts of one year, read once."""

    start: datetime
    end: datetime               # the year's end, or now for the current year
    tickets: list[YearTicket]
    patrols: list[Patrol]
    checkins: list[tuple[int, str | None, int]]      # person, grid, local month
    scores: list[Evaluation]
    meetings: MeetingCounts
    now: float
    member_horns: dict[str, dict[int, int]] = field(default_factory=dict)  # unit → month → n


class AssessmentService:
    def __init__(self, store: Store, access: Access, outbox: Outbox,
                 settings: Settings) -> None:
        self.store = store
        self.access = access
        self.outbox = outbox
        self.settings = settings

    # ------------------------------------------------------------------ asking

    @staticmethod
    def parse_year(text: str | None, now: datetime) -> str:
        if text is None or not (text.isdigit() and len(text) == 4):
            raise Refused("assess.usage")
        if int(text) > now.year:
            raise Refused("assess.future_year", year=text)
        return text

    async def asked(self, actor: Actor, year_text: str | None, chat_id: int, thread_id: int,
                    locale: str, now: datetime) -> str:
        """`/assess YYYY`: the workbook goes to the chat through the outbox; the short text
        is returned for the handler's answer."""
        if not self.access.can_somewhere(actor, Action.ASSESS):
            raise Refused("assess.not_allowed")
        now = now.astimezone(self.settings.tz)
        year = self.parse_year(year_text, now)
        scope = await actor_scope(self.store, self.access, actor, Action.ASSESS,
                                  "assess.not_allowed")
        assessment = await self.build(scope, year, now)
        workbook = await self.workbook(assessment, locale)
        async with self.store.transaction():
            await self.outbox.call(chat_id, "sendDocument", {
                "document": file_field(workbook, filename(year)),
                "caption": t(locale, "assess.caption", year=year), "parse_mode": "HTML",
                **({"message_thread_id": thread_id} if thread_id else {})},
                priority=Priority.PERSONAL)
        return self.text(assessment, locale)

    async def workbook(self, assessment: Assessment, locale: str) -> bytes:
        return await asyncio.to_thread(render_workbook, assessment, locale)

    # ------------------------------------------------------------------ building

    async def city(self) -> Scope:
        return await city_scope(self.store)

    async def build(self, scope: Scope, year: str, now: datetime) -> Assessment:
        tz = self.settings.tz
        now = now.astimezone(tz)
        facts = await self._facts(year, now, scope)
        previous = await self._facts(str(int(year) - 1), now, scope)
        months_counted = _months_counted(facts)
        weights = tuple(self.settings.assess_weights.items())
        band = self.settings.assess_bottom_band
        units = {u.code: u for u in await self.store.map.all()}
        grids = list(scope.grids)
        grid_codes = {g.code for g in grids}
        buildings = [u for u in units.values() if u.kind == "building"
                     and _grid_of(units, u.code) in grid_codes]

        def finish(rows: list[Row], counted: int) -> list[Row]:
            return [replace(r, composite=composite(r, weights, counted)) for r in rows]

        sheets: dict[str, tuple[Row, ...]] = {}
        sheets["grids"] = tuple(finish(self._grid_rows(grids, units, facts), months_counted))
        leaders = await self.store.people.holders(("grid_leader",), grid_codes)
        workers = await self.store.people.holders(("grid_worker",), grid_codes)
        for level, holders, kind in (("grid_leaders", leaders, GRID),
                                     ("grid_workers", workers, WORKER)):
            rows = finish(await self._people_rows(holders, units, facts, kind), months_counted)
            before = {r.key: r for r in finish(
                await self._people_rows(holders, units, previous, kind),
                _months_counted(previous))}
            flagged = []
            for row in rows:
                last = before.get(row.key)
                bad = (row.composite is not None and row.evaluation is not None
                       and row.composite < band and last is not None
                       and last.composite is not None and last.evaluation is not None
                       and last.composite < band)
                flagged.append(replace(row, previous=last.composite if last else None,
                                       flagged=bad))
            sheets[level] = tuple(flagged)
        heads = await self.store.people.holders(("building_head",), [b.code for b in buildings])
        sheets["building_heads"] = tuple(finish(
            await self._people_rows(heads, units, facts, None), months_counted))
        sheets["member_units"] = tuple(finish(
            self._member_rows(await member_units(self.store, scope), units, facts),
            months_counted))
        sheets["departments"] = tuple(finish(
            self._department_rows(await self.store.map.departments(), facts, grid_codes),
            months_counted))
        return Assessment(year=year, scope=scope, months_counted=months_counted,
                          weights=weights, band=band, sheets=sheets)

    async def _facts(self, year: str, now: datetime, scope: Scope) -> _Year:
        tz = self.settings.tz
        period = periods.year(year, tz)
        end = min(period.end, max(period.start, now))
        start_ts, end_ts = period.start.timestamp(), end.timestamp()
        codes = {g.code for g in scope.grids}
        tickets = [x for x in await self.store.evaluations.year_tickets(start_ts, end_ts)
                   if x.grid_code in codes]
        patrols = [p for p in await self.store.schedules.patrols(None, start_ts, end_ts)
                   if p.grid_code in codes]
        checkins = [(c.person_id, c.grid_code, datetime.fromtimestamp(c.at, tz).month)
                    for c in await self.store.evaluations.checkins(start_ts, end_ts)]
        scores = await self.store.evaluations.rated_between(f"{year}-01", f"{year}-12")
        meetings = await meetings_attended(self.store, start_ts, end_ts, tz)
        return _Year(start=period.start, end=end, tickets=tickets, patrols=patrols,
                     checkins=checkins, scores=scores, meetings=meetings,
                     now=now.timestamp(),
                     member_horns=await member_horns_answered(self.store, start_ts, end_ts,
                                                              tz))

    def _grid_rows(self, grids: list[Unit], units: dict[str, Unit], facts: _Year) -> list[Row]:
        rows = []
        for grid in grids:
            community = units.get(grid.parent_code or "")
            tickets = [x for x in facts.tickets if x.grid_code == grid.code]
            horn_months = {m for _, g, m in facts.checkins if g == grid.code}
            meeting_months = facts.meetings.units.get(grid.code, {})
            rows.append(_with_tickets(Row(
                key=grid.code, name=grid.name, unit=community.name if community else "",
                patrols_done=sum(1 for p in facts.patrols if p.grid_code == grid.code),
                patrols_due=patrol_periods(grid.patrol, facts.start, facts.end),
                horns=sum(1 for _, g, _ in facts.checkins if g == grid.code),
                meetings=sum(meeting_months.values()),
                months=_monthly(facts.scores, GRID, {grid.code}, None),
                active_months=len(horn_months | {m for m, n in meeting_months.items() if n}),
            ), tickets, facts.now))
        return rows

    async def _people_rows(self, holders: Iterable[RoleGrant], units: dict[str, Unit],
                           facts: _Year, kind: str | None) -> list[Row]:
        """One row per person (kind GRID: leaders, scored by their grids; WORKER: workers;
        None: building heads, without patrols or scores)."""
        by_person: dict[int, list[str]] = {}
        for holder in holders:
            by_person.setdefault(holder.user_id, []).append(holder.unit_code)
        people = {p.user_id: p for p in await self.store.people.many(by_person)}
        rows = []
        for user_id, codes in by_person.items():
            person = people.get(user_id)
            tickets = [x for x in facts.tickets if user_id in x.handlers]
            horn_months = {m for p, _, m in facts.checkins if p == user_id}
            meeting_months = facts.meetings.people.get(user_id, {})
            patrol_done = patrol_due = None
            months: tuple[float | None, ...] = (None,) * 12
            if kind is not None:
                patrol_done = sum(1 for p in facts.patrols if p.user_id == user_id)
                patrol_due = sum(patrol_periods(units[c].patrol if c in units else None,
                                                facts.start, facts.end) for c in codes)
                months = _monthly(facts.scores, kind, set(codes),
                                  user_id if kind == WORKER else None)
            rows.append(_with_tickets(Row(
                key=str(user_id), name=person.display_name if person else str(user_id),
                unit="、".join(units[c].name if c in units else c for c in codes),
                patrols_done=patrol_done, patrols_due=patrol_due,
                horns=sum(1 for p, _, _ in facts.checkins if p == user_id),
                meetings=sum(meeting_months.values()), months=months,
                active_months=len(horn_months | {m for m, n in meeting_months.items() if n}),
            ), tickets, facts.now))
        return rows

    def _member_rows(self, members: list[MemberUnitFacts], units: dict[str, Unit],
                     facts: _Year) -> list[Row]:
        rows = []
        for member in members:
            meeting_months = facts.meetings.units.get(member.code, {})
            horn_months = facts.member_horns.get(member.code, {})
            community = units.get(member.community_code or "")
            rows.append(Row(key=member.code, name=member.name,
                            unit=community.name if community else "",
                            horns=sum(horn_months.values()),
                            meetings=sum(meeting_months.values()),
                            active_months=len({m for m, n in meeting_months.items() if n}
                                              | {m for m, n in horn_months.items() if n})))
        return rows

    def _department_rows(self, departments: list[Unit], facts: _Year,
                         grid_codes: set[str]) -> list[Row]:
        rows = []
        for department in departments:
            tickets = [x for x in facts.tickets if x.department_code == department.code]
            rows.append(_with_tickets(Row(key=department.code, name=department.name, unit="",
                                          horns=None, active_months=None), tickets, facts.now))
        return rows

    # ------------------------------------------------------------------ texts

    def text(self, assessment: Assessment, locale: str) -> str:
        sheets = assessment.sheets
        lines = [t(locale, "assess.title", year=assessment.year,
                   scope=assessment.scope.label(locale)),
                 t(locale, "assess.counts", grids=len(sheets["grids"]),
                   leaders=len(sheets["grid_leaders"]), workers=len(sheets["grid_workers"]),
                   heads=len(sheets["building_heads"]),
                   members=len(sheets["member_units"]),
                   departments=len(sheets["departments"]))]
        flagged = assessment.flagged
        lines.append(tn(locale, "assess.flagged", len(flagged), count=len(flagged),
                        band=f"{assessment.band:g}"))
        for row in flagged[:MAX_FLAGGED_SHOWN]:
            lines.append(t(locale, "assess.flagged_line", name=row.name, unit=row.unit,
                           score=f"{row.composite:.1f}",
                           previous=f"{row.previous:.1f}" if row.previous is not None else "—"))
        return "\n".join(lines)


def filename(year: str) -> str:
    return f"gridhorn-assessment-{year}.xlsx"


def _months_counted(facts: _Year) -> int:
    if facts.end <= facts.start:
        return 0
    last = facts.end - timedelta(microseconds=1)
    return last.month if last.year == facts.start.year else 12


def _grid_of(units: dict[str, Unit], code: str) -> str | None:
    unit = units.get(code)
    while unit is not None and unit.kind != "grid":
        unit = units.get(unit.parent_code or "")
    return unit.code if unit is not None else None


def _monthly(scores: list[Evaluation], kind: str, unit_codes: set[str],
             subject_id: int | None) -> tuple[float | None, ...]:
    """The twelve monthly scores: the average of the month's ratings of the subject."""
    result: list[float | None] = []
    for month in range(1, 13):
        given = [s.score for s in scores if s.kind == kind and s.unit_code in unit_codes
                 and int(s.month[5:7]) == month and s.score is not None
                 and (subject_id is None or s.subject_id == subject_id)]
        result.append(round(sum(given) / len(given), 2) if given else None)
    return tuple(result)


def _with_tickets(row: Row, tickets: list[YearTicket], now: float) -> Row:
    on_time = late = rating_sum = ratings = 0
    for x in tickets:
        if x.overdue or (x.status in OPEN and x.due_at is not None and x.due_at < now):
            late += 1
        elif x.status in CLOSED:
            on_time += 1
        if x.rating is not None and 1 <= x.rating <= 5:
            rating_sum += x.rating
            ratings += 1
    return replace(row, tickets=len(tickets), on_time=on_time, late=late,
                   rating_sum=rating_sum, ratings=ratings)
