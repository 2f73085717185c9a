"""Closing a horn and confirming who came (SPEC §5): the owner's alone, superadmins excepted.

Closing posts a summary in reply to the horn in each chat, edits every copy to "closed",
unpins an emergency and sends the owner the attendance list (everyone checked in marked
present). The owner unmarks who did not come, may type the hours, and confirms: the hours and
points go once to each person present (the store's confirmed_at decides "once").
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bot import logcontext
from bot.i18n import t
from bot.services import horn_codes as codes
from bot.services import horn_views as views
from bot.services.access import Actor
from bot.services.backups import deliver_to, for_line
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.horn_base import HOURS_FLOW, HornPart
from bot.services.horn_copies import HornCopies
from bot.services.horn_parse import parse_hours
from bot.services.outbox import Priority
from storage.models import CheckInState, CopyKind, Horn, HornLevel, HornStatus, Person

POINTS_PER_HOUR = 10          # time bank (爱心银行): points credited per confirmed hour
SHORT_FORM_HOURS = 2.0        # default hours of a horn sounded with the short form
HOURS_STEP = "hours"


def default_hours(horn: Horn) -> float:
    """The horn's duration, to the nearest quarter hour (halves up; at least a quarter), or
    2 h for a short-form horn."""
    if horn.short_form or horn.starts_at is None or horn.ends_at is None:
        return SHORT_FORM_HOURS
    return max(0.25, math.floor((horn.ends_at - horn.starts_at) / 900 + 0.5) / 4)


def may_close(actor: Actor, horn: Horn) -> bool:
    """The owner closes their horn; superadmins may close any."""
    return actor.superadmin or actor.user_id == horn.owner_id


class HornClosing(HornPart):
    def __init__(self, service: Service, wake: Callable[[], None], copies: HornCopies) -> None:
        super().__init__(service, wake)
        self.copies = copies

    async def ask_close(self, actor: Actor, horn_id: int) -> Horn:
        """The Close button asks first (a tap is easily made); the same checks as closing."""
        horn = await self.active_horn(horn_id)
        if not await self._may_close(actor, horn):
            raise Refused("horn.close_not_allowed", id=horn_id)
        return horn

    async def close(self, actor: Actor, horn_id: int) -> Horn:
        """End the horn: summary to its chats, the attendance list to the owner."""
        logcontext.tag(horn_id=horn_id)
        horn = await self.horn(horn_id)
        if not await self._may_close(actor, horn):
            raise Refused("horn.close_not_allowed", id=horn_id)
        async with self.store.transaction():
            if not await self.store.horns.update(
                    horn_id, expect_status=HornStatus.ACTIVE, status=HornStatus.CLOSED,
                    closed_at=self.clock(), closed_by=actor.user_id, resound_at=None, dirty=0,
                    hours=default_hours(horn)):
                raise Refused("horn.closed", id=horn_id)
            await self.store.horns.mark_present(horn_id)
            # posts still waiting (quiet hours, a long broadcast) are not sent after the end:
            # those chats never saw the horn, so they get no summary either
            await self.store.outbox.drop_pending_refs(codes.copies_on_their_way(horn_id),
                                                      "horn closed")
            horn = await self.horn(horn_id)
            copies = await self.store.horns.copies(horn_id)
            await self.copies.edit_copies(horn, copies)
            if horn.level == HornLevel.EMERGENCY:
                await self.copies.unpin(horn, copies)
            replied: set[int] = set()
            for copy in reversed(copies):  # the newest copy in each chat
                if copy.kind != CopyKind.GROUP or copy.chat_id in replied:
                    continue
                replied.add(copy.chat_id)
                await self.copies.summary(horn, copy)
            # the owner away (AB岗): the attendance list goes to who stands in, marked
            for delivery in await deliver_to(self.store, horn.owner_id, self.clock()):
                locale = await self.people.locale_for(delivery.recipient)
                view = await self._attendance_view(locale, horn)
                await self.outbox.send(
                    delivery.recipient, for_line(locale, delivery.on_behalf_of) + view.text,
                    priority=Priority.PERSONAL, buttons=view.buttons,
                    dedupe_key=codes.attendance_key(
                        horn.id, delivery.recipient if delivery.on_behalf_of else None),
                    ref=codes.note_ref(horn.id))
        self.wake()
        return horn

    async def attendance(self, actor: Actor, locale: str, horn_id: int) -> views.View:
        horn = await self.owned_closed(actor, horn_id)
        return await self._attendance_view(locale, horn)

    async def toggle_present(self, actor: Actor, locale: str, horn_id: int,
                             person_id: int) -> views.View:
        """A tap on a name: present ↔ not present (until Confirm)."""
        horn = await self.owned_closed(actor, horn_id, unconfirmed=True)
        async with self.store.transaction():
            if not await self.store.horns.toggle_present(horn_id, person_id):
                raise Refused("button.stale")
        return await self._attendance_view(locale, horn)

    async def ask_hours(self, actor: Actor, horn_id: int) -> Horn:
        """The owner will type the hours: remembered as a small flow."""
        horn = await self.owned_closed(actor, horn_id, unconfirmed=True)
        await self.save_flow(actor.user_id, HOURS_FLOW, HOURS_STEP, {"horn": horn_id})
        return horn

    async def set_hours(self, actor: Actor, text: str) -> Horn:
        """The typed hours; a horn confirmed meanwhile ends the prompt (the text is not
        kept waiting for it)."""
        flow = await self.store.flows.get(actor.user_id)
        if flow is None or flow.name != HOURS_FLOW:
            raise Refused("button.stale")
        try:
            horn = await self.owned_closed(actor, int(flow.data["horn"]), unconfirmed=True)
        except Refused:
            async with self.store.transaction():
                await self.store.flows.clear(actor.user_id)
            raise
        hours = parse_hours(text)
        async with self.store.transaction():
            await self.store.horns.update(horn.id, hours=hours)
            await self.store.flows.clear(actor.user_id)
        return await self.horn(horn.id)

    async def confirm(self, actor: Actor, locale: str, horn_id: int) -> views.View:
        """Credit hours and points to each person present, once (the store decides)."""
        horn = await self.owned_closed(actor, horn_id)
        hours = horn.hours if horn.hours is not None else default_hours(horn)
        points = round(hours * POINTS_PER_HOUR)
        async with self.store.transaction():
            if not await self.store.horns.confirm(horn_id, actor.user_id, hours):
                raise Refused("horn.already_confirmed", id=horn_id)
            flow = await self.store.flows.get(actor.user_id)
            if flow is not None and flow.name == HOURS_FLOW and flow.data.get("horn") == horn_id:
                await self.store.flows.clear(actor.user_id)   # no more hours to type
            await self.store.units.credit_units(horn_id, hours)  # member units (SPEC §10)
            for person_id in await self.store.horns.credit(horn_id, hours, points):
                await self.store.people.add_hours(person_id, hours, points)
                # the time bank's ledger (SPEC §13): the points to spend at partner shops
                await self.store.shop.credit(person_id, points, self.clock(), horn_id)
                person_locale = await self.people.locale_for(person_id)
                await self.outbox.send(
                    person_id, t(person_locale, "horn.credited", id=horn.id, title=horn.title,
                                 hours=views.hours_text(hours),
                                 points=views.points_text(person_locale, points)),
                    priority=Priority.PERSONAL, ref=codes.note_ref(horn.id))
        return await self._attendance_view(locale, await self.horn(horn_id))

    async def _attendance_view(self, locale: str, horn: Horn) -> views.View:
        rows = await self.store.horns.checkins(horn.id, (CheckInState.IN,))
        people = {p.user_id: p for p in await self.store.people.many(r.person_id for r in rows)}
        named = [(r.person_id, _name(locale, people.get(r.person_id), r.person_id), r.present)
                 for r in rows]
        units = []  # member units that pledged people (SPEC §10)
        if horn.units_called:
            for called in await self.store.units.horn_units(horn.id):
                unit = await self.store.map.get(called.unit_code)
                if unit is not None and called.pledged > 0:
                    units.append((unit, called.confirmed if called.confirmed is not None
                                  else called.pledged, called.pledged))
        return views.attendance(locale, horn, named, POINTS_PER_HOUR, units)

    async def _may_close(self, actor: Actor, horn: Horn) -> bool:
        """The owner, a superadmin, or who stands in for the owner while away (AB岗)."""
        if may_close(actor, horn):
            return True
        return any(d.recipient == actor.user_id and d.on_behalf_of is not None
                   for d in await deliver_to(self.store, horn.owner_id, self.clock()))

    async def owned_closed(self, actor: Actor, horn_id: int,
                            unconfirmed: bool = False) -> Horn:
        horn = await self.horn(horn_id)
        if not await self._may_close(actor, horn):
            raise Refused("horn.not_owner", id=horn_id)
        if horn.active:
            raise Refused("horn.still_active", id=horn_id)
        if unconfirmed and horn.confirmed_at is not None:
            raise Refused("horn.already_confirmed", id=horn_id)
        return horn


def _name(locale: str, person: Person | None, person_id: int) -> str:
    """Who checked in, on the attendance list (an erased person: "erased", SPEC §14)."""
    if person is None:
        return str(person_id)
    return t(locale, "privacy.erased") if person.erased else person.display_name
