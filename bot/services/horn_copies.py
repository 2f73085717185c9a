"""Publishing a horn and keeping its copies true (SPEC §5).

Publishing creates the horn, posts it to every bound, active chat in scope (one post per chat:
the outbox's dedupe key decides) and calls up matching volunteers privately, in one
transaction with clearing the flow. Every copy is recorded as it goes out (the sender's
`hcopy:` hook) and edited when the horn's text changes; what went out is compared with the
current text (`hedit:`), so an edit overtaken while on its way is sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot import logcontext
from bot.hooks import SentHook
from bot.i18n import t
from bot.services import horn_codes as codes
from bot.services import horn_views as views
from bot.services.access import Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.horn_base import PRIORITY, HornPart, Step
from bot.services.horn_flow import HornFlow
from bot.services.horn_units import HornUnits, checked_units
from bot.services.outbox import Priority
from bot.services.volunteers import available
from storage.models import CopyKind, Horn, HornCopy, HornLevel, HornStatus, OutboxItem, Unit

logger = logging.getLogger(__name__)

PRIVATE_EDIT_LAG = 2          # private copies are edited after the group copies


@dataclass(frozen=True)
class Published:
    horn: Horn
    chats: int
    volunteers: int


class HornCopies(HornPart):
    def __init__(self, service: Service, wake: Callable[[], None], flow: HornFlow,
                 unit_calls: HornUnits) -> None:
        super().__init__(service, wake)
        self.flow = flow
        self.unit_calls = unit_calls  # member units called (SPEC §10)

    async def publish(self, actor: Actor) -> Published:
        """Create the horn, post it to every bound chat in scope and call volunteers: one
        transaction (with clearing the flow, so a second Publish finds nothing)."""
        async with self.store.transaction():
            flow = await self.flow.require(actor.user_id)
            if flow.step != Step.PREVIEW:
                raise Refused("button.stale")
            data = flow.data
            level = HornLevel(data["level"])
            # the rights may have changed since the scope was chosen
            scope = await self.flow.checked_scope(actor, level, data["scope"])
            grid, community = await self._home(scope)
            now = self.clock()
            horn_id = await self.store.horns.create(
                owner_id=actor.user_id, level=level, scope=scope, grid_code=grid,
                community_code=community, title=data["title"], details=data.get("details", ""),
                place=data.get("place", ""), starts_at=data.get("start"),
                ends_at=data.get("end"), needed=int(data["needed"]),
                fill_by=data.get("fill_by"), skills=data.get("skills") or [],
                short_form=bool(data.get("short")),
                resound_at=now + self.resound_period() if level == HornLevel.EMERGENCY
                else None)
            logcontext.tag(horn_id=horn_id)
            await self.store.flows.clear(actor.user_id)
            # member units called too (SPEC §10): recorded first, so every copy counts them
            wanted = await checked_units(self.store, scope, list(data.get("units") or []))
            await self.unit_calls.record(horn_id, wanted)
            horn = await self.horn(horn_id)
            chats = await self.post_to(horn, scope)
            called = await self.call_volunteers(horn, scope) \
                if level != HornLevel.SERVICE else 0
            chats += await self.unit_calls.call(horn, wanted)
        self.wake()
        logger.info("horn #%s (%s) published to %s chats and %s volunteers", horn.id, level,
                    chats, called)
        return Published(horn, chats, called)

    async def post_to(self, horn: Horn, scope: list[str] | tuple[str, ...],
                      round_: int = 0) -> int:
        """Post the horn to every bound, active chat under `scope`, once per chat and round
        (0: Publish; then each re-sound)."""
        units = await self.units(horn.scope)
        count, waiting = await self.store.horns.counts(horn.id)
        posted = 0
        texts: dict[str, str] = {}
        for chat_id, thread_id in await self._chats_in(scope):
            locale = await self.people.locale_in(chat_id)
            if locale not in texts:
                texts[locale] = views.post_text(locale, horn, units, count, waiting,
                                                self.settings.tz)
            queued = await self.outbox.send(
                chat_id, texts[locale], priority=PRIORITY[horn.level],
                buttons=views.post_buttons(locale, horn), thread_id=thread_id,
                quiet=horn.level == HornLevel.SERVICE, pin=horn.level == HornLevel.EMERGENCY,
                dedupe_key=codes.post_key(horn.id, chat_id, round_),
                ref=codes.copy_ref(horn.id, CopyKind.GROUP))
            posted += queued is not None
        return posted

    async def call_volunteers(self, horn: Horn, scope: list[str] | tuple[str, ...]) -> int:
        """点将: a private call-up to each volunteer in `scope` whose skills match and who said
        they can come at the horn's time (now, for a horn without one)."""
        below: list[Unit] = []
        for code in scope:
            below += await self.store.map.descendants(code)
        ids = [p.user_id for p in await self.store.people.with_role(
            "volunteer", [u.code for u in below],
            [u.code for u in below if u.kind == "building"], reachable_only=True)]
        start, end = (horn.starts_at, horn.ends_at) if horn.starts_at is not None \
            else (self.clock(), None)
        units = await self.units(horn.scope)
        count, waiting = await self.store.horns.counts(horn.id)
        called = 0
        for person in await self.store.people.many(ids):
            if person.user_id == horn.owner_id:
                continue
            if horn.skills and not set(horn.skills) & set(person.skills):
                continue
            if not available(person.availability, start, end, self.settings.tz):
                continue
            locale = self.people.locale_of(person)
            queued = await self.outbox.send(
                person.user_id, self.private_text(locale, horn, units, count, waiting),
                priority=PRIORITY[horn.level], buttons=views.post_buttons(locale, horn),
                dedupe_key=codes.call_key(horn.id, person.user_id),
                ref=codes.copy_ref(horn.id, CopyKind.PRIVATE))
            called += queued is not None
        return called

    def private_text(self, locale: str, horn: Horn, units: list[Unit], count: int,
                     waiting: int) -> str:
        return t(locale, "horn.call_up") + "\n\n" + views.post_text(
            locale, horn, units, count, waiting, self.settings.tz)

    def sent_hooks(self) -> dict[str, SentHook]:
        """What the sender calls when a horn's copy or edit went out, by its ref's prefix."""
        return {codes.COPY_REF: self._on_copy_sent, codes.EDIT_REF: self._on_edit_sent}

    async def _on_copy_sent(self, item: OutboxItem, result: Any) -> None:
        horn_id, kind = codes.read_ref(item.ref)
        await self.copy_sent(horn_id, kind, item.chat_id, result["message_id"],
                             int(item.payload.get("message_thread_id") or 0),
                             item.payload.get("text", ""))

    async def _on_edit_sent(self, item: OutboxItem, result: Any) -> None:
        horn_id, kind = codes.read_ref(item.ref)
        await self.edit_sent(horn_id, kind, item.chat_id, item.payload["message_id"],
                             item.payload.get("text", ""))

    async def copy_sent(self, horn_id: int, kind: CopyKind, chat_id: int, message_id: int,
                        thread_id: int, sent_text: str) -> None:
        """A copy went out: remember it; if the horn moved on while it waited, edit it. A
        post that was already on its way when the horn closed gets what the others got at
        the close: the summary, and no pin left behind (its pin is queued just before)."""
        await self.store.horns.add_copy(horn_id, chat_id, message_id, thread_id, kind)
        await self.edit_sent(horn_id, kind, chat_id, message_id, sent_text)
        horn = await self.store.horns.get(horn_id)
        if horn is not None and horn.status == HornStatus.CLOSED and kind == CopyKind.GROUP:
            copy = HornCopy(horn_id=horn_id, chat_id=chat_id, message_id=message_id,
                            thread_id=thread_id, kind=CopyKind.GROUP)
            await self.summary(horn, copy)
            if horn.level == HornLevel.EMERGENCY:
                await self.unpin(horn, [copy])

    async def edit_sent(self, horn_id: int, kind: CopyKind, chat_id: int, message_id: int,
                        sent_text: str) -> None:
        """A copy went out (or was edited) with `sent_text`; if that is no longer the horn's
        text, queue the current one. This also repairs an edit whose newer text was
        coalesced into it while it was already on its way."""
        horn = await self.store.horns.get(horn_id)
        if horn is None:
            return
        copy = HornCopy(horn_id=horn_id, chat_id=chat_id, message_id=message_id,
                        thread_id=0, kind=kind)
        await self.edit_copies(horn, [copy], skip_text=sent_text)

    async def edit_copies(self, horn: Horn, copies: list[HornCopy],
                          skip_text: str | None = None) -> None:
        """Queue an edit of each copy (group copies first, at a higher priority)."""
        if not copies:
            return
        units = await self.units(horn.scope)
        count, waiting = await self.store.horns.counts(horn.id)
        texts: dict[tuple[str, CopyKind], str] = {}
        locales: dict[int, str] = {}
        for copy in copies:
            if copy.chat_id not in locales:
                locales[copy.chat_id] = await self.people.locale_in(copy.chat_id)
            locale = locales[copy.chat_id]
            private = copy.kind == CopyKind.PRIVATE
            if (locale, copy.kind) not in texts:
                texts[(locale, copy.kind)] = \
                    self.private_text(locale, horn, units, count, waiting) if private else \
                    views.post_text(locale, horn, units, count, waiting, self.settings.tz)
            text = texts[(locale, copy.kind)]
            if text == skip_text:
                continue
            priority = PRIORITY[horn.level] + (PRIVATE_EDIT_LAG if private else 0)
            await self.outbox.edit(copy.chat_id, copy.message_id, text, priority=priority,
                                   buttons=views.post_buttons(locale, horn),
                                   ref=codes.edit_ref(horn.id, copy.kind))

    async def summary(self, horn: Horn, copy: HornCopy) -> None:
        """The closed horn's summary, in reply to its post in a chat (once per chat)."""
        count, _ = await self.store.horns.counts(horn.id)
        locale = await self.people.locale_in(copy.chat_id)
        await self.outbox.send(
            copy.chat_id, t(locale, "horn.summary", id=horn.id, title=horn.title,
                            count=count, needed=horn.needed),
            priority=PRIORITY[horn.level], thread_id=copy.thread_id,
            reply_to=copy.message_id, quiet=horn.level == HornLevel.SERVICE,
            dedupe_key=codes.summary_key(horn.id, copy.chat_id), ref=codes.note_ref(horn.id))

    async def unpin(self, horn: Horn, copies: list[HornCopy]) -> None:
        """A closed emergency no longer stays on top of the building chats. (Its pins were
        queued before this, at the same priority: each unpin follows its pin.)"""
        for copy in copies:
            if copy.kind != CopyKind.GROUP:
                continue
            chat = await self.store.map.chat(copy.chat_id)
            if chat is None or not chat.can_pin:
                continue  # it could not be pinned either
            await self.outbox.call(
                copy.chat_id, "unpinChatMessage", {"message_id": copy.message_id},
                priority=PRIORITY[horn.level] + Priority.PIN_DELAY,
                dedupe_key=codes.unpin_key(horn.id, copy.chat_id, copy.message_id),
                ref=codes.note_ref(horn.id))

    async def _home(self, scope: list[str]) -> tuple[str | None, str]:
        """The grid the horn belongs to (None when it spans several) and its community."""
        grids, communities = set(), []
        for code in scope:
            chain = await self.store.map.ancestors(code)
            grids.add(next((u.code for u in chain if u.kind == "grid"), None))
            communities += [u.code for u in chain if u.kind == "community"]
        grid = grids.pop() if len(grids) == 1 else None
        return grid, communities[0] if communities else ""

    async def _chats_in(self, scope: list[str] | tuple[str, ...]) -> list[tuple[int, int]]:
        """Bound, active chats of the units under `scope`: (chat, announcement thread)."""
        found: dict[int, int] = {}
        for code in scope:
            # member units' chats get a horn only when it calls them (SPEC §10)
            below = [u.code for u in await self.store.map.descendants(code)
                     if u.kind != "member"]
            for binding in await self.store.map.bindings(below):
                if binding.chat_id in found:
                    continue
                chat = await self.store.map.chat(binding.chat_id)
                if chat is not None and not chat.active:
                    continue
                found[binding.chat_id] = binding.thread_id
        return list(found.items())
