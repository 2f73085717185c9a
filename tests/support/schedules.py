"""Helpers for schedule and report tests: a movable clock, services without Telegram, and
tickets written with the times a test chooses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.scheduler import Scheduler
from bot.services.access import Access
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.services.schedule import ScheduleService
from bot.settings import Settings, load_settings
from storage.models import Chat
from storage.store import Store

TZ = ZoneInfo("Asia/Shanghai")


def at(*parts: int) -> datetime:
    """A local time in the default zone: at(2026, 12, 1, 9) is 1 Dec 2026 09:00."""
    return datetime(*parts, tzinfo=TZ)  # type: ignore[misc]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> datetime:
        self.moment = moment
        return moment


@dataclass
class Built:
    settings: Settings
    store: Store
    outbox: Outbox
    schedule: ScheduleService
    scheduler: Scheduler


def build(store: Store, clock: Clock, **overrides: Any) -> Built:
    """The services of §6 over a store, as `bot.app.build_runtime` wires them."""
    settings = load_settings(**overrides)
    access = Access(store, settings.superadmins)
    outbox = Outbox(store, settings)
    people = PeopleService(store, access, settings)
    schedule = ScheduleService(store, access, people, outbox, settings)
    return Built(settings, store, outbox, schedule, Scheduler(store, schedule, settings, now=clock))


async def bind(store: Store, unit_code: str, chat_id: int, *, locale: str | None = None,
               can_pin: bool = True, thread_id: int = 0) -> None:
    async with store.transaction():
        await store.map.upsert_chat(Chat(chat_id=chat_id, type="supergroup",
                                         title=f"chat of {unit_code}", bot_is_admin=True,
                                         can_pin=can_pin))
        if locale:
            await store.map.set_chat_locale(chat_id, locale)
        await store.map.bind(unit_code, chat_id, thread_id, None)


async def add_ticket(store: Store, *, building: str, grid: str, created: datetime,
                     community: str = "C01", reporter: int = 500, text: str = "楼道灯坏了",
                     domain: str | None = "orange", status: str = "new") -> int:
    async with store.transaction():
        await store.people.ensure(reporter)
        ticket_id = await store.db.execute(
            """INSERT INTO tickets (reporter_id, building_code, grid_code, community_code,
                   domain, text, status, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (reporter, building, grid, community, domain, text, status, created.timestamp(),
             created.timestamp()))
        await add_event(store, ticket_id, "created", created)
    return ticket_id


async def add_event(store: Store, ticket_id: int, kind: str, moment: datetime, *,
                    note: str | None = None, actor: int | None = None,
                    data: dict[str, Any] | None = None) -> None:
    async with store.transaction():
        await store.db.execute(
            "INSERT INTO ticket_events (ticket_id, at, actor_id, kind, note, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, moment.timestamp(), actor, kind, note,
             json.dumps(data) if data else None))


async def add_horn(store: Store, *, grid: str | None, created: datetime,
                   confirmed: datetime | None, hours: dict[int, float], owner: int = 102,
                   community: str = "C01") -> int:
    """A closed horn whose attendance was confirmed with these hours per person."""
    async with store.transaction():
        await store.people.ensure(owner)
        horn_id = await store.db.execute(
            """INSERT INTO horns (owner_id, level, scope, grid_code, community_code, title,
                   needed, status, created_at, closed_at, hours, confirmed_at, confirmed_by)
               VALUES (?, 'service', ?, ?, ?, '清理楼道', 5, 'closed', ?, ?, ?, ?, ?)""",
            (owner, grid or community, grid, community, created.timestamp(),
             confirmed.timestamp() if confirmed else None, max(hours.values(), default=0),
             confirmed.timestamp() if confirmed else None, owner))
        for seq, (person, served) in enumerate(sorted(hours.items()), 1):
            await store.people.ensure(person)
            await store.db.execute(
                """INSERT INTO horn_checkins (horn_id, person_id, state, seq, at, updated_at,
                       present, hours, points) VALUES (?, ?, 'in', ?, ?, ?, 1, ?, ?)""",
                (horn_id, person, seq, created.timestamp(), created.timestamp(), served,
                 int(served * 10)))
    return horn_id
