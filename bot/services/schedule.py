"""Schedules and reports (SPEC §6) as the handlers and the scheduler see them: themes,
the monthly report, leaderboards and patrols, each checked against the asker's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.hooks import Wakeup
from bot.services import periods
from bot.services.access import Access, Action, Actor
from bot.services.assessment import AssessmentService
from bot.services.backups import BackupService
from bot.services.boards import KINDS, UNIT_KINDS, BoardService, parse_board_args
from bot.services.checkpoints import CheckpointService
from bot.services.errors import Refused
from bot.services.evaluations import EvaluationService
from bot.services.meeting_nudge import MeetingNudge
from bot.services.outbox import Outbox
from bot.services.patrols import PatrolService
from bot.services.people import PeopleService
from bot.services.posts import PostService
from bot.services.report_data import Report, ReportFiles
from bot.services.reports import ReportService
from bot.services.scopes import actor_scope
from bot.services.themes import ThemeService
from bot.services.unit_votes import VoteService
from bot.settings import Settings
from storage.store import Store


@dataclass(frozen=True)
class AskedReport:
    report: Report
    files: ReportFiles


class ScheduleService:
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, checkpoints_changed: Wakeup | None = None) -> None:
        self.store = store
        self.access = access
        self.settings = settings
        self.themes = ThemeService(store, access, people, outbox, settings)
        self.reports = ReportService(store, outbox, settings)
        self.boards = BoardService(store, outbox, settings)
        self.patrols = PatrolService(store, access, people, outbox, settings)
        #: AB岗: the daily run ends absences whose date passed (SPEC §11)
        self.backups = BackupService(store, access, people, outbox, settings)
        #: grids without a face-to-face meeting by the 20th (SPEC §12)
        self.meeting_nudge = MeetingNudge(store, access, people, outbox, settings)
        #: patrol checkpoints (SPEC §13): the scheduler's runs look at ended periods first,
        #: so a month's report counts the misses of periods ended by then
        self.checkpoints = CheckpointService(store, access, people, outbox, settings,
                                             changed=checkpoints_changed)
        #: SPEC §12: the monthly evaluation (its list messages' hook registered here) and
        #: the annual assessment
        self.evaluations = EvaluationService(store, access, people, outbox, settings)
        for prefix, hook in self.evaluations.sent_hooks().items():
            outbox.on_sent(prefix, hook)
        self.assessment = AssessmentService(store, access, outbox, settings)
        #: posts to claim (SPEC §10): the monthly "Still serving?" and the daily release
        self.posts = PostService(store, access, people, outbox, settings)
        #: the residents' quarterly vote (SPEC §10): opened by its job, closed by every run
        self.votes = VoteService(store, access, people, outbox, settings)
        for prefix, hook in self.votes.sent_hooks().items():
            outbox.on_sent(prefix, hook)

    async def report(self, actor: Actor, month_text: str | None, now: datetime,
                     locale: str) -> AskedReport:
        """`/report [YYYY-MM]`: the month (default: this month so far) for the asker's grids."""
        if not self.access.can_somewhere(actor, Action.REPORT):
            raise Refused("report.not_allowed")
        now = now.astimezone(self.settings.tz)
        current = periods.month_key(now)
        month = current if month_text is None else periods.parse_month(month_text)
        if month is None:
            raise Refused("report.bad_month", text=(month_text or "")[:20])
        if month > current:
            raise Refused("report.future_month", month=month)
        scope = await actor_scope(self.store, self.access, actor, Action.REPORT,
                                  "report.not_allowed")
        report = await self.reports.build(scope, month, now)
        return AskedReport(report, await self.reports.files(report, locale))

    async def board(self, actor: Actor, args: list[str], now: datetime, locale: str) -> str:
        """`/board [kind] [month|quarter|year]`: one board, or all four and the member units'
        boards that rank someone (this quarter)."""
        if not self.access.can_somewhere(actor, Action.REPORT):
            raise Refused("board.not_allowed")
        parsed = parse_board_args(args)
        if parsed is None:
            raise Refused("board.usage", kinds=" | ".join(KINDS + UNIT_KINDS))
        kinds, span = parsed
        scope = await actor_scope(self.store, self.access, actor, Action.REPORT,
                                  "board.not_allowed")
        period = periods.current(span, now.astimezone(self.settings.tz))
        if kinds == KINDS:  # no board named: all four, and the unit boards that rank someone
            return await self.boards.all_text(scope, period, locale)
        texts = [self.boards.text(await self.boards.board(kind, scope, period), locale)
                 for kind in kinds]
        return "\n\n".join(texts)
