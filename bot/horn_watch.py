"""The horn watcher: fill-by widening and emergency re-sounding, on time, from the store.

Each horn keeps its next re-sound (`resound_at`) and whether its fill-by check has run; the
watcher sleeps until the soonest of them, so a restart neither drops a re-sound nor plays
the missed periods back (one re-sound, then the next period). At start it also edits copies
whose counter a crash left stale.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.services.horns import HornService

logger = logging.getLogger(__name__)


class HornWatcher:
    def __init__(self, horns: HornService, max_sleep: float = 60.0) -> None:
        self.horns = horns
        self.max_sleep = max_sleep
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gridhorn:horns")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        try:
            await self.horns.recover()
        except Exception:
            logger.exception("horn counters could not be refreshed")
        while True:
            self._wake.clear()
            try:
                await self.horns.run_due()
                next_due = await self.horns.next_due()
            except Exception:
                logger.exception("horn check failed")
                next_due = None
            delay = self.max_sleep if next_due is None else \
                min(self.max_sleep, max(0.0, next_due - time.time()))
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
