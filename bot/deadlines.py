"""The deadline watcher: reminders at 75 % and escalations, fired within a second of due.

The store is the source of truth: the next due time is read from the tickets at every turn,
so a restart neither drops nor repeats a reminder (each is marked done in the transaction
that queues it).
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.services.tickets import TicketService

logger = logging.getLogger(__name__)


class DeadlineWatcher:
    def __init__(self, tickets: TicketService, max_sleep: float = 60.0) -> None:
        self.tickets = tickets
        self.max_sleep = max_sleep
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gridhorn:deadlines")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tickets.run_due()
                next_due = await self.tickets.next_due()
            except Exception:
                logger.exception("deadline check failed")
                next_due = None
            delay = self.max_sleep if next_due is None else \
                min(self.max_sleep, max(0.0, next_due - time.time()))
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
