"""Monthly theme 每月主题 (SPEC §6): set by community staff, posted to building chats.

A theme belongs to a community and a month: each community's buildings get their own.
Superadmins may set the city-wide theme (`themes.community_code = ''`), which every community
without its own theme of that month shows. The monthly run (the 1st, 09:00) posts the month's
theme to every bound building chat that has not had it and pins it; a chat bound later gets it
at the next run (the daily run sweeps), and a theme set after the month's run goes out at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.i18n import join_list, t
from bot.services import periods
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Priority
from bot.services.scopes import bound_targets
from storage.models import Theme, Unit
from storage.schedules import CITY

JOB = "theme"
REMINDER_JOB = "theme_reminder"
MAX_LENGTH = 1000


@dataclass(frozen=True)
class ThemeSet:
    month: str
    units: tuple[Unit, ...]     # empty: the city-wide theme
    posted: int                 # building chats it went to at once


@dataclass(frozen=True)
class ThemeShown:
    month: str
    themes: tuple[tuple[Unit | None, Theme | None], ...]   # (community or city, its theme)
    may_set: bool


def community_of(units: dict[str, Unit], code: str) -> str | None:
    unit = units.get(code)
    while unit is not None and unit.kind != "community":
        unit = units.get(unit.parent_code or "")
    return unit.code if unit is not None else None


class ThemeService(Service):

    async def set_theme(self, actor: Actor, args: str, now: datetime) -> ThemeSet:
        """`/theme YYYY-MM [COMMUNITY] TEXT`: a month from now on, for the actor's communities
        (a superadmin without a code: the whole city)."""
        if not self.access.can_somewhere(actor, Action.THEME):
            raise Refused("theme.not_allowed")
        head, _, rest = args.strip().partition(" ")
        month = periods.parse_month(head)
        if month is None:
            raise Refused("theme.bad_month", text=head[:20])
        current = periods.month_key(now.astimezone(self.settings.tz))
        if month < current:
            raise Refused("theme.past_month", month=month, current=current)
        rest = rest.strip()
        first, _, after = rest.partition(" ")
        named = await self.store.map.get(first) if first else None
        if named is not None and named.kind != "community":
            raise Refused("theme.not_community", code=named.code)
        text = after.strip() if named is not None else rest
        if not text:
            raise Refused("theme.empty", month=month)
        if len(text) > MAX_LENGTH:
            raise Refused("theme.too_long", limit=MAX_LENGTH)
        if named is not None:
            if not await self.access.can(actor, Action.THEME, named.code):
                raise Refused("theme.not_allowed_here", code=named.code)
            units: tuple[Unit, ...] = (named,)
        elif actor.superadmin:
            units = ()
        else:
            units = tuple(u for u in await self.access.scope_units(actor, Action.THEME)
                          if u.kind == "community")
            if not units:
                raise Refused("theme.not_allowed")
        posted = 0
        async with self.store.transaction():
            for code in [u.code for u in units] or [CITY]:
                await self.store.schedules.set_theme(code, month, text, actor.user_id)
            if month == current and await self.store.schedules.has_run(JOB, month):
                posted = await self.post_month(month)
        return ThemeSet(month=month, units=units, posted=posted)

    async def show(self, actor: Actor, chat_id: int, now: datetime) -> ThemeShown:
        """`/theme`: this month's theme where the asker is (the chat's building, their own)."""
        month = periods.month_key(now.astimezone(self.settings.tz))
        units = {u.code: u for u in await self.store.map.all()}
        codes: list[str] = []
        if chat_id < 0:
            for binding in await self.store.map.bindings_in_chat(chat_id):
                codes.append(community_of(units, binding.unit_code) or "")
        if not codes and actor.building_code:
            codes.append(community_of(units, actor.building_code) or "")
        if not codes:
            codes += [community_of(units, g.unit_code) or "" for g in actor.grants]
        if not codes and actor.superadmin:
            codes = [u.code for u in units.values() if u.kind == "community"]
        codes = [c for i, c in enumerate(codes) if c and c not in codes[:i]]
        shown: list[tuple[Unit | None, Theme | None]] = []
        for code in codes:
            shown.append((units[code], await self.store.schedules.theme(code, month)))
        if not shown:
            shown.append((None, await self.store.schedules.theme(CITY, month)))
        return ThemeShown(month=month, themes=tuple(shown),
                          may_set=self.access.can_somewhere(actor, Action.THEME))

    async def post_month(self, month: str) -> int:
        """Inside a transaction: post the month's theme to every bound building chat that
        has not had it (and pin it). Returns how many chats it went to."""
        units = {u.code: u for u in await self.store.map.all()}
        posts = 0
        for target in await bound_targets(self.store, self.settings, "building"):
            theme = await self.store.schedules.theme(
                community_of(units, target.unit.code) or CITY, month)
            if theme is None:
                continue
            if not await self.store.schedules.claim_post(JOB, month, target.chat_id,
                                                         target.thread_id):
                continue
            await self.outbox.send(
                target.chat_id, t(target.locale, "theme.post", month=month, text=theme.text),
                priority=Priority.ROUTINE, thread_id=target.thread_id, quiet=True,
                pin=target.can_pin)
            posts += 1
        return posts

    async def remind_missing(self, month: str) -> int:
        """Inside a transaction: tell community staff (privately and in their staff chat) and
        superadmins which communities have no theme for `month` yet."""
        communities = [u for u in await self.store.map.all() if u.kind == "community"]
        missing = [c for c in communities if await self.store.schedules.theme(c.code, month)
                   is None]
        if not missing:
            return 0
        people: dict[int, list[Unit]] = {}
        for community in missing:
            for grant in await self.store.people.holders(("community_staff",), [community.code]):
                people.setdefault(grant.user_id, []).append(community)
        for user_id in self.settings.superadmins:
            people[user_id] = list(missing)
        targets: list[tuple[int, int, str, list[Unit]]] = []
        for user_id, units in sorted(people.items()):
            targets.append((user_id, 0, await self.people.locale_for(user_id), units))
        for target in await bound_targets(self.store, self.settings, "community"):
            if target.unit in missing:
                targets.append((target.chat_id, target.thread_id, target.locale, [target.unit]))
        posts = 0
        for chat_id, thread_id, locale, units in targets:
            if not await self.store.schedules.claim_post(REMINDER_JOB, month, chat_id,
                                                         thread_id):
                continue
            await self.outbox.send(
                chat_id, t(locale, "theme.reminder", month=month,
                           communities=join_list(locale, (f"{u.name} ({u.code})" for u in units))),
                priority=Priority.PERSONAL if chat_id > 0 else Priority.ROUTINE,
                thread_id=thread_id, quiet=chat_id < 0)
            posts += 1
        return posts
