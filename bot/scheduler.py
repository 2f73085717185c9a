"""The scheduler (SPEC §6): one crontab per recurring job, in the configured time zone.

The store is the source of truth. Jobs live in memory only (APScheduler 3's AsyncIOScheduler,
derived from settings at start-up) and merely wake `run_due`. Each job's run is for a PERIOD
computed from its last fire time — the theme of "2026-12", the report of "2026-11", the boards
of "2026-Q4", the daily checks of "2026-12-01" — and is recorded in `schedule_runs`, in the
transaction that queues its posts (each post also recorded per chat in `schedule_posts`). So:

- a job that fires twice in a period, or again after a restart, posts nothing more;
- at start-up (after a restart or an outage) every job whose last fire time lies in a period
  without a record runs once, now; older periods are not replayed;
- a chat bound after a monthly run gets what that run posted (the month's theme, the report
  on display) from the next daily run, once: the per-chat records decide.

The clock is injectable (`now`): tests move it across month ends and restarts without
sleeping and call `run_due(now)` themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.cron import cron_trigger
from bot.metrics import Metrics
from bot.services import meeting_nudge, periods, unit_votes
from bot.services.reports import MonthlyPlan
from bot.services.schedule import ScheduleService
from bot.settings import Settings
from storage.store import Store

logger = logging.getLogger(__name__)

Prepare = Callable[[str, datetime], Awaitable[Any]]
Write = Callable[[str, datetime, Any], Awaitable[int]]
LateReport = tuple[str, MonthlyPlan]       # the report's month, and what goes to whom


PATROL_CHECK = "patrol_check"
PATROL_CHECK_CRON = "*/15 * * * *"
EVALUATION_CHECK = "evaluation_reminder"
VOTE_CHECK = "unit_vote_close"


@dataclass(frozen=True)
class Job:
    name: str
    cron: str
    period: Callable[[datetime], str]       # fire time (local) → the period it runs for
    write: Write                            # inside the run's transaction; returns posts
    prepare: Prepare | None = None          # before it (slow work: charts, workbooks)


@dataclass(frozen=True)
class Ran:
    job: str
    period: str
    posts: int


async def _nothing(period: str, now: datetime) -> None:
    return None


class Scheduler:
    def __init__(self, store: Store, schedule: ScheduleService, settings: Settings,
                 now: Callable[[], datetime] | None = None,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics or Metrics()  # runs and failures per job (SPEC §15)
        self.schedule = schedule
        self.tz = settings.tz
        self.raw_retention = settings.raw_retention
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(self.tz))
        themes, reports, boards = schedule.themes, schedule.reports, schedule.boards
        self.jobs: tuple[Job, ...] = (
            Job("theme", settings.theme_cron, periods.month_key,
                lambda period, now, _: themes.post_month(period)),
            Job("theme_reminder", settings.theme_reminder_cron,
                lambda fire: periods.shift_month(periods.month_key(fire), 1),
                lambda period, now, _: themes.remind_missing(period)),
            Job("report", settings.report_cron,
                lambda fire: periods.shift_month(periods.month_key(fire), -1),
                lambda period, now, plan: reports.write_monthly(period, plan),
                prepare=lambda period, now: reports.prepare_monthly(period)),
            Job("board", settings.board_cron, periods.previous_quarter_key,
                lambda period, now, _: boards.post_quarter(period)),
            Job("evaluation", settings.evaluation_cron,
                lambda fire: periods.shift_month(periods.month_key(fire), -1),
                lambda period, now, _: schedule.evaluations.open_month(period, now)),
            Job("daily", settings.daily_cron, lambda fire: fire.date().isoformat(), self._daily,
                prepare=self._late_report),
            Job(meeting_nudge.JOB, settings.meeting_nudge_cron, periods.month_key,
                lambda period, now, _: schedule.meeting_nudge.nudge(period, now)),
            # posts to claim (SPEC §10): "Still serving?" monthly (silence: the daily run)
            Job("post_check", settings.post_check_cron, periods.month_key,
                lambda period, now, _: schedule.posts.ask_holders(period)),
            # the residents' quarterly vote (SPEC §10); closed by every run (_vote_check)
            Job(unit_votes.JOB, settings.vote_cron, periods.quarter_key,
                lambda period, now, _: schedule.votes.open_quarter(period, now)),
        )
        self.triggers = {job.name: cron_trigger(job.cron, self.tz) for job in self.jobs}
        self._lock = asyncio.Lock()
        self._aps: AsyncIOScheduler | None = None
        self._ticks: set[asyncio.Task[Any]] = set()

    async def _late_report(self, period: str, now: datetime) -> LateReport | None:
        """The public report on display (last month's, once its run is recorded this month),
        prepared for the chats bound since that run; None before the run."""
        month = periods.shift_month(periods.month_key(now), -1)
        if not await self.store.schedules.has_run("report", month):
            return None
        return month, await self.schedule.reports.prepare_monthly(month)

    async def _daily(self, period: str, now: datetime, late: LateReport | None) -> int:
        """Patrol reminders; absences (AB岗) whose date passed ended, each holder told; and
        to building chats bound since this month's runs, the month's
        theme; to any chat bound since, the report on display (each chat claimed once)."""
        posts = await self.schedule.patrols.remind_due(now)
        posts += await self.schedule.backups.end_expired()
        # SPEC §14: raw updates handled and older than GRIDHORN_RAW_RETENTION go
        cutoff = (now - self.raw_retention).astimezone(UTC).isoformat(timespec="milliseconds")
        expired = await self.store.privacy.expire_raw(cutoff)
        if expired:
            logger.info("%d raw update(s) past their retention deleted", expired)
        posts += await self.schedule.posts.release_silent()  # posts to claim (SPEC §10)
        month = periods.month_key(now)
        if await self.store.schedules.has_run("theme", month):
            posts += await self.schedule.themes.post_month(month)
        if late is not None:
            report_month, plan = late
            posts += await self.schedule.reports.write_monthly(report_month, plan)
        return posts

    def last_fire(self, job: Job, now: datetime) -> datetime | None:
        return periods.last_fire(self.triggers[job.name], now.astimezone(self.tz))

    async def run_due(self, now: datetime | None = None) -> list[Ran]:
        """Run every job whose current period (from its last fire time) has no record yet."""
        moment = (now or self.now()).astimezone(self.tz)
        ran: list[Ran] = []
        async with self._lock:
            await self._checkpoint_check()
            for job in self.jobs:
                fire = self.last_fire(job, moment)
                if fire is None:
                    continue
                period = job.period(fire)
                if await self.store.schedules.has_run(job.name, period):
                    continue
                try:
                    result = await self._run(job, period, moment)
                except Exception:
                    logger.exception("scheduled job %s for %s failed", job.name, period)
                    self.metrics.scheduler_failures.labels(job.name).inc()
                    continue
                if result is not None:
                    self.metrics.scheduler_runs.labels(job.name).inc()
                    ran.append(result)
            ran += await self._patrol_check(moment)
            ran += await self._evaluation_check(moment)
            ran += await self._vote_check(moment)
        return ran

    async def _vote_check(self, now: datetime) -> list[Ran]:
        """The residents' votes whose seven days are over are closed, each once (the store's
        `closed_at` decides; SPEC §10): at every run, so at most a quarter hour late."""
        try:
            closed = await self.schedule.votes.close_due(now.timestamp())
        except Exception:
            logger.exception("closing the residents' votes failed")
            self.metrics.scheduler_failures.labels(VOTE_CHECK).inc()
            return []
        self.metrics.scheduler_runs.labels(VOTE_CHECK).inc()
        return [Ran(VOTE_CHECK, now.isoformat(timespec="minutes"), closed)] if closed else []

    async def _checkpoint_check(self) -> None:
        """Patrol checkpoints whose period just ended without a visit (SPEC §13; their own
        watcher does it at each period's end): first, so a report counts those misses."""
        try:
            await self.schedule.checkpoints.run_due()
        except Exception:
            logger.exception("checking the checkpoints' periods failed")

    async def _evaluation_check(self, now: datetime) -> list[Ran]:
        """Three days after an evaluation round opened, the raters with ratings missing are
        reminded, once each (claimed per person in `schedule_posts`; SPEC §12)."""
        try:
            async with self.store.transaction():
                posts = await self.schedule.evaluations.remind_due(now)
        except Exception:
            logger.exception("evaluation reminders failed")
            self.metrics.scheduler_failures.labels(EVALUATION_CHECK).inc()
            return []
        self.metrics.scheduler_runs.labels(EVALUATION_CHECK).inc()
        return [Ran(EVALUATION_CHECK, now.isoformat(timespec="minutes"), posts)] if posts \
            else []

    async def _patrol_check(self, now: datetime) -> list[Ran]:
        """A grid whose patrol frequency is a crontab may owe several patrols a day: its
        workers hear of each period within a quarter hour of its start. Not a recorded run:
        each reminder is claimed once per period and person (named frequencies are reminded
        by the daily job, in the morning)."""
        try:
            async with self.store.transaction():
                posts = await self.schedule.patrols.remind_due(now, crontab_only=True)
        except Exception:
            logger.exception("patrol reminders failed")
            self.metrics.scheduler_failures.labels(PATROL_CHECK).inc()
            return []
        self.metrics.scheduler_runs.labels(PATROL_CHECK).inc()
        return [Ran(PATROL_CHECK, now.isoformat(timespec="minutes"), posts)] if posts else []

    async def _run(self, job: Job, period: str, now: datetime) -> Ran | None:
        prepared = await (job.prepare or _nothing)(period, now)
        async with self.store.transaction():
            # The claim first: the store's unique key decides which run writes, even with
            # two leaders overlapping (a fenced one still finishing its run).
            if not await self.store.schedules.record_run(job.name, period):
                return None
            posts = await job.write(period, now, prepared)
            await self.store.schedules.set_run_posts(job.name, period, posts)
        logger.info("scheduled job %s ran for %s: %d post(s)", job.name, period, posts)
        return Ran(job.name, period, posts)

    async def start(self) -> list[Ran]:
        """Arm one cron trigger per job, then catch up on what is due (returned)."""
        self._aps = AsyncIOScheduler(timezone=self.tz, job_defaults={
            # a late wake-up still runs (the period record makes a re-run harmless)
            "misfire_grace_time": None, "coalesce": True, "max_instances": 1})
        for job in self.jobs:
            self._aps.add_job(self._tick, trigger=self.triggers[job.name], id=job.name,
                              name=f"gridhorn:{job.name}", replace_existing=True)
        self._aps.add_job(self._tick, trigger=cron_trigger(PATROL_CHECK_CRON, self.tz),
                          id=PATROL_CHECK, name=f"gridhorn:{PATROL_CHECK}",
                          replace_existing=True)
        self._aps.start()
        return await self.run_due()

    async def _tick(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._ticks.add(task)
        try:
            await self.run_due()
        except Exception:
            logger.exception("scheduled run failed")
        finally:
            self._ticks.discard(task)

    @property
    def aps(self) -> AsyncIOScheduler:
        """The running APScheduler (also carries the deadline and horn watchers' jobs)."""
        assert self._aps is not None, "the scheduler is not started"
        return self._aps

    def next_fire_times(self) -> dict[str, datetime | None]:
        if self._aps is None:
            return {}
        return {job.id: job.next_run_time for job in self._aps.get_jobs()}

    async def stop(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        ticks = list(self._ticks)
        for task in ticks:  # a run cut short rolls its transaction back: nothing half-sent
            task.cancel()
        await asyncio.gather(*ticks, return_exceptions=True)
