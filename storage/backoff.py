"""Exponential backoff: how long to wait after failures in a row.

One rule for every retry in Gridhorn (the outbox's calls, the HTTP worker's restarts,
getUpdates, BEGIN while another process writes): the first wait is `first`, each further
failure doubles it, up to `cap`. It lives at the bottom layer so that the store can use it
too; nothing here knows what is retried.
"""

from __future__ import annotations


def delay(failures: int, first: float, cap: float) -> float:
    """Seconds to wait after the `failures`-th failure in a row (none: no wait)."""
    if failures <= 0:
        return 0.0
    return min(cap, first * 2.0 ** min(failures - 1, 64))


class Backoff:
    """The failures of one thing in a row: `next()` after each, `reset()` once it works."""

    __slots__ = ("first", "cap", "failures")

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        """Count a failure; the seconds to wait before the next try."""
        self.failures += 1
        return delay(self.failures, self.first, self.cap)

    def reset(self) -> None:
        self.failures = 0
