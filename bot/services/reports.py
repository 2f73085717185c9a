"""Monthly public report 一月一公示 (SPEC §6): per grid, what the month brought.

Definitions (all in the configured time zone, for the month [start, end)):
- received: tickets created in the month;
- resolved: tickets first resolved (办结) in the month — each ticket counts once, in the month
  of its first resolution, whether or not it was received then;
- overdue: tickets with an `overdue` step (a missed deadline) in the month;
- median time to resolve: over the tickets resolved in the month, created → first resolved;
- average rating: over the ratings (群众评单, 1–5 stars) given in the month;
- horns and volunteer hours: the grid's assembly horns published in the month, and the hours
  confirmed in the month at its horns;
- patrols (巡查): recorded in the month;
- received by source: the month's tickets by where they came from (a resident, the 12345
  hotline, the mailbox, …; SPEC §11).

The report of a month is on display (公示) from its run, on the 1st of the next month, until the
next month's run: a chat bound in between gets it from the next daily run, once.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from datetime import datetime

from bot.i18n import Markup, escape, t
from bot.labels import SOURCE
from bot.services import meeting_views, periods, report_files
from bot.services.checkpoints import coverage_line, grid_coverage, matter_text
from bot.services.outbox import Outbox, Priority, file_field
from bot.services.report_data import GridStats, HornActivity, Report, ReportFiles
from bot.services.scopes import Scope, Target, bound_targets, city_scope, unit_scope
from bot.settings import Settings
from bot.textsplit import split_html
from storage.models import ReportTicket, TicketSource, Unit
from storage.store import Store

JOB = "report"


MonthlyPlan = list[tuple[Target, str, ReportFiles | None]]   # to whom: short text or files


async def horn_activity(store: Store, scope: Scope, start: float, end: float) -> HornActivity:
    """Horns published and hours confirmed in the period, per grid and per person, from the
    assembly horn's repository (§5). A horn over several grids counts under None: in the
    totals and for the people who served, not in any grid's row."""
    horns, hours, people = await store.horns.activity(
        scope.grid_codes, start, end, [u.code for u in scope.units if u.kind == "community"])
    return HornActivity(horns=horns, hours=hours, hours_by_person=people)


def _stats(grid: Unit, community: str, tickets: list[ReportTicket], start: float, end: float,
           patrols: int, horns: int, hours: float) -> GridStats:
    received = sum(1 for x in tickets if start <= x.created_at < end)
    resolved = [x for x in tickets
                if x.first_resolved_at is not None and start <= x.first_resolved_at < end]
    durations = [(x.first_resolved_at - x.created_at) / 3600 for x in resolved
                 if x.first_resolved_at is not None]
    ratings = [r for x in tickets for r in x.ratings_in_period]
    return GridStats(
        code=grid.code, name=grid.name, community=community, received=received,
        resolved=len(resolved), overdue=sum(1 for x in tickets if x.overdue_in_period),
        median_hours=statistics.median(durations) if durations else None,
        rating=sum(ratings) / len(ratings) if ratings else None, ratings=len(ratings),
        horns=horns, volunteer_hours=hours, patrols=patrols)


class ReportService:
    def __init__(self, store: Store, outbox: Outbox, settings: Settings) -> None:
        self.store = store
        self.outbox = outbox
        self.settings = settings

    async def build(self, scope: Scope, month: str, now: datetime | None = None) -> Report:
        """The report of a month for a scope; a month still running ends at `now`."""
        tz = self.settings.tz
        period = periods.month(month, tz)
        end = period.end
        so_far = now is not None and now < period.end
        if so_far:
            assert now is not None
            end = max(period.start, now.astimezone(tz))
        start_ts, end_ts = period.start.timestamp(), end.timestamp()
        codes = scope.grid_codes
        tickets = await self.store.reports.tickets(codes, start_ts, end_ts)
        patrols = await self.store.schedules.patrols(codes, start_ts, end_ts)
        horns = await horn_activity(self.store, scope, start_ts, end_ts)
        units = {u.code: u for u in await self.store.map.all()}
        rows = []
        for grid in scope.grids:
            community = units.get(grid.parent_code or "")
            mine = [x for x in tickets if x.grid_code == grid.code]
            rows.append(_stats(grid, community.name if community else "", mine, start_ts,
                               end_ts, sum(1 for p in patrols if p.grid_code == grid.code),
                               horns.horns.get(grid.code, 0), horns.hours.get(grid.code, 0.0)))
        in_scope = {g.code for g in scope.grids}
        total = _stats(Unit(code="", kind="grid", name=""), "",
                       [x for x in tickets if x.grid_code in in_scope], start_ts, end_ts,
                       sum(r.patrols for r in rows),
                       sum(r.horns for r in rows) + horns.horns.get(None, 0),
                       sum(r.volunteer_hours for r in rows) + horns.hours.get(None, 0.0))
        people = {p.user_id: p for p in await self.store.people.many(
            {p.user_id for p in patrols})}
        shown = tuple(x for x in tickets if x.grid_code in in_scope)
        held, present = await self._meetings(scope, start_ts, end_ts, units)
        return Report(month=month, scope=scope, start=period.start, end=end, so_far=so_far,
                      grids=tuple(rows), total=total, tickets=shown,
                      patrols=tuple(p for p in patrols if p.grid_code in in_scope),
                      units=units, people=people,
                      by_source=received_by_source(shown, start_ts, end_ts),
                      redemptions=tuple(await self.store.shop.spent_per_partner(
                          start_ts, end_ts, None if scope.city else
                          {g.parent_code for g in scope.grids if g.parent_code})),
                      meetings_held=held, meeting_units=present,
                      checkpoints=tuple(await grid_coverage(self.store, list(scope.grids),
                                                            start_ts, end_ts)))

    async def _meetings(self, scope: Scope, start: float, end: float,
                        units: dict[str, Unit]) -> tuple[int, tuple[tuple[str, int, int], ...]]:
        """Meetings held in the period within the scope (a community's own meetings only
        where the scope holds the community), and for each unit how many it was present at,
        on time and late (SPEC §12)."""
        grids = {g.code for g in scope.grids}
        communities = {u.code for u in scope.units if u.kind == "community"}
        held = [m for m in await self.store.meetings.between(start, end)
                if scope.city or m.grid_code in grids
                or (m.grid_code is None and m.community_code in communities)]
        signins = await self.store.meetings.signins([m.id for m in held])
        counts: dict[str, list[int]] = {}
        for meeting in held:
            summary = meeting_views.attendance(
                meeting, 0, [s for s in signins if s.meeting_id == meeting.id])
            for code in summary.on_time:
                counts.setdefault(code, [0, 0])[0] += 1
            for code in summary.late:
                counts.setdefault(code, [0, 0])[1] += 1
        present = tuple((units[code].name if code in units else code, on_time, late)
                        for code, (on_time, late) in counts.items())
        return len(held), present

    # ------------------------------------------------------------------ texts

    def text(self, report: Report, locale: str) -> str:
        """The full report, HTML (staff chats and /report)."""
        title_key = "report.title_so_far" if report.so_far else "report.title"
        lines = [t(locale, title_key, month=report.month, scope=report.scope.label(locale),
                   until=report.end.strftime("%Y-%m-%d %H:%M"))]
        if not report.grids:
            lines.append(t(locale, "report.no_grids"))
        for row in report.grids:
            lines.append("")
            lines.append(t(locale, "report.grid", name=row.name, code=row.code))
            lines.append(self._numbers(locale, row))
            lines += checkpoint_lines(locale, report, row.code)
        if len(report.grids) > 1:
            lines.append("")
            lines.append(t(locale, "report.total"))
            lines.append(self._numbers(locale, report.total))
        if report.by_source:
            lines.append("")
            lines.append(t(locale, "report.by_source", sources=Markup(sources_line(
                locale, report.by_source))))
        if report.meetings_held:
            lines.append("")
            lines.append(t(locale, "meeting.report_line", held=report.meetings_held,
                           units=" · ".join(f"{name} {on_time}/{late}"
                                            for name, on_time, late in report.meeting_units)
                           or "—"))
        if not report.total.received and not report.total.resolved and \
                not report.total.patrols and not report.total.overdue:
            lines.append("")
            lines.append(t(locale, "report.quiet_month"))
        return "\n".join(lines)

    def _numbers(self, locale: str, row: GridStats) -> str:
        return t(locale, "report.numbers", received=row.received, resolved=row.resolved,
                 overdue=row.overdue, median=hours_text(locale, row.median_hours),
                 rating=rating_text(locale, row.rating, row.ratings), horns=row.horns,
                 hours=f"{row.volunteer_hours:g}", patrols=row.patrols)

    def short_text(self, report: Report, locale: str, grid_code: str) -> str:
        """One grid's line for a building chat (text only)."""
        row = next(r for r in report.grids if r.code == grid_code)
        return t(locale, "report.short", month=report.month, grid=row.name,
                 received=row.received, resolved=row.resolved, overdue=row.overdue,
                 rating=rating_text(locale, row.rating, row.ratings), patrols=row.patrols)

    async def files(self, report: Report, locale: str) -> ReportFiles:
        """The text, the chart (PNG) and the workbook (XLSX); drawn off the event loop."""
        chart, workbook = await asyncio.to_thread(
            report_files.render_both, report, locale, self.settings.tz)
        return ReportFiles(self.text(report, locale), chart, workbook)

    # ------------------------------------------------------------------ the monthly job

    async def prepare_monthly(self, month: str) -> MonthlyPlan:
        """What the job posts for a month: staff chats get the full report with its files,
        building chats a short text. Chats that already had it are left out, and nothing is
        built when no chat is left (the daily run asks every day, for chats bound late)."""
        done = set(await self.store.schedules.posted(JOB, month))
        staff = [target for kind in ("community", "grid")
                 for target in await bound_targets(self.store, self.settings, kind)
                 if (target.chat_id, target.thread_id) not in done]
        buildings = [target for target in await bound_targets(self.store, self.settings,
                                                              "building")
                     if (target.chat_id, target.thread_id) not in done]
        plan: MonthlyPlan = []
        rendered: dict[tuple[str, str], ReportFiles] = {}
        for target in staff:
            key = (target.unit.code, target.locale)
            if key not in rendered:
                report = await self.build(await unit_scope(self.store, target.unit), month)
                rendered[key] = await self.files(report, target.locale)
            plan.append((target, "", rendered[key]))
        if not buildings:
            return plan
        city = await city_scope(self.store)
        grid_of = {}
        for grid in city.grids:
            for building in await self.store.map.descendants(grid.code, "building"):
                grid_of[building.code] = grid.code
        whole = await self.build(city, month)
        for target in buildings:
            grid_code = grid_of.get(target.unit.code)
            if grid_code is not None:
                plan.append((target, self.short_text(whole, target.locale, grid_code), None))
        return plan

    async def write_monthly(self, month: str, plan: MonthlyPlan) -> int:
        """Inside the run's transaction: queue each chat's posts once."""
        posts = 0
        for target, short, files in plan:
            if not await self.store.schedules.claim_post(JOB, month, target.chat_id,
                                                         target.thread_id):
                continue
            posts += 1
            if files is None:
                await self.outbox.send(target.chat_id, short, priority=Priority.ROUTINE,
                                       thread_id=target.thread_id, quiet=True)
                continue
            await self.queue_files(target.chat_id, target.thread_id, month, files,
                                   target.locale)
        return posts

    async def queue_files(self, chat_id: int, thread_id: int, month: str, files: ReportFiles,
                          locale: str) -> None:
        png_name, xlsx_name = files.filenames(month)
        extra = {"message_thread_id": thread_id} if thread_id else {}
        for part in split_html(files.text):
            await self.outbox.send(chat_id, part, priority=Priority.ROUTINE,
                                   thread_id=thread_id, quiet=True)
        await self.outbox.call(chat_id, "sendPhoto", {
            "photo": file_field(files.chart, png_name),
            "caption": t(locale, "report.chart_caption", month=month), "parse_mode": "HTML",
            **extra}, priority=Priority.ROUTINE, quiet=True)
        await self.outbox.call(chat_id, "sendDocument", {
            "document": file_field(files.workbook, xlsx_name),
            "caption": t(locale, "report.workbook_caption", month=month), "parse_mode": "HTML",
            **extra}, priority=Priority.ROUTINE, quiet=True)


def received_by_source(tickets: tuple[ReportTicket, ...], start: float,
                       end: float) -> tuple[tuple[str, int], ...]:
    """How many tickets each source brought in the period (sources with none left out)."""
    counts = Counter(x.source for x in tickets if start <= x.created_at < end)
    return tuple((s.value, counts[s]) for s in TicketSource if counts[s])


def sources_line(locale: str, by_source: tuple[tuple[str, int], ...]) -> str:
    """"Residents 5 · 12345 hotline 3", HTML-escaped."""
    return " · ".join(f"{escape(t(locale, SOURCE[s]))} {n}" for s, n in by_source)


def hours_text(locale: str, value: float | None) -> Markup:
    if value is None:
        return Markup("—")
    return Markup(t(locale, "report.hours", n=f"{value:.1f}"))


def rating_text(locale: str, value: float | None, count: int) -> Markup:
    if value is None:
        return Markup("—")
    return Markup(t(locale, "report.rating", avg=f"{value:.1f}", n=count))


def checkpoint_lines(locale: str, report: Report, grid_code: str) -> list[str]:
    """A grid's checkpoint coverage (SPEC §13): the grid's, then each matter's."""
    for total, parts in report.checkpoints:
        if total.grid.code == grid_code and total.counted:  # no period counted: no line
            return [t(locale, "report.checkpoints", coverage=Markup(coverage_line(locale, total)))
                    ] + [t(locale, "checkpoints.status_matter", matter=matter_text(
                        locale, part.matter or "other"), coverage=Markup(coverage_line(
                            locale, part))) for part in parts]
    return []
