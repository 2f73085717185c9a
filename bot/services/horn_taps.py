"""Taps on a horn (报到): Check in and Can't come, the waiting list, and the live counter.

A tap is recorded once: the store's UNIQUE (horn, person) constraint decides, so two taps
racing each other record one. Past the quota a tap joins the waiting list; a withdrawal moves
the first waiting person up, who is told privately. A tap only marks the horn's counter
changed (`dirty`); the copies are edited after the tap is answered, coalesced, and a crash
between the two is repaired at start (`HornWatch.recover`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot import logcontext
from bot.i18n import CatalogKey, t
from bot.services import horn_views as views
from bot.services.base import Service
from bot.services.horn_base import HornPart
from bot.services.horn_codes import note_ref
from bot.services.horn_copies import HornCopies
from bot.services.outbox import Priority
from storage.models import CheckInState, Horn

GAVE_UP = (CheckInState.WITHDRAWN, CheckInState.DECLINED)


@dataclass(frozen=True)
class Tap:
    """The answer to a tap: a catalog key and its values; `changed`: the counter moved."""

    key: CatalogKey
    values: dict[str, Any] = field(default_factory=dict)
    changed: bool = True


#: seconds between two rounds of a horn's counter edits while taps keep coming
ROUND_GAP_S = 0.25


class HornTaps(HornPart):
    def __init__(self, service: Service, wake: Callable[[], None], copies: HornCopies) -> None:
        super().__init__(service, wake)
        self.copies = copies
        self._refreshing: dict[int, list[bool]] = {}
        self._next_round: dict[int, float] = {}  # loop time a horn's next round may begin

    async def check_in(self, user_id: int, horn_id: int) -> Tap:
        """报到: the first tap counts; past the quota it joins the waiting list."""
        logcontext.tag(horn_id=horn_id)
        async with self.store.transaction():
            horn = await self.active_horn(horn_id)
            await self.store.people.ensure(user_id)
            current = await self.store.horns.checkin(horn_id, user_id)
            if current is not None and current.state == CheckInState.IN:
                return Tap("horn.already_in", {"id": horn_id}, changed=False)
            if current is not None and current.state == CheckInState.WAITING:
                position = await self.store.horns.waiting_position(horn_id, user_id)
                return Tap("horn.already_waiting", {"id": horn_id, "position": position},
                           changed=False)
            count, _ = await self.store.horns.counts(horn_id)
            state = CheckInState.IN if count < horn.needed else CheckInState.WAITING
            if current is None:
                if not await self.store.horns.add_checkin(horn_id, user_id, state):
                    return Tap("horn.already_in", {"id": horn_id}, changed=False)
            else:  # came back after "Can't come": to the end of the line
                await self.store.horns.set_state(horn_id, user_id, state, expect=GAVE_UP,
                                                 requeue=True)
            await self.store.horns.update(horn_id, dirty=1)
            if state == CheckInState.IN:
                return Tap("horn.checked_in", {"id": horn_id})
            position = await self.store.horns.waiting_position(horn_id, user_id)
            return Tap("horn.waiting", {"id": horn_id, "position": position})

    async def cant_come(self, user_id: int, horn_id: int) -> Tap:
        """"Can't come": withdraws a check-in (the first waiting moves up and is told)."""
        logcontext.tag(horn_id=horn_id)
        async with self.store.transaction():
            horn = await self.active_horn(horn_id)
            await self.store.people.ensure(user_id)
            current = await self.store.horns.checkin(horn_id, user_id)
            if current is None:
                await self.store.horns.add_checkin(horn_id, user_id, CheckInState.DECLINED)
                return Tap("horn.declined", {"id": horn_id}, changed=False)
            if current.state in GAVE_UP:
                return Tap("horn.already_declined", {"id": horn_id}, changed=False)
            await self.store.horns.set_state(horn_id, user_id, CheckInState.WITHDRAWN,
                                             expect=(current.state,))
            if current.state == CheckInState.IN:
                await self._move_up(horn)
            await self.store.horns.update(horn_id, dirty=1)
            return Tap("horn.withdrawn" if current.state == CheckInState.IN
                       else "horn.left_waiting", {"id": horn_id})

    async def move_up(self, horn: Horn) -> None:
        """A member unit's smaller pledge freed places (SPEC §10): fill them."""
        await self._move_up(horn)

    async def _move_up(self, horn: Horn) -> None:
        """Fill free places from the waiting list, first come first served, telling each."""
        count, _ = await self.store.horns.counts(horn.id)
        while count < horn.needed:
            first = await self.store.horns.first_waiting(horn.id)
            if first is None:
                return
            await self.store.horns.set_state(horn.id, first.person_id, CheckInState.IN,
                                             expect=(CheckInState.WAITING,))
            count += 1
            locale = await self.people.locale_for(first.person_id)
            await self.outbox.send(first.person_id,
                                   t(locale, "horn.moved_up", id=horn.id, title=horn.title),
                                   priority=Priority.PERSONAL,
                                   buttons=views.post_buttons(locale, horn),
                                   ref=note_ref(horn.id))

    async def refresh_counters(self, horn_id: int) -> None:
        """Edit every copy to the current counter, if a tap changed it. Taps arriving while a
        refresh runs make it go round once more instead of starting another (coalesced)."""
        running = self._refreshing.get(horn_id)
        if running is not None:
            running[0] = True
            return
        again = self._refreshing[horn_id] = [True]
        loop = asyncio.get_running_loop()
        try:
            while again[0]:
                again[0] = False
                began = loop.time()
                if began < self._next_round.get(horn_id, 0.0):
                    # a round edits every copy: under a storm of taps, one per ROUND_GAP_S
                    # leaves the loop to the taps (a group takes 20 edits a minute anyway)
                    await asyncio.sleep(self._next_round[horn_id] - began)
                self._next_round[horn_id] = loop.time() + ROUND_GAP_S
                async with self.store.transaction():
                    horn = await self.store.horns.get(horn_id)
                    if horn is None or not await self.store.horns.update(
                            horn_id, expect_dirty=True, dirty=0):
                        continue
                    await self.copies.edit_copies(horn, await self.store.horns.copies(horn_id))
        finally:
            del self._refreshing[horn_id]
