"""Leaderboards 排行榜 (SPEC §6): volunteers, party members, buildings, departments.

- 志愿者明星榜 volunteers: volunteer hours confirmed in the period (the time bank 爱心银行),
  then points.
- 党员先锋榜 party vanguard: service requests taken (党员接单) in the period, then hours, then
  points.
- Buildings: tickets resolved in the period (first resolution), then the average rating given.
- Departments (吹哨报到, 积分管理): a score of two thirds whistle points and one third the
  whistling staff's ratings (社区对部门评价权重占三分之一, SPEC §11); how, exactly, is told in
  `score_departments`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from bot.i18n import join_list, t, tn
from bot.services import periods
from bot.services.errors import Key
from bot.services.outbox import Outbox, Priority
from bot.services.reports import horn_activity
from bot.services.scopes import Scope, bound_targets, unit_scope
from bot.services.unit_scores import UnitScore, unit_scores
from bot.settings import Settings
from bot.textsplit import split_html
from storage.models import DepartmentEvent, Person, Unit, WhistleRating
from storage.store import Store

KINDS = ("volunteers", "party", "buildings", "departments")
#: the member units' boards (SPEC §10): 红色物业光荣榜, 社会组织人气榜, all member units
UNIT_KINDS = ("property", "social", "units")
UNIT_TITLE = {"property": "board_units.title_property", "social": "board_units.title_social",
              "units": "board_units.title_units"}
SPANS = ("month", "quarter", "year")
TITLE = {"volunteers": "board.title_volunteers", "party": "board.title_party",
         "buildings": "board.title_buildings", "departments": "board.title_departments"}
SPAN = {"month": "board.span_month", "quarter": "board.span_quarter", "year": "board.span_year"}
# the boards whose lines end in points: plural texts, "1 point" / "2 points"
POINTS_LINE = {"volunteers": "board.line_volunteers", "party": "board.line_party"}
JOB = "board"
TOP = 10

# 吹哨报到 points per whistle, judged when its outcome happens:
#   accepted before its accept deadline passed ........ +3
#   resolved by the department after accepting ........ +2
#   accepted after the accept deadline had passed ...... −1
#   declined (退回 to the grid) ......................... −1
#   accept deadline passed with no answer (overdue) .... −2
# A whistle of a catalogue item with points earns those points instead of +3 and +2 (see
# score_departments). Ties: more accepted in time first, then fewer missed.
DEPARTMENT_POINTS = {"in_time": 3, "resolved": 2, "late": -1, "declined": -1, "missed": -2}
#: what a whistle without item points is worth, accepted in time and resolved
FIXED_WHISTLE = DEPARTMENT_POINTS["in_time"] + DEPARTMENT_POINTS["resolved"]


@dataclass
class DepartmentScore:
    """A department's figures for a period: outcome counts, whistle points, the staff's
    ratings and the catalogue items it handled (item code → whistles resolved)."""

    code: str
    name: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEPARTMENT_POINTS, 0))
    points: int = 0
    stars: list[int] = field(default_factory=list)
    rating_points: float = 0.0
    items: Counter[str] = field(default_factory=Counter)

    @property
    def score(self) -> float:
        """⅔ of the whistle points and ⅓ of the rating points (see score_departments)."""
        return (2 * self.points + self.rating_points) / 3

    @property
    def rating(self) -> float | None:
        return sum(self.stars) / len(self.stars) if self.stars else None


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
                      names: dict[str, str],
                      ratings: list[WhistleRating] | None = None) -> dict[str, DepartmentScore]:
    """The departments' board: each whistled ticket's timeline is walked, and a whistle
    scores by its outcomes that fall inside [start, end); so do the ratings given in it.

    score = ⅔ × whistle points + ⅓ × rating points, shown to one decimal:

    - whistle points (吹哨报到): for a whistle without item points (a department picked
      freely, or a catalogue item without `points`), DEPARTMENT_POINTS: accepted in time
      +3, resolved after accepting +2, accepted late −1, declined −1, accept deadline missed
      −2. For a whistle of a catalogue item with points P (as they were when whistled):
      accepted in time 0, then resolved +P; late, declined and missed as above, and resolved
      after a late acceptance +2.
    - rating points (评价, SPEC §11): each rating the whistling staff gave in the period,
      stars ÷ 5 × the whistle's full worth (P, or FIXED_WHISTLE = 5 without item points).

    So a whistle accepted in time, resolved and rated 5 scores its full worth, a third of it
    from the rating; an unrated whistle keeps two thirds. The catalogue items handled are
    the item whistles resolved after accepting in the period. Each department keeps its
    outcome counts, its ratings (their average is shown) and its items."""
    by_name = {name: code for code, name in names.items()}
    scores: dict[str, DepartmentScore] = {}
    # ticket → (department, state, item, item points)
    current: dict[int, tuple[str, str, str | None, int | None]] = {}

    def entry(code: str) -> DepartmentScore:
        return scores.setdefault(code, DepartmentScore(code, names.get(code, code)))

    def score(code: str, outcome: str, at: float, points: int) -> None:
        if start <= at < end:
            found = entry(code)
            found.counts[outcome] += 1
            found.points += points

    for event in events:
        data = event.data or {}
        held = current.get(event.ticket_id)
        if event.kind == "whistled":
            code = data.get("department") or by_name.get(event.note or "")
            if code:
                item = data.get("item")
                worth = data.get("points")
                current[event.ticket_id] = (code, "waiting", str(item) if item else None,
                                            worth if isinstance(worth, int) else None)
            continue
        if held is None:
            continue
        code, state, item, worth = held
        if event.kind == "overdue" and data.get("due") == "accept" and state == "waiting":
            score(code, "missed", event.at, DEPARTMENT_POINTS["missed"])
            current[event.ticket_id] = (code, "late", item, worth)
        elif event.kind == "accepted" and state in ("waiting", "late"):
            if state == "waiting":
                score(code, "in_time", event.at,
                      DEPARTMENT_POINTS["in_time"] if worth is None else 0)
                current[event.ticket_id] = (code, "accepted", item, worth)
            else:
                score(code, "late", event.at, DEPARTMENT_POINTS["late"])
                current[event.ticket_id] = (code, "accepted_late", item, worth)
        elif event.kind == "declined":
            if state == "waiting":
                score(code, "declined", event.at, DEPARTMENT_POINTS["declined"])
            current.pop(event.ticket_id, None)
        elif event.kind == "resolved" and state in ("accepted", "accepted_late"):
            score(code, "resolved", event.at, worth if state == "accepted" and worth is not None
                  else DEPARTMENT_POINTS["resolved"])
            if item is not None and start <= event.at < end:
                entry(code).items[item] += 1
            current.pop(event.ticket_id, None)
        elif event.kind in ("rejected", "merged", "resolved"):
            current.pop(event.ticket_id, None)
    for rating in ratings or ():
        if start <= rating.at < end and 1 <= rating.stars <= 5:
            found = entry(rating.department_code)
            found.stars.append(rating.stars)
            worth = rating.points if rating.points is not None else FIXED_WHISTLE
            found.rating_points += rating.stars / 5 * worth
    return scores


class BoardService:
    def __init__(self, store: Store, outbox: Outbox, settings: Settings) -> None:
        self.store = store
        self.outbox = outbox
        self.settings = settings

    async def board(self, kind: str, scope: Scope, period: periods.Period) -> Board:
        start, end = period.span
        if kind in UNIT_KINDS:
            return await self._units(kind, scope, period, start, end)
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
        lines = tuple(Line(_shown(p), {"hours": f"{h:g}", "points": points})
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
        lines = tuple(Line(_shown(p), {"taken": n, "hours": f"{h:g}", "points": points})
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
        ratings = await self.store.whistles.ratings(scope.grid_codes, start, end)
        scores = score_departments(events, start, end, names, ratings)
        catalogue = {i.code: i.name for i in await self.store.whistles.items()}
        ranked = sorted(scores.values(), key=lambda s: (
            -s.score, -s.counts["in_time"], s.counts["missed"], s.code))
        lines = tuple(Line(f"{s.name} ({s.code})", {
            "points": s.points, **s.counts, "score": f"{s.score:.1f}",
            "rated": f"{s.rating_points:.1f}", "ratings": len(s.stars),
            "rating": "—" if s.rating is None else f"{s.rating:.1f}",
            "items": tuple(f"{catalogue.get(code, code)} ×{n}" for code, n in sorted(
                s.items.items(), key=lambda x: (-x[1], x[0])))}) for s in ranked)[:TOP]
        return Board("departments", period, scope, lines)

    async def _units(self, kind: str, scope: Scope, period: periods.Period, start: float,
                     end: float) -> Board:
        """Member units of the scope's communities ranked by their score (`unit_scores`)."""
        communities: list[str] | None = None
        if not scope.city:
            found: set[str] = set()
            for top in scope.units:
                for unit in (await self.store.map.ancestors(top.code)
                             + await self.store.map.descendants(top.code)):
                    if unit.kind == "community":
                        found.add(unit.code)
            communities = sorted(found)
        units = await self.store.map.members(communities, None if kind == "units" else kind)
        scores = await unit_scores(self.store, [u.code for u in units], start, end,
                                   time.time(), self.settings.tz)
        ranked = sorted(units, key=lambda u: (-scores[u.code].score, u.code))
        lines = tuple(Line(f"{u.name} ({u.code})", {"score": scores[u.code]})
                      for u in ranked if scores[u.code].score > 0)[:TOP]
        return Board(kind, period, scope, lines)

    @staticmethod
    def _unit_lines(board: Board, locale: str, span: str) -> list[str]:
        lines = [t(locale, UNIT_TITLE[board.kind], scope=board.scope.label(locale), span=span)]
        if not board.lines:
            lines.append(t(locale, "board.empty"))
        for rank, line in enumerate(board.lines, 1):
            score = line.values["score"]
            assert isinstance(score, UnitScore)
            vote = t(locale, "board_units.no_vote") if score.vote_average is None else t(
                locale, "board_units.vote_figure", average=f"{score.vote_average:.1f}",
                count=score.votes)
            lines.append(t(locale, "board_units.line", rank=rank, name=line.name,
                           score=f"{score.score:.1f}", hours=f"{score.hours:g}",
                           slots=score.slot_months, resources=score.resources,
                           meetings=score.meetings, vote=vote))
        lines.append(t(locale, "board_units.rule"))
        return lines

    def text(self, board: Board, locale: str) -> str:
        span = t(locale, SPAN[board.period.kind], period=board.period.key)
        if board.kind in UNIT_KINDS:
            return "\n".join(self._unit_lines(board, locale, span))
        lines = [t(locale, TITLE[board.kind], scope=board.scope.label(locale), span=span)]
        if not board.lines:
            lines.append(t(locale, "board.empty"))
        for rank, line in enumerate(board.lines, 1):
            points = line.values.get("points")
            if board.kind == "departments":
                lines += self._department_lines(locale, rank, line)
            elif isinstance(points, int):
                lines.append(tn(locale, POINTS_LINE[board.kind], points, rank=rank,
                                name=_said(locale, line.name), **line.values))
            else:
                lines.append(t(locale, "board.line_buildings", rank=rank, name=line.name,
                               **line.values))
        if board.kind == "departments":
            lines.append(t(locale, "board.department_rule"))
            lines.append(t(locale, "board.department_weighting"))
        return "\n".join(lines)

    @staticmethod
    def _department_lines(locale: str, rank: int, line: Line) -> list[str]:
        """A department's whistle points and counts, its score with the staff's rating, and
        the catalogue items it handled."""
        values = line.values
        points = values["points"]
        assert isinstance(points, int)
        counts = {k: values[k] for k in DEPARTMENT_POINTS}
        lines = [tn(locale, "board.line_departments", points, rank=rank, name=line.name,
                    points=points, **counts),
                 t(locale, "board.line_department_score", score=values["score"], points=points,
                   rated=values["rated"], rating=values["rating"], ratings=values["ratings"])]
        items = values["items"]
        if isinstance(items, tuple) and items:
            lines.append(t(locale, "board.line_department_items",
                           items=join_list(locale, items)))
        return lines

    async def all_text(self, scope: Scope, period: periods.Period, locale: str) -> str:
        """The four boards, and the member units' boards that rank someone (SPEC §10)."""
        boards = [await self.board(kind, scope, period) for kind in KINDS]
        for kind in UNIT_KINDS:
            board = await self.board(kind, scope, period)
            if board.lines:
                boards.append(board)
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
    """`[volunteers|party|buildings|departments|property|social|units]
    [month|quarter|year]`, in any order."""
    kinds: tuple[str, ...] = KINDS
    span = "quarter"
    seen_kind = seen_span = False
    for arg in (a.lower() for a in args):
        if arg in KINDS + UNIT_KINDS and not seen_kind:
            kinds, seen_kind = (arg,), True
        elif arg in SPANS and not seen_span:
            span, seen_span = arg, True
        else:
            return None
    return kinds, span


#: an erased person's name on a board: their hours stay, under "erased" (SPEC §14)
ERASED = Key("privacy.erased")


def _shown(person: Person) -> str:
    return ERASED if person.erased else person.display_name


def _said(locale: str, name: str) -> str:
    return t(locale, "privacy.erased") if isinstance(name, Key) else name
