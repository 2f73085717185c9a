"""The services of §1–§9 over a temporary store, built in one place for the unit tests.

When the services' constructors change (collaborators passed in), only `build_services`
changes; the tests ask for what they need by name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.services.access import Access, Actor
from bot.services.boards import BoardService
from bot.services.chats import ChatService
from bot.services.errors import Refused
from bot.services.outbox import Outbox
from bot.services.patrols import PatrolService
from bot.services.people import PeopleService
from bot.services.schedule import ScheduleService
from bot.services.themes import ThemeService
from bot.services.units import UnitService
from bot.settings import Settings, load_settings
from storage.models import Chat, OutboxItem, Unit
from storage.store import Store
from tests.support.harness import grant, seed_map

ADMIN = 999
#: the people of `staffed_map`, each with the role on the unit named after them
HEAD, WORKER, LEADER, STAFF, LIAISON, RESIDENT, VOLUNTEER, OTHER_HEAD = (
    1, 2, 3, 4, 5, 7, 8, 9)
ROLES = ((HEAD, "building_head", "B01010101"), (WORKER, "grid_worker", "G0101"),
         (LEADER, "grid_leader", "G0101"), (STAFF, "community_staff", "C01"),
         (LIAISON, "department_liaison", "MZJ"), (VOLUNTEER, "volunteer", "B01010101"),
         (OTHER_HEAD, "building_head", "B01020101"))


@dataclass
class Services:
    settings: Settings
    store: Store
    access: Access
    outbox: Outbox
    people: PeopleService
    chats: ChatService
    schedule: ScheduleService
    units: UnitService

    @property
    def themes(self) -> ThemeService:
        return self.schedule.themes

    @property
    def patrols(self) -> PatrolService:
        return self.schedule.patrols

    @property
    def boards(self) -> BoardService:
        return self.schedule.boards

    async def actor(self, user_id: int) -> Actor:
        return await self.access.actor(user_id)


def build_services(store: Store, *, clock: Callable[[], float] = time.time,
                   **overrides: Any) -> Services:
    """The services as `bot.app` wires them, with settings for tests (no quiet hours, a
    superadmin `ADMIN`) unless `overrides` say otherwise."""
    values: dict[str, Any] = {"superadmins": str(ADMIN), "quiet_hours": "",
                              "timezone": "Asia/Shanghai"}
    values.update(overrides)
    settings = load_settings(**values)
    access = Access(store, settings.superadmins)
    outbox = Outbox(store, settings)
    people = PeopleService(store, access, settings)
    chats = ChatService(store, access, people, outbox)
    schedule = ScheduleService(store, access, people, outbox, settings)
    for service in (schedule.themes, schedule.patrols):
        service.clock = clock
    return Services(settings=settings, store=store, access=access, outbox=outbox,
                    people=people, chats=chats, schedule=schedule,
                    units=UnitService(store, access))


#: the member unit most tests of SPEC §10 use: the estate's property firm, under C01
PROPERTY_UNIT = Unit(code="M01", kind="member", name="安居物业", parent_code="C01",
                     member_type="property")


async def staffed_map(store: Store) -> None:
    """`seed_map`'s units, `ROLES` granted, and a resident of B01010101."""
    await seed_map(store)
    for user_id, role, unit in ROLES:
        await grant(store, user_id, role, unit)
    async with store.transaction():
        await store.people.ensure(RESIDENT)
        await store.people.set_building(RESIDENT, "B01010101")


async def set_locale(store: Store, user_id: int, locale: str) -> None:
    async with store.transaction():
        await store.people.ensure(user_id)
        await store.people.set_locale(user_id, locale)


async def bind(store: Store, unit_code: str, chat_id: int, *, thread_id: int = 0,
               locale: str | None = None, active: bool = True, can_pin: bool = True) -> None:
    """Link a group chat to a unit, as /bind leaves it."""
    async with store.transaction():
        await store.map.upsert_chat(Chat(chat_id=chat_id, type="supergroup",
                                         title=f"chat of {unit_code}", active=active,
                                         bot_is_admin=True, can_pin=can_pin))
        if locale:
            await store.map.set_chat_locale(chat_id, locale)
        await store.map.bind(unit_code, chat_id, thread_id, None)


async def queued(store: Store, method: str = "sendMessage") -> list[OutboxItem]:
    """What the outbox holds to send, oldest first."""
    return [i for i in await store.outbox.pending() if i.method == method]


async def texts_to(store: Store, chat_id: int) -> list[str]:
    """The texts queued for one chat."""
    return [i.payload["text"] for i in await queued(store) if i.chat_id == chat_id]


async def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: a refusal must leave it as it was (SPEC §1)."""
    if store.db.dialect == "postgresql":
        tables = await store.db.fetchall(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
    else:
        tables = await store.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for (name,) in tables:
        rows[name] = [tuple(r) for r in await store.db.fetchall(f'SELECT * FROM "{name}"')]
    return rows


async def refused(store: Store, call: Awaitable[object], key: str) -> Refused:
    """Await `call`, which must be refused with `key` and leave the store as it was."""
    before = await snapshot(store)
    try:
        await call
    except Refused as refusal:
        assert refusal.key == key, f"refused with {refusal.key}, expected {key}"
        assert await snapshot(store) == before, "a refusal changed the store"
        return refusal
    raise AssertionError(f"not refused (expected {key})")
