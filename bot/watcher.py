"""Store-driven due times on the scheduler: run what is due, arm the next one.

Ticket deadlines (reminders at 75 %, escalations) and horns (emergency re-sounding, fill-by
widening) each have one watcher. The store is the source of truth: each due step is marked
done in the transaction that queues its notices, so a restart neither drops nor repeats one.
The watcher keeps one APScheduler date job (`due:<name>`) on the same scheduler as the cron
jobs, armed at the next due time the store holds; a change that makes something due sooner
fires the watcher's `Wakeup` (handed to the service and to the watcher by the composition
root), which arms it for then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.hooks import Wakeup

logger = logging.getLogger(__name__)


class DueWatcher:
    def __init__(self, name: str, run_due: Callable[[], Awaitable[Any]],
                 next_due: Callable[[], Awaitable[float | None]],
                 recover: Callable[[], Awaitable[Any]] | None = None,
                 max_sleep: float = 60.0, wakeup: Wakeup | None = None) -> None:
        """`wakeup`: fired by the service when something may be due sooner."""
        self.name = name
        self.run_due = run_due
        self.next_due = next_due
        self.recover = recover
        self.max_sleep = max_sleep
        self._aps: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._running: set[asyncio.Task[Any]] = set()
        if wakeup is not None:
            wakeup.connect(self.wake)

    @property
    def job_id(self) -> str:
        return f"due:{self.name}"

    async def start(self, aps: AsyncIOScheduler) -> None:
        """Recover what a crash left, then check now (the scheduler is already running)."""
        self._aps = aps
        if self.recover is not None:
            try:
                await self.recover()
            except Exception:
                logger.exception("%s: recovery at start-up failed", self.name)
        self.wake()

    def wake(self, when: float | None = None) -> None:
        """Something may be due at `when` (None: now): check then, unless a check is
        already armed sooner (a new ticket is due in hours; a check per Submit would scan
        the open tickets a thousand times in a burst)."""
        self._arm(time.time() if when is None else when)

    def _arm(self, when: float) -> None:
        aps = self._aps
        if aps is None or not aps.running:
            return
        run_date = datetime.fromtimestamp(when, UTC)
        job = aps.get_job(self.job_id)
        if job is not None and job.next_run_time is not None and job.next_run_time <= run_date:
            return  # an earlier check is already armed (e.g. a wake during a run)
        aps.add_job(self._tick, DateTrigger(run_date=run_date), id=self.job_id,
                    name=f"gridhorn:{self.job_id}", replace_existing=True,
                    misfire_grace_time=None, max_instances=2)

    async def _tick(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            async with self._lock:
                next_due = None
                try:
                    await self.run_due()
                    next_due = await self.next_due()
                except Exception:
                    logger.exception("%s: checking what is due failed", self.name)
                now = time.time()
                self._arm(now + self.max_sleep if next_due is None
                          else min(max(next_due, now), now + self.max_sleep))
        finally:
            self._running.discard(task)

    async def stop(self) -> None:
        if self._aps is not None and self._aps.running and self._aps.get_job(self.job_id):
            self._aps.remove_job(self.job_id)
        self._aps = None
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
