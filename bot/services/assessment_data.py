"""What an annual assessment holds (SPEC §12): built by `assessment`, drawn by
`assessment_files`; the composite of a row from its measures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.services.scopes import Scope


@dataclass(frozen=True)
class Row:
    key: str                      # unit code, or the person's user id
    name: str
    unit: str                     # the grid(s), building(s) or community it belongs to
    tickets: int = 0
    on_time: int = 0
    late: int = 0
    rating_sum: int = 0
    ratings: int = 0
    patrols_done: int | None = None     # None: not a measure of this level
    patrols_due: int | None = None
    horns: int | None = 0
    meetings: int = 0
    months: tuple[float | None, ...] = (None,) * 12
    active_months: int | None = 0       # participation: months with a horn or a meeting
    composite: float | None = None
    previous: float | None = None       # last year's composite (leaders and workers)
    flagged: bool = False

    @property
    def on_time_rate(self) -> float | None:
        judged = self.on_time + self.late
        return self.on_time / judged if judged else None

    @property
    def rating(self) -> float | None:
        return self.rating_sum / self.ratings if self.ratings else None

    @property
    def evaluation(self) -> float | None:
        scores = [m for m in self.months if m is not None]
        return sum(scores) / len(scores) if scores else None


@dataclass(frozen=True)
class Assessment:
    year: str
    scope: Scope
    months_counted: int            # 12, or the months so far of the current year
    weights: tuple[tuple[str, int], ...]
    band: float
    sheets: dict[str, tuple[Row, ...]]

    @property
    def flagged(self) -> list[Row]:
        return [r for level in ("grid_leaders", "grid_workers") for r in self.sheets[level]
                if r.flagged]


def components(row: Row, months_counted: int) -> dict[str, float]:
    """The measures with data, each on 0–100."""
    parts: dict[str, float] = {}
    if row.evaluation is not None:
        parts["evaluation"] = row.evaluation / 5 * 100
    if row.on_time_rate is not None:
        parts["ontime"] = row.on_time_rate * 100
    if row.rating is not None:
        parts["rating"] = row.rating / 5 * 100
    if row.patrols_due:
        parts["patrol"] = min(row.patrols_done or 0, row.patrols_due) / row.patrols_due * 100
    if row.active_months is not None and months_counted:
        parts["participation"] = min(row.active_months, months_counted) / months_counted * 100
    return parts


def composite(row: Row, weights: Iterable[tuple[str, int]], months_counted: int
              ) -> float | None:
    parts = components(row, months_counted)
    used = [(parts[name], weight) for name, weight in weights if name in parts and weight]
    total = sum(weight for _, weight in used)
    if not total:
        return None
    return round(sum(value * weight for value, weight in used) / total, 1)
