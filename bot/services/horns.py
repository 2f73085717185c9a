"""The assembly horn (集结号, SPEC §5): sound, answer, widen, re-sound, close, credit hours.

Staff sound a horn over part of the map through a guided flow (or the short form);
publishing posts it to every bound chat in scope and calls matching volunteers privately.
Taps are recorded once; every copy shows a live counter. The watcher (`bot/watcher.py`, a
DueWatcher) runs fill-by widening and emergency re-sounding from the store. The owner closes
the horn and confirms who came; the hours are credited once to each (爱心银行).

`HornService` is the one entry the handlers and the application use. It is composed of one
part per seam, each in its own module:

- `horn_flow.HornFlow`: the guided flow (what is typed is read by `horn_parse`);
- `horn_copies.HornCopies`: publishing, and every copy kept true as it goes out;
- `horn_taps.HornTaps`: check-ins, the waiting list and the live counter;
- `horn_closing.HornClosing`: closing, attendance and hours;
- `horn_watch.HornWatch`: the watcher's work;
- `horn_units.HornUnits`: member units called, their pledges and people-hours (SPEC §10).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.hooks import SentHook, Wakeup
from bot.services import horn_views as views
from bot.services.access import Access, Actor
from bot.services.base import Service
from bot.services.horn_closing import HornClosing, may_close
from bot.services.horn_codes import COPY_REF, EDIT_REF, NOTE_REF, FlowPress, about
from bot.services.horn_copies import HornCopies, Published
from bot.services.horn_flow import HornFlow
from bot.services.horn_taps import HornTaps, Tap
from bot.services.horn_units import HornUnits, Pledge
from bot.services.horn_watch import HornWatch
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.settings import Settings
from storage.models import CopyKind, Flow, Horn, HornLevel
from storage.store import Store

__all__ = ["HornService", "Published", "Tap"]


class HornService(Service):
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, clock: Callable[[], float] = time.time, *,
                 changed: Callable[[], None] | None = None) -> None:
        """`changed` wakes the horn watcher; the horn's refs are registered with the outbox
        here (only this service reads them)."""
        super().__init__(store, access, people, outbox, settings, clock)
        self.changed: Callable[[], None] = changed or Wakeup()  # wakes the horn watcher
        self.guide = HornFlow(self, self._wake)
        self.unit_calls = HornUnits(self, self._wake, self._move_up)  # member units (§10)
        self.copies = HornCopies(self, self._wake, self.guide, self.unit_calls)
        self.taps = HornTaps(self, self._wake, self.copies)
        self.closing = HornClosing(self, self._wake, self.copies)
        self.watch = HornWatch(self, self._wake, self.copies, self.taps)
        for prefix, hook in self.sent_hooks().items():
            outbox.on_sent(prefix, hook)
        for prefix in (COPY_REF, EDIT_REF, NOTE_REF):  # the sender's log lines name it (§15)
            outbox.on_about(prefix, about)

    def _wake(self) -> None:
        self.changed()

    async def _move_up(self, horn: Horn) -> None:
        await self.taps.move_up(horn)

    def sent_hooks(self) -> dict[str, SentHook]:
        """The outbox's hooks for the horn's refs, by prefix: every copy is recorded as it
        goes out, and what went out is compared with the horn's current text."""
        return self.copies.sent_hooks()

    # the guided flow

    async def flow(self, user_id: int) -> Flow | None:
        return await self.guide.flow(user_id)

    def levels_for(self, actor: Actor) -> tuple[HornLevel, ...]:
        return self.guide.levels_for(actor)

    async def start(self, actor: Actor) -> Flow:
        return await self.guide.start(actor)

    async def short_form(self, actor: Actor, text: str) -> Flow:
        return await self.guide.short_form(actor, text)

    async def answer(self, actor: Actor, text: str) -> Flow:
        return await self.guide.answer(actor, text)

    async def press(self, actor: Actor, action: FlowPress, arg: str) -> Flow | None:
        return await self.guide.press(actor, action, arg)

    async def prompt(self, actor: Actor, locale: str, flow: Flow) -> views.View:
        return await self.guide.prompt(actor, locale, flow)

    def refusal_example(self, flow: Flow) -> dict[str, str]:
        return self.guide.refusal_example(flow)

    # publishing and copies

    async def publish(self, actor: Actor) -> Published:
        return await self.copies.publish(actor)

    async def copy_sent(self, horn_id: int, kind: CopyKind, chat_id: int, message_id: int,
                        thread_id: int, sent_text: str) -> None:
        await self.copies.copy_sent(horn_id, kind, chat_id, message_id, thread_id, sent_text)

    async def edit_sent(self, horn_id: int, kind: CopyKind, chat_id: int, message_id: int,
                        sent_text: str) -> None:
        await self.copies.edit_sent(horn_id, kind, chat_id, message_id, sent_text)

    # taps

    async def check_in(self, user_id: int, horn_id: int) -> Tap:
        return await self.taps.check_in(user_id, horn_id)

    async def cant_come(self, user_id: int, horn_id: int) -> Tap:
        return await self.taps.cant_come(user_id, horn_id)

    async def refresh_counters(self, horn_id: int) -> None:
        await self.taps.refresh_counters(horn_id)

    # closing and attendance

    async def ask_close(self, actor: Actor, horn_id: int) -> Horn:
        return await self.closing.ask_close(actor, horn_id)

    async def close(self, actor: Actor, horn_id: int) -> Horn:
        return await self.closing.close(actor, horn_id)

    async def attendance(self, actor: Actor, locale: str, horn_id: int) -> views.View:
        return await self.closing.attendance(actor, locale, horn_id)

    async def toggle_present(self, actor: Actor, locale: str, horn_id: int,
                             person_id: int) -> views.View:
        return await self.closing.toggle_present(actor, locale, horn_id, person_id)

    async def ask_hours(self, actor: Actor, horn_id: int) -> Horn:
        return await self.closing.ask_hours(actor, horn_id)

    async def set_hours(self, actor: Actor, text: str) -> Horn:
        return await self.closing.set_hours(actor, text)

    async def confirm(self, actor: Actor, locale: str, horn_id: int) -> views.View:
        return await self.closing.confirm(actor, locale, horn_id)

    # member units (SPEC §10)
    async def pledge_options(self, actor: Actor, horn_id: int) -> Pledge:
        return await self.unit_calls.pledge_options(actor, horn_id)

    async def pledge_prompt(self, actor: Actor, horn_id: int) -> Pledge:
        return await self.unit_calls.send_prompt(actor, horn_id)

    async def typed_pledge(self, actor: Actor, text: str) -> Pledge:
        return await self.unit_calls.typed_pledge(actor, text)

    async def pledge(self, actor: Actor, horn_id: int, people: int, *,
                     prompt: tuple[int, int] | None = None) -> Pledge:
        return await self.unit_calls.pledge(actor, horn_id, people, prompt=prompt)

    async def adjust_unit(self, actor: Actor, locale: str, horn_id: int, unit_code: str,
                          delta: int) -> views.View:
        """At the close, the owner's number for a member unit (before Confirm)."""
        horn = await self.closing.owned_closed(actor, horn_id, unconfirmed=True)
        await self.unit_calls.adjust(actor, horn, unit_code, delta)
        return await self.closing.attendance(actor, locale, horn_id)

    # the watcher's work

    async def run_due(self) -> int:
        return await self.watch.run_due()

    async def next_due(self) -> float | None:
        return await self.watch.next_due()

    async def recover(self) -> None:
        await self.watch.recover()

    # lists

    async def get(self, horn_id: int) -> Horn:
        return await self.copies.horn(horn_id)

    async def active_for(self, actor: Actor) -> list[tuple[Horn, int, bool]]:
        """/horns: active horns the person has to do with (scope over or around them, or
        one they checked in to: a helper from outside the area sees where they are due),
        each with its count and whether this person may close it."""
        places = [g.unit_code for g in actor.grants] + \
            ([actor.building_code] if actor.building_code else [])
        above: dict[str, set[str]] = {p: set(await self.access.covering(p)) for p in places}
        found = []
        for horn in await self.store.horns.active():
            if not actor.superadmin and actor.user_id != horn.owner_id:
                related = False
                for code in horn.scope:
                    over = set(await self.access.covering(code))
                    if any(p in over or code in above[p] for p in places):
                        related = True
                        break
                if not related and await self.store.horns.checkin(horn.id,
                                                                  actor.user_id) is None:
                    continue
            count, _ = await self.store.horns.counts(horn.id)
            found.append((horn, count, may_close(actor, horn)))
        return found
