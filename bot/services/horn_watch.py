"""The horn watcher's work (SPEC §5): fill-by widening and emergency re-sounding.

`bot/watcher.py`'s DueWatcher calls `run_due` when the store says something is due. Each step
is marked done (`widened`, the next `resound_at`) in the transaction that queues its posts, so
a restart neither drops nor repeats one; a horn whose due time passed several periods while
the bot was down sounds once, not once per missed period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.i18n import t
from bot.services import horn_views as views
from bot.services.backups import deliver_to, for_line
from bot.services.base import Service
from bot.services.horn_base import HornPart, action_for
from bot.services.horn_codes import note_ref
from bot.services.horn_copies import HornCopies
from bot.services.horn_taps import HornTaps
from bot.services.outbox import Priority
from bot.services.scopes import outermost
from storage.models import Horn, HornLevel

logger = logging.getLogger(__name__)

WIDEN_TO = {"building": "grid", "estate": "grid", "grid": "community"}


class HornWatch(HornPart):
    def __init__(self, service: Service, wake: Callable[[], None], copies: HornCopies,
                 taps: HornTaps) -> None:
        super().__init__(service, wake)
        self.copies = copies
        self.taps = taps

    async def run_due(self) -> int:
        """Widen horns past their fill-by time and re-sound emergencies; returns how many
        acted. One horn's failure does not hold back the others."""
        acted = 0
        for horn in await self.store.horns.due(self.clock()):
            try:
                acted += await self._due(horn.id)
            except Exception:
                logger.exception("horn #%s: timed work failed", horn.id)
        return acted

    async def next_due(self) -> float | None:
        return await self.store.horns.next_due()

    async def recover(self) -> None:
        """At start: edit the copies whose counter a crash left behind the check-ins."""
        for horn_id in await self.store.horns.dirty():
            await self.taps.refresh_counters(horn_id)

    async def _due(self, horn_id: int) -> int:
        now = self.clock()
        acted = 0
        async with self.store.transaction():
            horn = await self.store.horns.get(horn_id)
            if horn is None or not horn.active:
                return 0
            if horn.fill_by is not None and not horn.widened and horn.fill_by <= now:
                await self._fill_by(horn)
                horn = await self.horn(horn_id)
                acted += 1
            if horn.resound_at is not None and horn.resound_at <= now:
                await self._resound(horn, now)
                acted += 1
        return acted

    async def _resound(self, horn: Horn, now: float) -> None:
        """A new pinned post in every chat while the quota is not met; once per period."""
        count, _ = await self.store.horns.counts(horn.id)
        round_ = horn.resounds
        if count < horn.needed:
            round_ += 1
            await self.copies.post_to(horn, horn.scope, round_=round_)
        await self.store.horns.update(horn.id, resound_at=now + self.resound_period(),
                                      resounds=round_)

    async def _fill_by(self, horn: Horn) -> None:
        """Quota not met by the fill-by time: widen one map level within the owner's
        authority, post to the new chats, call the new volunteers, tell the owner."""
        await self.store.horns.update(horn.id, widened=1)
        count, _ = await self.store.horns.counts(horn.id)
        if count >= horn.needed:
            return
        wider = await self._wider(horn)
        if not wider:
            await self._tell_owner(horn, "horn.widen_failed", id=horn.id, count=count,
                                   needed=horn.needed)
            return
        scope = await outermost(self.store, list(horn.scope) + wider)
        await self.store.horns.update(horn.id, scope=scope)
        horn = await self.horn(horn.id)
        await self.copies.edit_copies(horn, await self.store.horns.copies(horn.id))
        await self.copies.post_to(horn, wider)
        if horn.level != HornLevel.SERVICE:
            await self.copies.call_volunteers(horn, wider)
        await self._tell_owner(horn, "horn.widened", id=horn.id, count=count,
                               needed=horn.needed,
                               scope=views.scope_label(await self.units(wider)))

    async def _tell_owner(self, horn: Horn, key: str, **values: object) -> None:
        """A notice to the horn's owner, or while they are away (AB岗) to who stands in,
        marked for them."""
        for delivery in await deliver_to(self.store, horn.owner_id, self.clock()):
            locale = await self.people.locale_for(delivery.recipient)
            await self.outbox.send(
                delivery.recipient, for_line(locale, delivery.on_behalf_of) + t(locale, key,
                                                                                 **values),
                priority=Priority.PERSONAL, ref=note_ref(horn.id))

    async def _wider(self, horn: Horn) -> list[str]:
        """The units one map level above the horn's scope that its owner may sound at."""
        owner = await self.access.actor(horn.owner_id)
        wider: list[str] = []
        for code in horn.scope:
            unit = await self.store.map.get(code)
            target = WIDEN_TO.get(unit.kind) if unit is not None else None
            parent = next((u for u in await self.store.map.ancestors(code)
                           if u.kind == target), None) if target else None
            if parent is not None and parent.code not in wider and \
                    await self.access.can(owner, action_for(horn.level), parent.code):
                wider.append(parent.code)
        return wider
