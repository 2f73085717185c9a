"""The demo's clock: the same morning every time, one minute further at every step.

Texts name times ("due 10:05"), so a transcript replays exactly only if each step happens at
the same time as when it was recorded: the clock starts at `START` and, at each step, jumps to
that step's minute (recorded in the transcript); between steps it ticks. The whole process's
wall clock moves (time-machine patches `time.time` and `datetime.now`; the event loop's
monotonic clock is left alone), so the bot, its store and the emulator agree on it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine

#: A Monday morning in the county (Asia/Shanghai): offices open, residents write.
START = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class DemoClock:
    def __init__(self, start: datetime = START) -> None:
        self.start = start
        self.minute = 0  # of the last step, since `start`
        self._travel: time_machine.travel | None = None
        self._traveller: time_machine.Traveller | None = None

    def begin(self) -> None:
        self._travel = time_machine.travel(self.start, tick=True)
        self._traveller = self._travel.start()
        self.minute = 0

    def end(self) -> None:
        if self._travel is not None:
            self._travel.stop()
            self._travel = self._traveller = None

    def now(self) -> datetime:
        return datetime.now(self.start.tzinfo)

    def next_minute(self) -> int:
        """The minute of a step taken now: the next whole minute, at least one past the last."""
        elapsed = (self.now() - self.start).total_seconds() / 60
        return max(self.minute + 1, math.ceil(elapsed))

    def move_to(self, minute: int) -> None:
        assert self._traveller is not None, "the clock has not begun"
        self._traveller.move_to(self.start + timedelta(minutes=minute))
        self.minute = minute

    def label(self) -> str:
        return self.now().strftime("%Y-%m-%d %H:%M")
