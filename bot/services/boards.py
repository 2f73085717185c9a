"""Leaderboards 排行榜 (SPEC §6): volunteers, party members, buildings, departments.

- 志愿者明星榜 volunteers: volunteer hours confirmed in the period (the time bank 爱心银行),
  then points.
- 党员先锋榜 party vanguard: service requests taken (党员接单) in the period, then hours, then
  points.
- Buildings: tickets resolved in the period (first resolution), then the average rating given.
- Departments, by whistle response (吹哨报到 points), each whistle judged once by its outcome in
  the period (see DEPARTMENT_POINTS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.i18n import t, tn
from bot.services import periods
from bot.services.outbox import Outbox, Priority
from bot.services.reports import horn_activity
from bot.services.scopes import Scope, bound_targets, unit_scope
from bot.settings import Settings
from bot.textsplit import split_html
from storage.models import DepartmentEvent, Unit
from storage.store import Store

KINDS = ("volunteers", "party", "buildings", "departments")
SPANS = ("month", "quarter", "year")
TITLE = {"volunteers": "board.title_volunteers", "party": "board.title_party",
         "buildings": "board.title_buildings", "departments": "board.title_departments"}
SPAN = {"month": "board.span_month", "quarter": "board.span_quarter", "year": "board.span_year"}
# the boards whose lines end in points: plural texts, "1 point" / "2 points"
POINTS_LINE = {"volunteers": "board.line_volunteers", "party": "board.line_party",
               "departments": "board.line_departments"}
JOB = "board"
TOP = 10

# 吹哨报到 points per whistle, judged when its outcome happens:
#   accepted before its accept deadline passed ........ +3
#   resolved by the department after accepting ........ +2
#   accepted after the accept deadline had passed ...... −1
#   declined (退回 to the grid) ......................... −1
#   accept deadline passed with no answer (overdue) .... −2
# Ties: more accepted in time first, then fewer missed.
DEPARTMENT_POINTS = {"in_time": 3, "resolved": 2, "late": -1, "declined": -1, "missed": -2}


@dataclass
class DepartmentScore:
    code: str
    name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEPARTMENT_POINTS, 0))

    @property
    def points(self) -> int:
        return sum(DEPARTMENT_POINTS[k] * n for k, n in self.counts.items())


@dataclass(frozen=True)
class Line:
    name: str
    values: dict[str, object]


@dataclass(frozen=True)
class Board:
    kind: str
    period: periods.Period
    scope: Scope
    lines: tuple[Line, ...]


def score_departments(events: list[DepartmentEvent], start: float, end: float,
                      names: dict[str, str]) -> dict[str, DepartmentScore]:
    """Walk each whistled ticket's timeline; outcomes inside [start, end) score."""
    by_name = {name: code for code, name in names.items()}
    scores: dict[str, DepartmentScore] = {}
    current: dict[int, tuple[str, str]] = {}      # ticket → (department, state)

    def score(code: str, outcome: str, at: float) -> None:
        if start <= at < end:
            entry = scores.setdefault(code, DepartmentScore(code, names.get(code, code)))
            entry.counts[outcome] += 1

    for event in events:
        data = event.data or {}
        held = current.get(event.ticket_id)
        if event.kind == "whistled":
            code = data.get("department") or by_name.get(event.note or "")
            if code:
                current[event.ticket_id] = (code, "waiting")
        elif held is None:
            continue
        elif event.kind == "overdue" and data.get("due") == "accept" and held[1] == "waiting":
            score(held[0], "missed", event.at)
            current[event.ticket_id] = (held[0], "late")
        elif event.kind == "accepted" and held[1] in ("waiting", "late"):
            score(held[0], "in_time" if held[1] == "waiting" else "late", event.at)
            current[event.ticket_id] = (held[0], "accepted")
        elif event.kind == "declined":
            if held[1] == "waiting":
                score(held[0], "declined", event.at)
            current.pop(event.ticket_id, None)
        elif event.kind == "resolved" and held[1] == "accepted":
            score(held[0], "resolved", event.at)
            current.pop(event.ticket_id, None)
        elif event.kind in ("rejected", "merged", "resolved"):
            current.pop(event.ticket_id, None)
    return scores


class BoardService:
    def __init__(self, store: Store, outbox: Outbox, settings: Settings) -> None:
        self.store = store
        self.outbox = outbox
        self.settings = settings

    async def board(self, kind: str, scope: Scope, period: periods.Period) -> Board:
        start, end = period.span
        if kind == "volunteers":
            return await self._volunteers(scope, period, start, end)
        if kind == "party":
            return await self._party(scope, period, start, end)
        if kind == "buildings":
            return await self._buildings(scope, period, start, end)
        return await self._departments(scope, period, start, end)

    async def _scope_units(self, scope: Scope) -> tuple[list[str] | None, list[str] | None]:
        if scope.city:
            return None, None
        below: list[Unit] = []
        for top in scope.units:
            below += await self.store.map.descendants(top.code)
        return [u.code for u in below], [u.code for u in below if u.kind == "building"]

    async def _hours(self, scope: Scope, start: float, end: float) -> dict[int, float]:
        activity = await horn_activity(self.store, scope, start, end)
        return activity.hours_by_person

    async def _volunteers(self, scope: Scope, period: periods.Period, start: float,
                          end: float) -> Board:
        units, buildings = await self._scope_units(scope)
        hours = await self._hours(scope, start, end)
        # the scope's volunteers, and whoever served hours at its horns
        people = {p.user_id: p for p in await self.store.people.with_role(
            "volunteer", units, buildings)}
        people.update({p.user_id: p for p in await self.store.people.many(hours)})
        ranked = sorted(((hours.get(p.user_id, 0.0), p.points, p) for p in people.values()),
                        key=lambda x: (-x[0], -x[1], x[2].user_id))
        lines = tuple(Line(p.display_name, {"hours": f"{h:g}", "points": points})
                      for h, points, p in ranked if h > 0)[:TOP]
        return Board("volunteers", period, scope, lines)

    async def _party(self, scope: Scope, period: periods.Period, start: float,
                     end: float) -> Board:
        units, buildings = await self._scope_units(scope)
        taken = await self.store.reports.taken(scope.grid_codes, start, end)
        hours = await self._hours(scope, start, end)
        # the scope's party members, and party members from elsewhere who served here
        local = {p.user_id for p in await self.store.people.with_role(
            "party_member", units, buildings)}
        people = [p for p in await self.store.people.with_role("party_member", None, None)
                  if p.user_id in local or p.user_id in taken or p.user_id in hours]
        rows = []
        for person in people:
            served = hours.get(person.user_id, 0.0)
            rows.append((taken.get(person.user_id, 0), served, person.points, person))
        rows.sort(key=lambda x: (-x[0], -x[1], -x[2], x[3].user_id))
        lines = tuple(Line(p.display_name, {"taken": n, "hours": f"{h:g}", "points": points})
                      for n, h, points, p in rows if n or h)[:TOP]
        return Board("party", period, scope, lines)

    async def _buildings(self, scope: Scope, period: periods.Period, start: float,
                         end: float) -> Board:
        tickets = await self.store.reports.tickets(scope.grid_codes, start, end)
        units = {u.code: u for u in await self.store.map.all()}
        stats: dict[str, list[float]] = {}
        resolved: dict[str, int] = {}
        for x in tickets:
            if x.first_resolved_at is not None and start <= x.first_resolved_at < end:
                resolved[x.building_code] = resolved.get(x.building_code, 0) + 1
            stats.setdefault(x.building_code, []).extend(x.ratings_in_period)
        codes = [c for c in set(resolved) | {c for c, r in stats.items() if r} if c in units]

        def rating(code: str) -> float:
            given = stats.get(code) or []
            return sum(given) / len(given) if given else 0.0

        codes.sort(key=lambda c: (-resolved.get(c, 0), -rating(c), c))
        lines = tuple(Line(f"{units[c].name} ({c})", {
            "resolved": resolved.get(c, 0),
            "rating": f"{rating(c):.1f}" if stats.get(c) else "—",
            "ratings": len(stats.get(c) or [])}) for c in codes)[:TOP]
        return Board("buildings", period, scope, lines)

    async def _departments(self, scope: Scope, period: periods.Period, start: float,
                           end: float) -> Board:
        names = {u.code: u.name for u in await self.store.map.all() if u.kind == "department"}
        events = await self.store.reports.department_events(scope.grid_codes, end)
        scores = score_departments(events, start, end, names)
        ranked = sorted(scores.values(), key=lambda s: (
            -s.points, -s.counts["in_time"], s.counts["missed"], s.code))
        lines = tuple(Line(f"{s.name} ({s.code})", {"points": s.points, **s.counts})
                      for s in ranked)[:TOP]
        return Board("departments", period, scope, lines)

    def text(self, board: Board, locale: str) -> str:
        span = t(locale, SPAN[board.period.kind], period=board.period.key)
        lines = [t(locale, TITLE[board.kind], scope=board.scope.label(locale), span=span)]
        if not board.lines:
            lines.append(t(locale, "board.empty"))
        for rank, line in enumerate(board.lines, 1):
            points = line.values.get("points")
            if isinstance(points, int):
                lines.append(tn(locale, POINTS_LINE[board.kind], points, rank=rank,
                                name=line.name, **line.values))
            else:
                lines.append(t(locale, "board.line_buildings", rank=rank, name=line.name,
                               **line.values))
        if board.kind == "departments":
            lines.append(t(locale, "board.department_rule"))
        return "\n".join(lines)

    async def all_text(self, scope: Scope, period: periods.Period, locale: str) -> str:
        boards = [await self.board(kind, scope, period) for kind in KINDS]
        return "\n\n".join(self.text(b, locale) for b in boards)

    async def post_quarter(self, key: str) -> int:
        """Inside a transaction: the quarter's boards to community and grid staff chats."""
        period = periods.quarter(key, self.settings.tz)
        posts = 0
        for kind in ("community", "grid"):
            for target in await bound_targets(self.store, self.settings, kind):
                if not await self.store.schedules.claim_post(JOB, key, target.chat_id,
                                                             target.thread_id):
                    continue
                text = await self.all_text(await unit_scope(self.store, target.unit), period,
                                           target.locale)
                for part in split_html(text):
                    await self.outbox.send(target.chat_id, part, priority=Priority.ROUTINE,
                                           thread_id=target.thread_id, quiet=True)
                posts += 1
        return posts


def parse_board_args(args: list[str]) -> tuple[tuple[str, ...], str] | None:
    """`[volunteers|party|buildings|departments] [month|quarter|year]`, in any order."""
    kinds: tuple[str, ...] = KINDS
    span = "quarter"
    seen_kind = seen_span = False
    for arg in (a.lower() for a in args):
        if arg in KINDS and not seen_kind:
            kinds, seen_kind = (arg,), True
        elif arg in SPANS and not seen_span:
            span, seen_span = arg, True
        else:
            return None
    return kinds, span
