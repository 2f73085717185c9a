"""Member units answering a horn (响应吹号, SPEC §10).

A horn may call member units of the communities its scope lies in (`+M01` in the short form).
Each called unit gets the horn in its bound chat, else privately to its contacts; every copy
of such a horn carries "🏢 Unit check in", with which a contact pledges a number of people
(at most what is still needed, their own pledge counted back). Pledged people count toward
the quota (`HornRepo.counts`), and every copy's counter reads `报到 12/20 · 单位 2`. At the
close the owner confirms each unit's number; the confirmation credits the unit's people-hours
(`UnitRepo.credit_units`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.i18n import t
from bot.services import horn_codes as codes
from bot.services import horn_views as views
from bot.services.access import Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.horn_base import PRIORITY, HornPart
from bot.services.outbox import Priority
from bot.services.ticket_views import button
from storage.models import CopyKind, Horn, HornUnit, Unit
from storage.store import Store

#: the numbers a contact may pledge with one tap (those above what is still needed hidden)
PLEDGES = (1, 2, 3, 5, 10)
PLEDGE_FLOW = "unit_pledge"   # a contact typing the number of people instead
MAX_PLEDGE = 10_000


@dataclass(frozen=True)
class Pledge:
    """What a contact may pledge on a horn: their unit, its pledge so far, and the most."""

    horn: Horn
    unit: Unit
    pledged: int
    most: int


async def communities_of(store: Store, scope: list[str] | tuple[str, ...]) -> set[str]:
    """The communities a horn's scope lies in (whose member units it may call)."""
    found: set[str] = set()
    for code in scope:
        found |= {u.code for u in await store.map.ancestors(code) if u.kind == "community"}
    return found


async def checked_units(store: Store, scope: list[str] | tuple[str, ...], wanted: list[str]
                        ) -> list[str]:
    """The member units a horn over `scope` may call: of the communities it lies in."""
    allowed = await communities_of(store, scope)
    found: list[str] = []
    for code in wanted:
        unit = await store.map.get(code) or await store.map.get(code.upper())
        if unit is None:
            raise Refused("map.unknown_code", code=code[:30])
        if unit.kind != "member":
            raise Refused("unit.not_member", code=unit.code)
        if unit.parent_code not in allowed:
            raise Refused("unit.horn_outside", code=unit.code)
        if unit.code not in found:
            found.append(unit.code)
    return found


async def units_in_reach(store: Store, scope: list[str] | tuple[str, ...]) -> list[Unit]:
    """The member units a horn over `scope` may call (the flow's picker)."""
    return await store.map.members(sorted(await communities_of(store, scope)))


class HornUnits(HornPart):
    def __init__(self, service: Service, wake: Callable[[], None],
                 move_up: Callable[[Horn], Awaitable[None]]) -> None:
        """`move_up`: the taps' filling of free places from the waiting list."""
        super().__init__(service, wake)
        self.move_up = move_up

    async def record(self, horn_id: int, unit_codes: list[str]) -> None:
        """Inside Publish's transaction, before any copy: the units the horn calls."""
        if unit_codes:
            await self.store.units.call_units(horn_id, unit_codes)
            await self.store.horns.update(horn_id, units_called=len(unit_codes))

    async def call(self, horn: Horn, unit_codes: list[str]) -> int:
        """Inside Publish's transaction: record the called units and send each the horn (its
        bound, active chat, else each contact privately). The number of copies queued."""
        if not unit_codes:
            return 0
        units = await self.units(horn.scope)
        count, waiting = await self.store.horns.counts(horn.id)
        sent = 0
        for code in unit_codes:
            binding = await self.store.map.binding(code)
            chat = await self.store.map.chat(binding.chat_id) if binding else None
            if binding is not None and (chat is None or chat.active):
                locale = await self.people.locale_in(binding.chat_id)
                queued = await self.outbox.send(
                    binding.chat_id, views.post_text(locale, horn, units, count, waiting,
                                                     self.settings.tz),
                    priority=PRIORITY[horn.level], buttons=views.post_buttons(locale, horn),
                    thread_id=binding.thread_id,
                    dedupe_key=codes.unit_call_key(horn.id, binding.chat_id),
                    ref=codes.copy_ref(horn.id, CopyKind.GROUP))
                sent += queued is not None
                continue
            for person in await self.store.people.with_role("unit_contact", [code], None,
                                                            reachable_only=True):
                # the unit's copy, as its chat would have it (kept so by every edit)
                locale = self.people.locale_of(person)
                queued = await self.outbox.send(
                    person.user_id, views.post_text(locale, horn, units, count, waiting,
                                                    self.settings.tz),
                    priority=PRIORITY[horn.level], buttons=views.post_buttons(locale, horn),
                    dedupe_key=codes.unit_call_key(horn.id, person.user_id),
                    ref=codes.copy_ref(horn.id, CopyKind.GROUP))
                sent += queued is not None
        return sent

    async def _contacts_unit(self, actor: Actor, horn: Horn) -> HornUnit:
        """The called unit this actor is a contact of (one member unit per person)."""
        called = {u.unit_code: u for u in await self.store.units.horn_units(horn.id)}
        for grant in actor.grants:
            if grant.role == "unit_contact" and grant.unit_code in called:
                return called[grant.unit_code]
        raise Refused("unit.horn_not_contact", id=horn.id)

    async def pledge_options(self, actor: Actor, horn_id: int) -> Pledge:
        horn = await self.active_horn(horn_id)
        called = await self._contacts_unit(actor, horn)
        unit = await self.store.map.get(called.unit_code)
        assert unit is not None
        count, _ = await self.store.horns.counts(horn_id)
        return Pledge(horn=horn, unit=unit, pledged=called.pledged,
                      most=max(0, horn.needed - count) + called.pledged)

    async def pledge(self, actor: Actor, horn_id: int, people: int, *,
                     prompt: tuple[int, int] | None = None) -> Pledge:
        """A contact's pledge of `people` for their unit (a new number replaces the old);
        more than is still needed is refused. A smaller pledge moves the waiting up.
        `prompt` (chat, message): the numbers' message, edited to the pledge through the
        outbox (three hundred contacts pressing at once must not cross the flood limits)."""
        async with self.store.transaction():
            options = await self.pledge_options(actor, horn_id)
            if people < 1:
                raise Refused("button.stale")
            if people > options.most:
                raise Refused("unit.horn_too_many", most=options.most)
            pledged = await self.store.units.pledge(horn_id, options.unit.code, people,
                                                    actor.user_id, self.clock())
            flow = await self.store.flows.get(actor.user_id)
            if flow is not None and flow.name == PLEDGE_FLOW:
                await self.store.flows.clear(actor.user_id)
            await self.store.horns.update(horn_id, units_pledged=pledged, dirty=1)
            if people < options.pledged:
                await self.move_up(options.horn)
            if prompt is not None:
                locale = await self.people.locale_for(actor.user_id)
                await self.outbox.edit(*prompt, t(
                    locale, "unit.horn_pledged", people=people, id=horn_id,
                    unit=f"{options.unit.name} ({options.unit.code})"),
                    priority=Priority.PERSONAL, ref=codes.note_ref(horn_id))
        return Pledge(horn=options.horn, unit=options.unit, pledged=people, most=options.most)

    async def send_prompt(self, actor: Actor, horn_id: int) -> Pledge:
        """"Unit check in": the numbers, sent privately to the contact (wherever they
        pressed); refused when nobody more is needed."""
        options = await self.pledge_options(actor, horn_id)
        if options.most <= 0:
            raise Refused("unit.horn_pledge_full", id=horn_id)
        locale = await self.people.locale_for(actor.user_id)
        view = pledge_prompt(locale, options)
        async with self.store.transaction():
            await self.outbox.send(actor.user_id, view.text, priority=Priority.PERSONAL,
                                   buttons=view.buttons, ref=codes.note_ref(horn_id))
            # or a typed number: the contact's next private text (a small flow)
            await self.store.flows.set(actor.user_id, PLEDGE_FLOW, "people", {"horn": horn_id})
        return options

    async def typed_pledge(self, actor: Actor, text: str) -> Pledge:
        """The number a contact typed after "Unit check in" (1 to what is still needed)."""
        flow = await self.store.flows.get(actor.user_id)
        if flow is None or flow.name != PLEDGE_FLOW:
            raise Refused("button.stale")
        text = text.strip()
        if not text.isdecimal() or not 1 <= int(text) <= MAX_PLEDGE:
            raise Refused("unit.horn_bad_number", text=text[:20])
        return await self.pledge(actor, int(flow.data["horn"]), int(text))

    async def adjust(self, actor: Actor, horn: Horn, unit_code: str, delta: int) -> None:
        """At the close (before Confirm), the owner's number for a unit: one fewer or one
        more, from none to what it pledged."""
        async with self.store.transaction():
            called = await self.store.units.horn_unit(horn.id, unit_code)
            if called is None:
                raise Refused("button.stale")
            current = called.confirmed if called.confirmed is not None else called.pledged
            wanted = min(max(current + delta, 0), called.pledged)
            await self.store.units.confirm_unit(horn.id, unit_code, wanted)


def pledge_prompt(locale: str, options: Pledge) -> views.View:
    """The numbers a contact may pledge (at most what is still needed)."""
    text = t(locale, "unit.horn_pledge_prompt", id=options.horn.id, title=options.horn.title,
             unit=f"{options.unit.name} ({options.unit.code})", most=options.most,
             pledged=options.pledged)
    row = [button(str(n), codes.unit_data(codes.UnitPress.PEOPLE, options.horn.id, n))
           for n in PLEDGES if n <= options.most]
    return views.View(text, [row] if row else [])

