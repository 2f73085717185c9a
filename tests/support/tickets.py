"""A ticket service on a temporary store, with the people and chats of a small map, and a
stand-in for the outbox sender (marks items sent and runs the service's sent hooks)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.services.access import Access, Actor
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.services.tickets import TicketService
from bot.settings import load_settings
from storage.models import Chat, OutboxItem, Ticket
from storage.store import Store
from tests.support.harness import grant, seed_map

ADMIN = 999
HEAD, WORKER, STAFF, LIAISON, RESIDENT, NEIGHBOUR, VOLUNTEER = 1, 2, 4, 5, 7, 8, 9
GRID_CHAT, DEPT_CHAT, COMMUNITY_CHAT, BUILDING_CHAT = -100, -200, -300, -400
DRAFT_CARD = 50  # the message id of the resident's draft card


class Clock:
    """The service's clock; starts at the real time, which the store stamps rows with."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class TicketWorld:
    store: Store
    tickets: TicketService
    access: Access
    clock: Clock

    def restarted(self) -> TicketWorld:
        """The same store under a new service, as after a restart (nothing kept in memory)."""
        old = self.tickets
        tickets = TicketService(old.store, old.access, old.people,
                                Outbox(old.store, old.settings), old.settings, clock=self.clock)
        return TicketWorld(self.store, tickets, self.access, self.clock)

    async def actor(self, user_id: int) -> Actor:
        return await self.access.actor(user_id)

    async def submit(self, user_id: int = RESIDENT, text: str = "楼道灯坏了",
                     photo: str | None = None) -> Ticket:
        await self.tickets.add_to_draft(user_id, text, photo)
        await self.tickets.draft_shown(user_id, DRAFT_CARD)
        return await self.tickets.submit(user_id, DRAFT_CARD)

    async def pending(self, chat_id: int | None = None,
                      method: str | None = None) -> list[OutboxItem]:
        return [i for i in await self.store.outbox.pending()
                if (chat_id is None or i.chat_id == chat_id)
                and (method is None or i.method == method)]

    async def texts(self, chat_id: int) -> list[str]:
        return [i.payload["text"] for i in await self.pending(chat_id, "sendMessage")]

    async def deliver(self) -> list[OutboxItem]:
        """Play the sender: every pending item goes out (message ids from 1000 up, a topic
        thread id for a new topic) and the hook the service registered for its ref runs, as
        bot/outbox.py does."""
        hooks = self.tickets.outbox.hooks
        sent = []
        while items := await self.store.outbox.pending():
            for item in items:
                message_id = 1000 + item.id
                result = {"message_id": message_id, "message_thread_id": 7000 + item.id}
                async with self.store.transaction():
                    await self.store.outbox.mark_sent(item.id, message_id, result)
                    hook = hooks.sent_hook(item.ref)
                    if hook is not None:
                        await hook(item, result)
                sent.append(item)
        return sent


async def bind(store: Store, code: str, chat_id: int, forum: bool = False) -> None:
    async with store.transaction():
        await store.map.upsert_chat(Chat(chat_id=chat_id, type="supergroup", title=code,
                                         is_forum=forum, can_manage_topics=forum))
        await store.map.bind(code, chat_id, 0, None)


async def ticket_world(store: Store, forum: bool = False, **settings: object) -> TicketWorld:
    """The map of tests/support/harness.py: a head, grid worker, community staff, a liaison
    of MZJ, a volunteer and two residents of B01010101; grid, department, community and
    building chats bound (the grid's a forum if asked)."""
    await seed_map(store)
    for user_id, role, unit in [(HEAD, "building_head", "B01010101"),
                                (WORKER, "grid_worker", "G0101"),
                                (STAFF, "community_staff", "C01"),
                                (LIAISON, "department_liaison", "MZJ"),
                                (VOLUNTEER, "volunteer", "G0101")]:
        await grant(store, user_id, role, unit)
    async with store.transaction():
        for user_id in (RESIDENT, NEIGHBOUR):
            await store.people.ensure(user_id)
            await store.people.set_building(user_id, "B01010101")
    await bind(store, "G0101", GRID_CHAT, forum=forum)
    await bind(store, "MZJ", DEPT_CHAT)
    await bind(store, "C01", COMMUNITY_CHAT)
    await bind(store, "B01010101", BUILDING_CHAT)
    config = load_settings(superadmins=str(ADMIN), quiet_hours="", timezone="Asia/Shanghai",
                           **settings)
    access = Access(store, config.superadmins)
    people = PeopleService(store, access, config)
    clock = Clock()
    tickets = TicketService(store, access, people, Outbox(store, config), config, clock=clock)
    return TicketWorld(store, tickets, access, clock)
