"""Patrol checkpoints 专项巡更点 (SPEC §13): places of a grid to visit once per period, each for
a matter (food safety, vacant land, key residents, fire, other).

Checkpoints come from the map file (under a grid, `checkpoints:`) or from `/checkpoints add`
and `/checkpoints edit`; `/checkpoints retire` (or the list's button, then Confirm) retires one
that no longer exists (停用): from then on it is not due, reminded, matched by a location,
counted in current coverage or exported, while its visits and past misses stay in the reports
of the periods it served. `/patrol` (privately, without words) asks for the person's location
with Telegram's location button; a location within a checkpoint's radius (great-circle
distance) records a visit of the nearest such checkpoint, counted in the period of the
checkpoint's frequency (the key kept on the visit), and also as a patrol of its grid; the
answer lists what is still due this period and offers "Report a problem" (staff intake, the
checkpoint's building filled in). The next private text or photo is the visit's note and
photo (the `patrol` flow's `note` step). A location far from every checkpoint is a free
patrol (SPEC §6).

A period that ends without a visit is recorded in `checkpoint_misses` (its key decides "once",
across restarts and replicas) in the transaction that reminds the grid's workers (its leaders
when it has none). Only the period just ended is looked at: older ones are not replayed. A
`bot.watcher.DueWatcher` wakes at the next end of a period. Coverage (`/patrol status`, the
monthly report): per grid and matter, the checkpoint periods visited and missed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from bot.cron import cron_trigger
from bot.hooks import Wakeup
from bot.i18n import t
from bot.services import periods
from bot.services.access import Access, Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.map_specs import (
    DEFAULT_CHECKPOINT_FREQUENCY,
    DEFAULT_RADIUS_M,
    MAX_RADIUS_M,
    PATROLS,
)
from bot.services.outbox import Outbox, Priority
from bot.services.patrols import frequency_text
from bot.services.people import PeopleService
from bot.settings import Settings
from storage.models import MATTERS, Checkpoint, CheckpointVisit, Patrol, Unit
from storage.store import Store

FLOW = "patrol"          # the flow after a visit: its note and photo
NOTE_STEP = "note"
PREFIX = "cp"            # callback data: `cp:done`
EARTH_RADIUS_M = 6_371_008.8
MAX_NAME = 60
MAX_NOTE = 1000
MATTER_KEYS = {"food_safety": "checkpoints.matter_food_safety",
               "vacant_land": "checkpoints.matter_vacant_land",
               "key_visit": "checkpoints.matter_key_visit", "fire": "checkpoints.matter_fire",
               "other": "checkpoints.matter_other"}
EDIT_FIELDS = ("name", "matter", "lat", "lon", "radius", "frequency", "building")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres (haversine, on a sphere of the Earth's mean radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def parse_coordinate(text: str, key: str) -> float:
    limit = 90 if key == "lat" else 180
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise Refused("checkpoints.bad_lat" if key == "lat" else "checkpoints.bad_lon",
                      value=text[:20])
    return value


def parse_radius(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= MAX_RADIUS_M:
        raise Refused("checkpoints.bad_radius", value=text[:20], limit=MAX_RADIUS_M)
    return int(text)


def parse_matter(text: str) -> str:
    word = text.strip().lower()
    if word not in MATTERS:
        raise Refused("checkpoints.bad_matter", value=text[:30], matters=", ".join(MATTERS))
    return word


def parse_frequency(text: str, tz: tzinfo) -> str:
    value = " ".join(text.split())
    if value in PATROLS:
        return value
    try:
        cron_trigger(value, tz)
    except ValueError:
        raise Refused("checkpoints.bad_frequency", value=value[:40]) from None
    return value


def parse_name(text: str) -> str:
    name = " ".join(text.split())
    if not name or len(name) > MAX_NAME:
        raise Refused("checkpoints.bad_name", limit=MAX_NAME)
    return name


def matter_text(locale: str, matter: str) -> str:
    return t(locale, MATTER_KEYS[matter if matter in MATTER_KEYS else "other"])


@dataclass(frozen=True)
class Visited:
    """A visit recorded, and what of its grid is still due this period."""

    visit: CheckpointVisit
    checkpoint: Checkpoint
    grid: Unit
    due: list[tuple[Checkpoint, periods.Period]]
    #: the next private message is the visit's note (False: the person is in another
    #: guided flow, which is kept)
    awaits_note: bool = True


@dataclass(frozen=True)
class FreePatrol:
    """A location far from every checkpoint: a free patrol of a grid (the nearest checkpoint
    in the person's scope, if any, and how far it was)."""

    patrol: Patrol
    grid: Unit
    nearest: Checkpoint | None
    distance: float | None


@dataclass
class Coverage:
    """Checkpoint periods of a grid (and matter; None: all its matters) in a span."""

    grid: Unit
    matter: str | None
    visited: int = 0
    missed: int = 0
    total_checkpoints: int = 0

    @property
    def counted(self) -> int:
        return self.visited + self.missed


@dataclass(frozen=True)
class Status:
    """`/patrol status`: coverage this month so far, and what is due now, per grid."""

    month: str
    grids: list[tuple[Coverage, list[Coverage]]]
    due: dict[str, list[tuple[Checkpoint, periods.Period]]] = field(default_factory=dict)


class CheckpointService(Service):
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, changed: Wakeup | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        if clock is None:
            super().__init__(store, access, people, outbox, settings)
        else:
            super().__init__(store, access, people, outbox, settings, clock)
        self.changed = changed or Wakeup()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.settings.tz)

    # who and where

    async def _patrol_grids(self, actor: Actor) -> list[Unit]:
        """Every grid where the actor may patrol."""
        if not self.access.can_somewhere(actor, Action.PATROL):
            raise Refused("patrol.not_allowed")
        grids = [u for u in await self.store.map.all() if u.kind == "grid"]
        if actor.superadmin:
            return grids
        return [g for g in grids if await self.access.can(actor, Action.PATROL, g.code)]

    async def _grid(self, actor: Actor, code: str) -> Unit:
        if not self.access.can_somewhere(actor, Action.PATROL):
            raise Refused("patrol.not_allowed")
        unit = await self.store.map.get(code) or await self.store.map.get(code.upper())
        if unit is None or unit.kind != "grid":
            raise Refused("checkpoints.unknown_grid", code=code[:32])
        if not await self.access.can(actor, Action.PATROL, unit.code):
            raise Refused("patrol.not_allowed_here", code=unit.code)
        return unit

    def period_of(self, cp: Checkpoint, moment: datetime) -> periods.Period | None:
        return periods.patrol_period(cp.frequency, moment.astimezone(self.settings.tz))

    # /patrol with a location

    async def ask_location(self, actor: Actor) -> None:
        """`/patrol` privately without words: may this person patrol at all?"""
        await self._patrol_grids(actor)

    async def located(self, actor: Actor, lat: float, lon: float, now: datetime,
                      source_update_id: int | None = None) -> Visited | FreePatrol:
        """A location sent by staff: a visit of the nearest checkpoint within its radius, else
        a free patrol (of the nearest checkpoint's grid, else the person's only grid)."""
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise Refused("checkpoints.bad_location")
        grids = {g.code: g for g in await self._patrol_grids(actor)}
        if not grids:
            raise Refused("patrol.no_grid")
        candidates = [(distance_m(lat, lon, cp.lat, cp.lon), cp)
                      for cp in await self.store.checkpoints.all(grids)]
        candidates.sort(key=lambda pair: (pair[0], pair[1].code))
        in_range = [(d, cp) for d, cp in candidates if d <= cp.radius_m]
        at = now.timestamp()
        if in_range:
            distance, cp = in_range[0]
            period = self.period_of(cp, now)
            key = period.key if period is not None else periods.month_key(now)
            grid = grids[cp.grid_code]
            async with self.store.transaction():
                visit_id = await self.store.checkpoints.add_visit(
                    cp.code, actor.user_id, at, key, lat, lon, distance, source_update_id)
                patrol_id = await self.store.schedules.add_patrol(
                    grid.code, actor.user_id, at, cp.name, None, source_update_id)
                flow = await self.store.flows.get(actor.user_id)
                awaits_note = flow is None or flow.name == FLOW
                if awaits_note:
                    await self.store.flows.set(actor.user_id, FLOW, NOTE_STEP,
                                               {"visit": visit_id, "patrol": patrol_id})
            visit = await self.store.checkpoints.visit(visit_id)
            assert visit is not None
            return Visited(visit=visit, checkpoint=cp, grid=grid,
                           due=await self.due(grid.code, now), awaits_note=awaits_note)
        nearest = candidates[0] if candidates else None
        if nearest is not None:
            grid = grids[nearest[1].grid_code]
        elif len(grids) == 1:
            grid = next(iter(grids.values()))
        else:
            raise Refused("checkpoints.none_in_scope")
        async with self.store.transaction():
            patrol_id = await self.store.schedules.add_patrol(
                grid.code, actor.user_id, at, f"{lat:.5f}, {lon:.5f}", None, source_update_id)
        patrol = await self.store.schedules.patrol(patrol_id)
        assert patrol is not None
        return FreePatrol(patrol=patrol, grid=grid,
                          nearest=nearest[1] if nearest else None,
                          distance=nearest[0] if nearest else None)

    async def due(self, grid_code: str, now: datetime) -> list[tuple[Checkpoint, periods.Period]]:
        """The grid's checkpoints not yet visited in their current period."""
        out: list[tuple[Checkpoint, periods.Period]] = []
        for cp in await self.store.checkpoints.all([grid_code]):
            period = self.period_of(cp, now)
            if period is not None and not await self.store.checkpoints.visited(
                    [cp.code], {cp.code: period.key}):
                out.append((cp, period))
        return out

    async def note_flow(self, user_id: int) -> int | None:
        """The visit whose note and photo the person's next message gives, if any."""
        flow = await self.store.flows.get(user_id)
        if flow is None or flow.name != FLOW:
            return None
        visit = flow.data.get("visit")
        return int(visit) if isinstance(visit, int) else None

    async def annotate(self, actor: Actor, text: str, photo: str | None) -> CheckpointVisit:
        """The visit's note (and photo): the flow ends."""
        text = text.strip()
        if len(text) > MAX_NOTE:
            raise Refused("checkpoints.note_too_long", limit=MAX_NOTE)
        async with self.store.transaction():
            flow = await self.store.flows.get(actor.user_id)
            visit_id = await self.note_flow(actor.user_id)
            if flow is None or visit_id is None:
                raise Refused("checkpoints.note_gone")
            await self.store.checkpoints.annotate(visit_id, text or None, photo)
            patrol_id = flow.data.get("patrol")
            if text and isinstance(patrol_id, int):  # the patrols sheet shows it too
                await self.store.schedules.set_patrol_note(patrol_id, text)
            await self.store.flows.clear(actor.user_id)
        visit = await self.store.checkpoints.visit(visit_id)
        assert visit is not None
        return visit

    async def finish(self, actor: Actor) -> bool:
        """"Done" under a visit: no note; False when there was nothing to finish."""
        async with self.store.transaction():
            if await self.note_flow(actor.user_id) is None:
                return False
            await self.store.flows.clear(actor.user_id)
        return True

    async def building_of(self, visit_id: int) -> str | None:
        visit = await self.store.checkpoints.visit(visit_id)
        cp = await self.store.checkpoints.get(visit.checkpoint_code) if visit else None
        return cp.building_code if cp is not None else None

    # the periods' ends

    async def next_due(self) -> float | None:
        """The next end of a checkpoint's current period."""
        now = self._now()
        ends = [p.end.timestamp() for cp in await self.store.checkpoints.all()
                if (p := self.period_of(cp, now)) is not None]
        return min(ends) if ends else None

    async def run_due(self) -> int:
        """Each checkpoint whose period just ended without a visit: missed, once, and the
        grid's workers reminded (its leaders when it has none). Returns the reminders queued."""
        now = self._now()
        sent = 0
        for cp in await self.store.checkpoints.all():
            current = self.period_of(cp, now)
            if current is None:
                continue
            ended = self.period_of(cp, current.start - timedelta(microseconds=1))
            if ended is None or ended.key == current.key or cp.created_at >= ended.end.timestamp():
                continue
            if await self.store.checkpoints.visited([cp.code], {cp.code: ended.key}):
                continue
            async with self.store.transaction():
                if not await self.store.checkpoints.add_miss(cp.code, ended.key, *ended.span):
                    continue
                sent += await self._remind(cp, ended, current)
        return sent

    async def _remind(self, cp: Checkpoint, ended: periods.Period,
                      current: periods.Period) -> int:
        grid = await self.store.map.get(cp.grid_code)
        people = await self.store.people.holders(("grid_worker",), [cp.grid_code]) or \
            await self.store.people.holders(("grid_leader",), [cp.grid_code])
        tz = self.settings.tz
        for user_id in sorted({g.user_id for g in people}):
            locale = await self.people.locale_for(user_id)
            await self.outbox.send(
                user_id, t(locale, "checkpoints.missed", name=cp.name, code=cp.code,
                           matter=matter_text(locale, cp.matter),
                           grid=grid.name if grid else cp.grid_code,
                           start=ended.start.astimezone(tz).strftime("%m-%d %H:%M"),
                           end=ended.end.astimezone(tz).strftime("%m-%d %H:%M"),
                           next=current.end.astimezone(tz).strftime("%m-%d %H:%M")),
                priority=Priority.PERSONAL)
        return len({g.user_id for g in people})

    # coverage

    async def status(self, actor: Actor, code: str | None, now: datetime) -> Status:
        """`/patrol status [GRID]`: this month so far, per grid in scope and matter."""
        grids = [await self._grid(actor, code)] if code else await self._patrol_grids(actor)
        now = now.astimezone(self.settings.tz)
        month = periods.month(periods.month_key(now), self.settings.tz)
        start, end = month.start.timestamp(), now.timestamp() + 1
        cover = await grid_coverage(self.store, grids, start, end, current=True)
        due = {total.grid.code: await self.due(total.grid.code, now) for total, _ in cover}
        return Status(month=month.key, grids=cover, due=due)

    # /checkpoints

    async def listed(self, actor: Actor, code: str | None) -> list[tuple[Unit, list[Checkpoint]]]:
        grids = [await self._grid(actor, code)] if code else await self._patrol_grids(actor)
        out = []
        for grid in grids:
            cps = await self.store.checkpoints.all([grid.code], retired=True)
            if cps or code:
                out.append((grid, cps))
        return out

    async def to_retire(self, actor: Actor, code: str) -> Checkpoint:
        """A checkpoint this person may retire (the same right as to edit it): asked before
        the confirming tap, and checked again by `retire`."""
        cp = await self.store.checkpoints.get(code) or \
            await self.store.checkpoints.get(code.upper())
        if cp is None:
            raise Refused("checkpoints.unknown", code=code[:32])
        await self._grid(actor, cp.grid_code)
        if cp.retired:
            raise Refused("checkpoints.already_retired", code=cp.code, name=cp.name)
        return cp

    async def retire(self, actor: Actor, code: str) -> Checkpoint:
        """停用 (confirmed): no longer due, reminded, matched by a location, counted in
        current coverage or exported; its visits and past misses stay for the reports."""
        async with self.store.transaction():
            cp = await self.to_retire(actor, code)
            if not await self.store.checkpoints.retire(cp.code, self.clock(), actor.user_id):
                raise Refused("checkpoints.already_retired", code=cp.code, name=cp.name)
        retired = await self.store.checkpoints.get(cp.code)
        assert retired is not None
        return retired

    async def add(self, actor: Actor, words: list[str]) -> Checkpoint:
        """`/checkpoints add GRID MATTER LAT LON RADIUS_M NAME…`; the code is made up."""
        if len(words) < 6:
            raise Refused("checkpoints.usage_add")
        grid = await self._grid(actor, words[0])
        matter = parse_matter(words[1])
        lat, lon = parse_coordinate(words[2], "lat"), parse_coordinate(words[3], "lon")
        radius = parse_radius(words[4])
        name = parse_name(" ".join(words[5:]))
        async with self.store.transaction():
            existing = {cp.code for cp in await self.store.checkpoints.all(retired=True)}
            number = len([c for c in existing if c.startswith(f"{grid.code}-K")]) + 1
            while f"{grid.code}-K{number:02d}" in existing:
                number += 1
            code = f"{grid.code}-K{number:02d}"
            cp = Checkpoint(code=code, grid_code=grid.code, name=name, matter=matter, lat=lat,
                            lon=lon, radius_m=radius,
                            frequency=grid.patrol or DEFAULT_CHECKPOINT_FREQUENCY,
                            position=await self.store.checkpoints.next_position(grid.code),
                            created_at=self.clock())
            await self.store.checkpoints.upsert(cp)
        self._wake(cp)
        saved = await self.store.checkpoints.get(code)
        assert saved is not None
        return saved

    async def edit(self, actor: Actor, words: list[str]) -> Checkpoint:
        """`/checkpoints edit CODE FIELD VALUE…`."""
        if len(words) < 3 or words[1].lower() not in EDIT_FIELDS:
            raise Refused("checkpoints.usage_edit", fields=", ".join(EDIT_FIELDS))
        code, key, value = words[0], words[1].lower(), " ".join(words[2:])
        async with self.store.transaction():
            cp = await self.store.checkpoints.get(code)
            if cp is None:
                raise Refused("checkpoints.unknown", code=code[:32])
            await self._grid(actor, cp.grid_code)
            if cp.retired:
                raise Refused("checkpoints.is_retired", code=cp.code)
            changes: dict[str, object] = {}
            if key == "name":
                changes["name"] = parse_name(value)
            elif key == "matter":
                changes["matter"] = parse_matter(value)
            elif key in ("lat", "lon"):
                changes[key] = parse_coordinate(value, key)
            elif key == "radius":
                changes["radius_m"] = parse_radius(value)
            elif key == "frequency":
                changes["frequency"] = parse_frequency(value, self.settings.tz)
            else:
                changes["building_code"] = await self._building(cp, value)
            cp = cp.model_copy(update=changes)
            await self.store.checkpoints.upsert(cp)
        self._wake(cp)
        return cp

    async def _building(self, cp: Checkpoint, code: str) -> str | None:
        if code.strip() in ("-", "—"):
            return None
        unit = await self.store.map.get(code.strip())
        chain = await self.store.map.ancestors(unit.code) if unit is not None else []
        if unit is None or unit.kind != "building" or \
                cp.grid_code not in {u.code for u in chain}:
            raise Refused("checkpoints.bad_building", code=code[:32], grid=cp.grid_code)
        return unit.code

    def _wake(self, cp: Checkpoint) -> None:
        period = self.period_of(cp, self._now())
        if period is not None:
            self.changed(period.end.timestamp())


async def grid_coverage(store: Store, grids: list[Unit], start: float, end: float,
                        current: bool = False) -> list[tuple[Coverage, list[Coverage]]]:
    """Per grid (those with checkpoints) and matter: the checkpoint periods visited in
    [start, end) and those missed (their period ended in (start, end]). A retired checkpoint
    counts in a span it was in service for (retired after its start: a report of a past
    period keeps its visits and misses); `current` (`/patrol status`): those in service
    only."""
    out: list[tuple[Coverage, list[Coverage]]] = []
    for grid in grids:
        cps = [cp for cp in await store.checkpoints.all([grid.code], retired=not current)
               if cp.retired_at is None or cp.retired_at > start]
        if not cps:
            continue
        by_matter: dict[str, Coverage] = {}
        matter_of = {cp.code: cp.matter for cp in cps}
        for cp in cps:
            by_matter.setdefault(cp.matter, Coverage(grid=grid, matter=cp.matter))
            by_matter[cp.matter].total_checkpoints += 1
        seen = {(v.checkpoint_code, v.period)
                for v in await store.checkpoints.visits(matter_of, start, end)}
        for code, _ in seen:
            by_matter[matter_of[code]].visited += 1
        for miss in await store.checkpoints.misses(matter_of, start, end):
            by_matter[matter_of[miss.checkpoint_code]].missed += 1
        parts = [by_matter[m] for m in MATTERS if m in by_matter]
        total = Coverage(grid=grid, matter=None, total_checkpoints=len(cps),
                         visited=sum(p.visited for p in parts),
                         missed=sum(p.missed for p in parts))
        out.append((total, parts))
    return out


def coverage_line(locale: str, c: Coverage) -> str:
    """"2/3 checkpoints visited, 1 missed" (the matter's, or the grid's)."""
    return t(locale, "checkpoints.coverage", visited=c.visited, counted=c.counted,
             missed=c.missed)


def checkpoint_line(locale: str, cp: Checkpoint) -> str:
    return t(locale, "checkpoints.line", code=cp.code, name=cp.name,
             matter=matter_text(locale, cp.matter), lat=f"{cp.lat:.5f}", lon=f"{cp.lon:.5f}",
             radius=cp.radius_m, frequency=frequency_text(locale, cp.frequency))


__all__ = ["DEFAULT_RADIUS_M", "CheckpointService", "Coverage", "FreePatrol", "Visited",
           "coverage_line", "distance_m", "grid_coverage"]
