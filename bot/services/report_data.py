"""What a monthly report holds (SPEC §6): built by `reports`, drawn by `report_files`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.services.checkpoints import Coverage
from bot.services.scopes import Scope
from storage.models import PartnerSpending, Patrol, Person, ReportTicket, Unit


@dataclass(frozen=True)
class GridStats:
    code: str
    name: str
    community: str
    received: int = 0
    resolved: int = 0
    overdue: int = 0
    median_hours: float | None = None
    rating: float | None = None
    ratings: int = 0
    horns: int = 0
    volunteer_hours: float = 0.0
    patrols: int = 0


@dataclass(frozen=True)
class HornActivity:
    """Horns published and volunteer hours served, per grid, in a period."""

    horns: dict[str | None, int] = field(default_factory=dict)   # None: over several grids
    hours: dict[str | None, float] = field(default_factory=dict)
    hours_by_person: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    month: str
    scope: Scope
    start: datetime
    end: datetime               # the month's end, or "now" for a month so far
    so_far: bool
    grids: tuple[GridStats, ...]
    total: GridStats
    tickets: tuple[ReportTicket, ...]
    patrols: tuple[Patrol, ...]
    units: dict[str, Unit]
    people: dict[int, Person]
    #: tickets received in the period by source (SPEC §11), in `TicketSource` order
    by_source: tuple[tuple[str, int], ...] = ()
    #: points spent at each partner shop in the period (SPEC §13), of the scope's communities
    redemptions: tuple[PartnerSpending, ...] = ()
    #: meetings held in the period (SPEC §12), and by unit: (name, on time, late) — how many
    #: of them each unit was present at
    meetings_held: int = 0
    meeting_units: tuple[tuple[str, int, int], ...] = ()
    #: patrol checkpoints' coverage (SPEC §13): per grid with checkpoints, and per matter
    checkpoints: tuple[tuple[Coverage, list[Coverage]], ...] = ()


@dataclass(frozen=True)
class ReportFiles:
    text: str
    chart: bytes
    workbook: bytes

    def filenames(self, month: str) -> tuple[str, str]:
        return f"gridhorn-report-{month}.png", f"gridhorn-report-{month}.xlsx"
