"""Telegram's flood limits as strict sliding windows.

Telegram documents (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this)
roughly 30 messages per second overall, one message per second per chat and 20
messages per minute per group.  The real server is a little forgiving about
short bursts; the emulator is not: every window is exact, so a bot that passes
here will not be throttled by Telegram.

Each window keeps a deque of the timestamps of accepted calls, so checking and
recording is amortised O(1).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_FLOOD_LIMITS", "FloodLimiter", "FloodLimits"]


@dataclass(frozen=True, slots=True)
class FloodLimits:
    """Per-bot send limits (``None`` on the emulator disables them all).

    Attributes:
        overall_per_s: sends across all chats in any 1 second window.
        group_per_min: sends into one group/supergroup in any 60 second window.
        chat_per_s: sends into one chat (any type) in any 1 second window.
    """

    overall_per_s: int = 30
    group_per_min: int = 20
    chat_per_s: int = 1

    def __post_init__(self) -> None:
        for name in ("overall_per_s", "group_per_min", "chat_per_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"FloodLimits.{name} must be at least 1")


#: Telegram's published limits (the emulator's default).
DEFAULT_FLOOD_LIMITS = FloodLimits()


class _Window:
    """Timestamps of accepted events inside a sliding window of ``span`` seconds."""

    __slots__ = ("_events", "limit", "span")

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self._events: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        """Seconds until one more event fits (0 if it fits now)."""
        events = self._events
        horizon = now - self.span
        while events and events[0] <= horizon:
            events.popleft()
        if len(events) < self.limit:
            return 0.0
        # The event that must leave the window before a new one fits.
        return events[len(events) - self.limit] + self.span - now

    def record(self, now: float) -> None:
        self._events.append(now)

    def __len__(self) -> int:
        return len(self._events)


class FloodLimiter:
    """Checks and records sends against :class:`FloodLimits`.

    ``clock`` must be monotonic; tests may inject a fake one.
    """

    def __init__(self, limits: FloodLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._overall = _Window(limits.overall_per_s, 1.0)
        self._per_chat: dict[int, _Window] = {}
        self._per_group: dict[int, _Window] = {}
        self._checks = 0

    def try_acquire(self, chat_id: int, *, is_group: bool) -> int | None:
        """Record one send into ``chat_id`` if every window allows it.

        Returns ``None`` when the send is accepted, otherwise the ``retry_after``
        Telegram would answer: whole seconds (at least 1) until it would fit.
        A rejected send is not recorded.
        """
        now = self._clock()
        chat_window = self._per_chat.get(chat_id)
        if chat_window is None:
            chat_window = self._per_chat[chat_id] = _Window(self.limits.chat_per_s, 1.0)
        windows = [self._overall, chat_window]
        if is_group:
            group_window = self._per_group.get(chat_id)
            if group_window is None:
                group_window = self._per_group[chat_id] = _Window(self.limits.group_per_min, 60.0)
            windows.append(group_window)

        wait = max(window.wait_time(now) for window in windows)
        if wait > 0:
            return max(1, math.ceil(wait - 1e-9))
        for window in windows:
            window.record(now)
        self._checks += 1
        if self._checks % 4096 == 0:
            self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        """Drop windows of chats that have been quiet for a minute (bounded memory)."""
        for table in (self._per_chat, self._per_group):
            idle = [
                key
                for key, window in table.items()
                if window.wait_time(now) == 0 and not len(window)
            ]
            for key in idle:
                del table[key]
