"""Chats and bindings (SPEC §2): /bind, /unbind, /joinlink, the bot added, removed, migrated.

A chat bound through the map file (`chat:`) is learned at its first use (`known`: the
runtime's `ChatProbe` asks Telegram with getChat and getChatMember) and recorded as /bind
records a chat: its type, forum flag and the bot's rights; from then on it is one of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.hooks import ChatInfo, ChatProbe
from bot.i18n import t
from bot.services.access import Access, Action, Actor
from bot.services.errors import Refused
from bot.services.outbox import Outbox, Priority
from bot.services.people import PeopleService
from storage.models import Chat, Unit
from storage.store import Store

logger = logging.getLogger(__name__)


__all__ = ["Bound", "ChatInfo", "ChatService", "missing_rights"]
#: after a probe failed (Telegram unreachable), the chat is not asked about again for this long
PROBE_RETRY_S = 60.0


def missing_rights(info: ChatInfo) -> tuple[str, ...]:
    """The rights the bot lacks in a chat: "admin", "pin", "topics" (in a forum)."""
    missing = []
    if not info.bot_is_admin:
        missing.append("admin")
    if not info.can_pin:
        missing.append("pin")
    if info.is_forum and not info.can_manage_topics:
        missing.append("topics")
    return tuple(missing)


@dataclass(frozen=True)
class Bound:
    unit: Unit
    thread_id: int
    missing_rights: tuple[str, ...]   # "admin", "pin", "topics"
    replaced: Unit | None = None      # the unit this chat (topic) was linked to before


class ChatService:
    def __init__(self, store: Store, access: Access, people: PeopleService,
                 outbox: Outbox, probe: ChatProbe | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`probe`: asks Telegram about a chat (the runtime's; none in a tool or a test that
        does not reach Telegram: an unknown chat then stays unknown)."""
        self.store = store
        self.access = access
        self.people = people
        self.outbox = outbox
        self.probe = probe
        self.clock = clock
        self._probe_failed: dict[int, float] = {}
        outbox.on_chat_lost(self.chat_lost)
        outbox.on_migrated(self.migrated)
        outbox.on_first_use(self.first_use)

    async def known(self, chat_id: int) -> Chat | None:
        """The chat as the store knows it; a group chat it knows nothing of (bound through
        the map file) is learned first, as /bind would record it."""
        chat = await self.store.map.chat(chat_id)
        if chat is not None or chat_id > 0 or self.probe is None:
            return chat
        return await self.learn(chat_id)

    async def first_use(self, chat_id: int) -> None:
        """Outbox hook: the first item for a chat the store has no row for is about to go."""
        await self.known(chat_id)

    async def learn(self, chat_id: int) -> Chat | None:
        """Ask Telegram (getChat, getChatMember) and record what it says: the chat's type,
        forum flag and the bot's rights; a chat the bot is not in is marked inactive and
        everyone whose scope covers a unit bound there is told, once. A failure to ask
        (Telegram unreachable) leaves the chat as it was, not asked again for a minute."""
        if self.probe is None:
            return await self.store.map.chat(chat_id)
        failed = self._probe_failed.get(chat_id)
        if failed is not None and self.clock() - failed < PROBE_RETRY_S:
            return await self.store.map.chat(chat_id)
        try:
            info = await self.probe(chat_id)
        except Exception as exc:
            logger.warning("could not ask Telegram about chat %s: %s", chat_id, exc)
            self._probe_failed[chat_id] = self.clock()
            return await self.store.map.chat(chat_id)
        self._probe_failed.pop(chat_id, None)
        if info is None:
            await self.bot_removed(chat_id, None, "the bot is not a member", never_added=True)
        else:
            await self.seen(info)
        return await self.store.map.chat(chat_id)

    async def seen(self, info: ChatInfo, active: bool = True) -> None:
        old = await self.store.map.chat(info.chat_id)
        async with self.store.transaction():
            await self.store.map.upsert_chat(Chat(
                chat_id=info.chat_id, type=info.type, title=info.title, is_forum=info.is_forum,
                active=active, locale=old.locale if old else None,
                bot_is_admin=info.bot_is_admin, can_pin=info.can_pin,
                can_manage_topics=info.can_manage_topics))

    async def locale_of_chat(self, chat_id: int, fallback: str) -> str:
        chat = await self.store.map.chat(chat_id)
        return chat.locale if chat is not None and chat.locale else fallback

    async def set_chat_locale(self, actor: Actor, chat_id: int, locale: str) -> None:
        """A group's language is set by staff whose scope covers a unit bound there."""
        if not await self._may_manage_chat(actor, chat_id):
            raise Refused("lang.group_not_allowed")
        async with self.store.transaction():
            await self.store.map.set_chat_locale(chat_id, locale)

    async def _may_manage_chat(self, actor: Actor, chat_id: int) -> bool:
        if actor.superadmin:
            return True
        for binding in await self.store.map.bindings_in_chat(chat_id):
            if await self.access.can(actor, Action.BIND, binding.unit_code):
                return True
        return False

    async def bind(self, actor: Actor, info: ChatInfo, thread_id: int, code: str) -> Bound:
        if info.type == "private":
            raise Refused("bind.private")
        unit = await self.store.map.get(code)
        if unit is None:
            raise Refused("map.unknown_code", code=code)
        if not await self.access.can(actor, Action.BIND, unit.code):
            raise Refused("bind.not_allowed", code=unit.code)
        if unit.kind == "department" and not actor.superadmin and not any(
                g.role == "department_liaison" and g.unit_code == unit.code
                for g in actor.grants):
            raise Refused("bind.not_allowed", code=unit.code)
        topic = thread_id if info.is_forum and thread_id else 0
        replaced = None
        for binding in await self.store.map.bindings_in_chat(info.chat_id):
            if binding.thread_id == topic and binding.unit_code != unit.code:
                # binding here unlinks that unit: only who may unbind it may take its chat
                replaced = await self.store.map.get(binding.unit_code)
                if replaced is not None and not await self._may_unbind(actor, replaced):
                    raise Refused("bind.taken", code=replaced.code)
        async with self.store.transaction():  # the chat and its binding, or neither
            await self.seen(info)
            await self.store.map.bind(unit.code, info.chat_id, topic, actor.user_id)
        return Bound(unit=unit, thread_id=topic, missing_rights=missing_rights(info),
                     replaced=replaced)

    async def unbind(self, actor: Actor, chat_id: int, thread_id: int) -> Unit:
        bindings = await self.store.map.bindings_in_chat(chat_id)
        chosen = next((b for b in bindings if b.thread_id == thread_id), None)
        if chosen is None and len(bindings) == 1:
            chosen = bindings[0]
        if chosen is None:
            raise Refused("unbind.not_bound")
        unit = await self.store.map.get(chosen.unit_code)
        assert unit is not None
        if not await self._may_unbind(actor, unit):
            raise Refused("bind.not_allowed", code=unit.code)
        async with self.store.transaction():
            await self.store.map.unbind(unit.code)
        return unit

    async def _may_unbind(self, actor: Actor, unit: Unit) -> bool:
        """Liaisons bind their department's chat but do not unbind it (SPEC §1)."""
        if unit.kind == "department" and not actor.superadmin:
            return False
        return await self.access.can(actor, Action.UNBIND, unit.code)

    async def join_link_unit(self, actor: Actor, chat_id: int) -> tuple[Unit, str]:
        """The bound building of this chat and its residents' join payload; in a member
        unit's chat (SPEC §10), the unit and its members' join payload."""
        building = None
        for binding in await self.store.map.bindings_in_chat(chat_id):
            unit = await self.store.map.get(binding.unit_code)
            if unit is not None and unit.kind in ("building", "member"):
                building = unit
                break
        if building is None:
            raise Refused("joinlink.not_building")
        if not await self.access.can(actor, Action.UNBIND, building.code):
            raise Refused("bind.not_allowed", code=building.code)
        return building, await self.people.join_payload(building.code)

    async def join_link_of(self, actor: Actor, code: str) -> tuple[Unit, str]:
        """/joinlink CODE, privately: a building's residents' join payload, to pass on (a
        building without a bound chat), for staff whose scope covers the building."""
        building = await self.store.map.get(code)
        if building is None:
            raise Refused("map.unknown_code", code=code)
        if building.kind != "building":
            raise Refused("joinlink.not_a_building", code=building.code)
        if not await self.access.can(actor, Action.UNBIND, building.code):
            raise Refused("bind.not_allowed", code=building.code)
        return building, await self.people.join_payload(building.code)

    async def bound_units(self, chat_id: int) -> list[Unit]:
        units = []
        for binding in await self.store.map.bindings_in_chat(chat_id):
            unit = await self.store.map.get(binding.unit_code)
            if unit is not None:
                units.append(unit)
        return units

    async def bot_removed(self, chat_id: int, title: str | None, reason: str = "",
                          never_added: bool = False) -> None:
        """Mark the chat inactive and tell everyone whose scope covers a unit bound there
        that the bot was removed (or, `never_added`, that it is not in a chat the map file
        bound)."""
        chat = await self.store.map.chat(chat_id)
        if chat is not None and not chat.active:
            return  # already known and told
        units = await self.bound_units(chat_id)
        title = title or (chat.title if chat else None) or str(chat_id)
        async with self.store.transaction():
            await self.store.map.upsert_chat(Chat(
                chat_id=chat_id, type=chat.type if chat else "supergroup", title=title,
                is_forum=chat.is_forum if chat else False, active=False))
            await self.store.outbox.drop_chat(chat_id, reason or "bot removed")
            for unit in units:
                for user_id in await self.access.people_covering(unit.code):
                    locale = await self.people.locale_for(user_id)
                    await self.outbox.send(
                        user_id, t(locale, "chat.bot_missing" if never_added else "chat.removed",
                                   unit=unit.name, code=unit.code, chat=title),
                        priority=Priority.PERSONAL)

    async def migrated(self, old_id: int, new_id: int) -> None:
        await self.store.migrate_chat(old_id, new_id)

    async def chat_lost(self, chat_id: int, reason: str) -> None:
        """The outbox met a 403: a person blocked the bot, or a group removed it."""
        if chat_id > 0:
            await self.people.set_blocked(chat_id, True)
            return
        await self.bot_removed(chat_id, None, reason)
