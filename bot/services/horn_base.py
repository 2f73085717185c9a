"""What the horn's parts share: the steps of the guided flow, the level's priority and right,
and a base class with the look-ups every part makes.

The horn service (`bot/services/horns.py`) is composed of parts, one per seam: the guided flow,
publishing and copies, taps, closing, the watcher's work. Each stands on the same store, rights,
people, outbox, settings and clock as the service, and wakes the horn watcher through it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from bot.services.access import Action
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from storage.models import Flow, Horn, HornLevel, Unit

FLOW = "horn"               # /horn's guided flow (store.flows name)
HOURS_FLOW = "horn_hours"   # the owner typing the hours served


class Step(StrEnum):
    """The steps of /horn's guided flow, in order."""

    LEVEL = "level"
    SCOPE = "scope"
    TITLE = "title"
    DETAILS = "details"
    PLACE = "place"
    START = "start"
    END = "end"
    NEEDED = "needed"
    FILL_BY = "fill_by"
    SKILLS = "skills"
    PREVIEW = "preview"

    def next(self) -> Step:
        steps = list(Step)
        return steps[steps.index(self) + 1]


PRIORITY: dict[HornLevel, int] = {HornLevel.SERVICE: Priority.SERVICE,
                                  HornLevel.MAJOR: Priority.MAJOR,
                                  HornLevel.EMERGENCY: Priority.EMERGENCY}


def action_for(level: HornLevel) -> Action:
    """The right a level needs: building heads may sound `service` horns only."""
    return Action.HORN_SERVICE if level == HornLevel.SERVICE else Action.HORN_ANY


class HornPart(Service):
    """A part of the horn service: the service's collaborators, and a way to wake the
    watcher when a horn's due times change."""

    def __init__(self, service: Service, wake: Callable[[], None]) -> None:
        super().__init__(service.store, service.access, service.people, service.outbox,
                         service.settings, service.clock)
        self.wake = wake

    def resound_period(self) -> float:
        return self.settings.horn_resound_min * 60

    async def horn(self, horn_id: int) -> Horn:
        horn = await self.store.horns.get(horn_id)
        if horn is None:
            raise Refused("horn.unknown", id=horn_id)
        return horn

    async def active_horn(self, horn_id: int) -> Horn:
        """The horn, still open; inside a transaction its row is held until the commit (the
        seats it counts are not raced by a tap handled at the same time elsewhere)."""
        if self.store.db.in_transaction:
            await self.store.horns.lock(horn_id)
        horn = await self.horn(horn_id)
        if not horn.active:
            raise Refused("horn.closed", id=horn_id)
        return horn

    async def units(self, codes: list[str] | tuple[str, ...]) -> list[Unit]:
        """The units of `codes` that are (still) on the map, in that order."""
        units = []
        for code in codes:
            unit = await self.store.map.get(code)
            if unit is not None:
                units.append(unit)
        return units

    async def save_flow(self, user_id: int, name: str, step: str, data: dict[str, Any]) -> Flow:
        async with self.store.transaction():
            await self.store.flows.set(user_id, name, step, data)
        return Flow(user_id=user_id, name=name, step=step, data=data)
