"""Work a burst can put off: it runs once the people being answered have their answers.

A Submit flags its ticket and leaves the staff cards (a tenth of its CPU) to this backlog, so a
thousand residents pressing Submit at once get their receipts first. The work lives in the
store, not here: `run()` finds what is flagged, does a batch and says whether more is waiting;
it also runs at start-up, so a crash between a Submit and its cards loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.hooks import Wakeup

logger = logging.getLogger(__name__)


class Backlog:
    def __init__(self, name: str, run: Callable[[], Awaitable[bool]], *,
                 wakeup: Wakeup | None = None,
                 foreground_busy: Callable[[], bool] = lambda: False,
                 max_deferral: float = 2.0, poll: float = 0.02) -> None:
        """`wakeup`: fired when something was flagged; `foreground_busy`: true while
        people's updates are being handled (the intake)."""
        self.name = name
        self.run = run
        self.max_deferral = max_deferral  # seconds the work may wait for a busy intake
        self.poll = poll
        self.foreground_busy = foreground_busy
        self._wake = asyncio.Event()
        self._since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        if wakeup is not None:
            wakeup.connect(self.wake)

    def wake(self, when: float | None = None) -> None:
        """Something was flagged (an after-commit hook); it runs as soon as the intake lets
        it, whatever `when` says."""
        if self._since is None:
            self._since = time.monotonic()
        self._idle.clear()
        self._wake.set()

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until nothing flagged is left undone (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"gridhorn:{self.name}")
        self.wake()  # what a crash left flagged

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            since = self._since if self._since is not None else time.monotonic()
            self._since = None
            more = True
            while more:
                # waits for the people being answered, but never longer than max_deferral
                while self.foreground_busy() and time.monotonic() - since < self.max_deferral:
                    await asyncio.sleep(self.poll)
                try:
                    more = await self.run()
                except Exception:
                    logger.exception("%s: the backlog failed; retrying in 5 s", self.name)
                    await asyncio.sleep(5)
                await asyncio.sleep(0)  # answers go in between batches
            if not self._wake.is_set():
                self._idle.set()
