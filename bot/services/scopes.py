"""What a report or a leaderboard covers, and the bound chats the scheduled jobs post to."""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import join_list, t
from bot.services.access import Access, Action, Actor
from bot.services.errors import Refused
from bot.settings import Settings
from storage.models import Unit
from storage.store import Store


@dataclass(frozen=True)
class Scope:
    """Top units (none: the whole city) and the grids below them, in map order."""

    units: tuple[Unit, ...]
    grids: tuple[Unit, ...]

    @property
    def city(self) -> bool:
        return not self.units

    @property
    def grid_codes(self) -> list[str] | None:
        """For queries: None means every grid of the city."""
        return None if self.city else [g.code for g in self.grids]

    def label(self, locale: str) -> str:
        if self.city:
            return t(locale, "scope.city")
        return join_list(locale, (u.name for u in self.units))


async def city_scope(store: Store) -> Scope:
    return Scope(units=(), grids=tuple(u for u in await store.map.all() if u.kind == "grid"))


async def outermost(store: Store, codes: list[str]) -> list[str]:
    """Drop units that another chosen unit already covers; keep the order."""
    chosen = list(dict.fromkeys(codes))
    kept = []
    for code in chosen:
        above = {u.code for u in await store.map.ancestors(code)} - {code}
        if not above & set(chosen):
            kept.append(code)
    return kept


async def unit_scope(store: Store, unit: Unit) -> Scope:
    return Scope(units=(unit,), grids=tuple(await store.map.descendants(unit.code, "grid")))


async def actor_scope(store: Store, access: Access, actor: Actor, action: Action,
                      refusal: str) -> Scope:
    """The grids an actor may see for `action` (superadmins: the whole city)."""
    if actor.superadmin:
        return await city_scope(store)
    tops = [u for u in await access.scope_units(actor, action)
            if u.kind in ("community", "grid")]
    # a grid inside a community already in scope adds nothing
    outer = set(await outermost(store, [u.code for u in tops]))
    kept = [u for u in tops if u.code in outer]
    if not kept:
        raise Refused(refusal)
    grids: list[Unit] = []
    for unit in kept:
        grids += [g for g in await store.map.descendants(unit.code, "grid") if g not in grids]
    return Scope(units=tuple(kept), grids=tuple(grids))


@dataclass(frozen=True)
class Target:
    """A bound, active chat (or topic) of a unit, with the language to write in."""

    unit: Unit
    chat_id: int
    thread_id: int
    locale: str
    can_pin: bool


async def bound_targets(store: Store, settings: Settings, kind: str) -> list[Target]:
    """Every active chat bound to a unit of `kind`, in map order."""
    units = {u.code: u for u in await store.map.all() if u.kind == kind}
    targets = []
    for binding in await store.map.bindings(list(units)) if units else []:
        chat = await store.map.chat(binding.chat_id)
        if chat is not None and not chat.active:
            continue
        locale = chat.locale if chat is not None and chat.locale else settings.default_locale
        targets.append(Target(unit=units[binding.unit_code], chat_id=binding.chat_id,
                              thread_id=binding.thread_id, locale=locale,
                              can_pin=chat is None or chat.can_pin))
    order = {code: i for i, code in enumerate(units)}
    return sorted(targets, key=lambda target: order[target.unit.code])
