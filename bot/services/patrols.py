"""Patrols 巡查 (SPEC §6): grid staff record them; a grid owes one per period of its frequency.

A grid's frequency comes from the map (`patrol: daily | weekly | monthly | a crontab`). The
daily run reminds the grid's workers privately (its leaders when it has no workers) once per
period while none is recorded: daily → each day, weekly → each ISO week (from Monday),
monthly → each month, a crontab → from each time it fires until the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.i18n import t
from bot.services import periods
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from storage.models import Patrol, Unit

JOB = "patrol"
_SEPARATOR = re.compile(r"[;；\n]")
MAX_LOCATION = 100
MAX_NOTE = 1000
FREQUENCY = {"daily": "patrol.freq_daily", "weekly": "patrol.freq_weekly",
             "monthly": "patrol.freq_monthly"}
NAMED_FREQUENCIES = tuple(FREQUENCY)


@dataclass(frozen=True)
class Recorded:
    patrol: Patrol
    grid: Unit
    this_month: int


class PatrolService(Service):

    async def record(self, actor: Actor, chat_id: int, args: str, now: datetime,
                     source_update_id: int | None = None) -> Recorded:
        """`/patrol [CODE] [location] [note]`: the grid is the code's, else the chat's, else
        the actor's only grid. The location is the first word (or what comes before `;` or a
        line break); a building or estate code is its own location."""
        if not self.access.can_somewhere(actor, Action.PATROL):
            raise Refused("patrol.not_allowed")
        text = args.strip()
        first, _, rest = text.partition(" ")
        unit = await self.store.map.get(first) if first else None
        location: str | None = None
        if unit is not None and unit.kind in ("grid", "estate", "building"):
            text = rest.strip()
            if unit.kind != "grid":
                location = unit.name
        else:
            unit = None
        grid = await self._grid(actor, chat_id, unit)
        if not await self.access.can(actor, Action.PATROL, grid.code):
            raise Refused("patrol.not_allowed_here", code=grid.code)
        note: str | None
        if location is not None:
            note = text or None
        elif _SEPARATOR.search(text):
            head, tail = _SEPARATOR.split(text, maxsplit=1)
            location, note = head.strip() or None, tail.strip() or None
        else:
            head, _, tail = text.partition(" ")
            location, note = head.strip() or None, tail.strip() or None
        if location is not None and len(location) > MAX_LOCATION:
            raise Refused("patrol.too_long")
        if note is not None and len(note) > MAX_NOTE:
            raise Refused("patrol.too_long")
        async with self.store.transaction():
            patrol_id = await self.store.schedules.add_patrol(
                grid.code, actor.user_id, now.timestamp(), location, note, source_update_id)
        patrol = await self.store.schedules.patrol(patrol_id)
        assert patrol is not None
        month = periods.month(periods.month_key(now.astimezone(self.settings.tz)),
                              self.settings.tz)
        count = len(await self.store.schedules.patrols([grid.code], *month.span))
        return Recorded(patrol=patrol, grid=grid, this_month=count)

    async def _grid(self, actor: Actor, chat_id: int, unit: Unit | None) -> Unit:
        if unit is not None:
            return await self._grid_of(unit.code) or unit
        if chat_id < 0:
            for binding in await self.store.map.bindings_in_chat(chat_id):
                grid = await self._grid_of(binding.unit_code)
                if grid is not None and await self.access.can(actor, Action.PATROL, grid.code):
                    return grid
        grids: list[Unit] = []
        if actor.superadmin:
            grids = [u for u in await self.store.map.all() if u.kind == "grid"]
        for top in await self.access.scope_units(actor, Action.PATROL):
            grids += [g for g in await self.store.map.descendants(top.code, "grid")
                      if g not in grids]
        if len(grids) == 1:
            return grids[0]
        if not grids:
            raise Refused("patrol.no_grid")
        raise Refused("patrol.which_grid", grids=", ".join(g.code for g in grids[:20]))

    async def _grid_of(self, code: str) -> Unit | None:
        return next((u for u in await self.store.map.ancestors(code) if u.kind == "grid"), None)

    async def remind_due(self, now: datetime, crontab_only: bool = False) -> int:
        """Inside a transaction: remind each grid that owes a patrol in its current period,
        once per period and person (`crontab_only`: grids whose frequency is a crontab)."""
        now = now.astimezone(self.settings.tz)
        posts = 0
        for grid in [u for u in await self.store.map.all() if u.kind == "grid" and u.patrol]:
            if crontab_only and grid.patrol in NAMED_FREQUENCIES:
                continue
            period = periods.patrol_period(grid.patrol, now)
            if period is None:
                continue
            if await self.store.schedules.patrols([grid.code], *period.span):
                continue
            people = await self.store.people.holders(("grid_worker",), [grid.code]) or \
                await self.store.people.holders(("grid_leader",), [grid.code])
            for user_id in sorted({g.user_id for g in people}):
                if not await self.store.schedules.claim_post(JOB, f"{grid.code}:{period.key}",
                                                             user_id):
                    continue
                locale = await self.people.locale_for(user_id)
                await self.outbox.send(
                    user_id, t(locale, "patrol.reminder", grid=grid.name, code=grid.code,
                               frequency=frequency_text(locale, grid.patrol)),
                    priority=Priority.PERSONAL)
                posts += 1
        return posts


def frequency_text(locale: str, frequency: str | None) -> str:
    if frequency in FREQUENCY:
        return t(locale, FREQUENCY[frequency])
    return t(locale, "patrol.freq_cron", cron=frequency or "")
