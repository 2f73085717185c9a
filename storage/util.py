"""Small helpers shared by the repositories."""

from __future__ import annotations

import time
from collections.abc import Sized
from datetime import UTC, datetime


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def parse_iso_required(value: str) -> datetime:
    """A NOT NULL timestamp column."""
    return datetime.fromisoformat(value)


def epoch() -> float:
    """Wall-clock seconds; the outbox schedules by it so `not_before` survives a restart."""
    return time.time()


def placeholders(values: Sized) -> str:
    """`?, ?, ?` for an `IN (...)` of `values` (empty for none)."""
    return ",".join("?" * len(values))
