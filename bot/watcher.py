"""A store-driven timer: sleep until the next due time the store holds, run what is due.

Ticket deadlines (reminders at 75 %, escalations) and horns (emergency re-sounding, fill-by
widening) each run on one. The store is the source of truth: each due step is marked done in
the transaction that queues its notices, so a restart neither drops nor repeats one. A change
that makes something due sooner calls `wake()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)


class DueWatcher:
    def __init__(self, name: str, run_due: Callable[[], Awaitable[Any]],
                 next_due: Callable[[], Awaitable[float | None]],
                 recover: Callable[[], Awaitable[Any]] | None = None,
                 max_sleep: float = 60.0) -> None:
        self.name = name
        self.run_due = run_due
        self.next_due = next_due
        self.recover = recover
        self.max_sleep = max_sleep
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"gridhorn:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        if self.recover is not None:
            try:
                await self.recover()
            except Exception:
                logger.exception("%s: recovery at start-up failed", self.name)
        while True:
            self._wake.clear()
            try:
                await self.run_due()
                next_due = await self.next_due()
            except Exception:
                logger.exception("%s: checking what is due failed", self.name)
                next_due = None
            delay = self.max_sleep if next_due is None else \
                min(self.max_sleep, max(0.0, next_due - time.time()))
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
