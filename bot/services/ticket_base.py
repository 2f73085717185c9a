"""What every part of the ticket service stands on: reading a ticket, who may act on it,
who holds a role over it, and its deadline fields.

The parts (drafts, cards, lifecycle, prompts, deadlines, queries) are classes over this base
that `TicketService` (bot/services/tickets.py) puts together; each reaches the others through
`self`, so one object serves the handlers and the app.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.hooks import Wakeup
from bot.services.access import Access, Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.settings import Deadlines, Settings
from storage.models import Chat, DueKind, Ticket, TicketLevel, Urgency
from storage.store import Store

REMIND_AT = 0.75  # of a deadline's span: the assignee is reminded
LEVELS = (TicketLevel.BUILDING, TicketLevel.GRID, TicketLevel.COMMUNITY)


class TicketBase(Service):
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, clock: Callable[[], float] = time.time, *,
                 changed: Callable[..., None] | None = None,
                 cards_waiting: Callable[[], None] | None = None,
                 learn_chat: Callable[[int], Awaitable[Chat | None]] | None = None) -> None:
        super().__init__(store, access, people, outbox, settings, clock)
        #: a staff chat as the store knows it, learned first when it knows nothing of it (a
        #: chat bound through the map file: `ChatService.known`); without it, as stored
        self.learn_chat: Callable[[int], Awaitable[Chat | None]] = \
            learn_chat or store.map.chat
        # without a watcher (a command-line tool, a test) they wake nobody
        #: wakes the deadline watcher: something may be due at the given time (None: now)
        self.changed: Callable[..., None] = changed or Wakeup()
        #: wakes the backlog that queues new tickets' staff cards (`post_pending_cards`)
        self.cards_waiting: Callable[[], None] = cards_waiting or Wakeup()

    def deadlines(self, urgency: Urgency) -> Deadlines:
        settings = self.settings
        return {Urgency.ROUTINE: settings.deadlines_routine,
                Urgency.MAJOR: settings.deadlines_major,
                Urgency.URGENT: settings.deadlines_urgent}[urgency]

    def span(self, urgency: Urgency, kind: DueKind) -> float:
        """The seconds an urgency allows for one kind of deadline."""
        deadlines = self.deadlines(urgency)
        return {DueKind.ACKNOWLEDGE: deadlines.acknowledge, DueKind.ACCEPT: deadlines.accept,
                DueKind.RESOLVE: deadlines.resolve}[kind].total_seconds()

    async def ticket_span(self, ticket: Ticket, kind: DueKind) -> float:
        """The seconds a ticket has for a deadline: the time to accept of the catalogue item
        it was whistled with (SPEC §11), else its urgency's."""
        if kind == DueKind.ACCEPT and ticket.whistle_item:
            item = await self.store.whistles.item(ticket.whistle_item)
            if item is not None and item.deadline:
                return float(item.deadline)
        return self.span(ticket.urgency, kind)

    def _due_fields(self, kind: DueKind, start: float, span: float) -> dict[str, Any]:
        return {"due_kind": kind, "due_from": start, "due_at": start + span,
                "remind_at": start + REMIND_AT * span}

    async def _get(self, ticket_id: int) -> Ticket:
        ticket = await self.store.tickets.get(ticket_id)
        if ticket is None:
            raise Refused("ticket.unknown", id=ticket_id)
        return ticket

    async def _may(self, actor: Actor, action: Action, ticket: Ticket) -> bool:
        if action == Action.VIEW_TICKETS and liaison_of(actor, ticket):
            return True
        return await self.access.can(actor, action, ticket.building_code)

    async def _require(self, actor: Actor, action: Action, ticket: Ticket) -> None:
        if not await self._may(actor, action, ticket):
            raise Refused("ticket.not_allowed", id=ticket.id)

    async def _staff_ticket(self, actor: Actor, ticket_id: int, action: Action) -> Ticket:
        ticket = await self._get(ticket_id)
        await self._require(actor, action, ticket)
        return ticket

    async def _department_ticket(self, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await self._get(ticket_id)
        if not actor.superadmin and not liaison_of(actor, ticket):
            raise Refused("ticket.not_allowed", id=ticket.id)
        return ticket

    async def _holders(self, roles: tuple[str, ...], unit_code: str,
                       exact: bool = False) -> list[int]:
        """People holding `roles` on the unit itself (exact) or on any unit covering it."""
        codes = [unit_code] if exact else await self.access.covering(unit_code)
        return sorted({g.user_id for g in await self.store.people.holders(roles, codes)})

    async def _heads(self, ticket: Ticket) -> list[int]:
        return await self._holders(("building_head",), ticket.building_code, exact=True)


def liaison_of(actor: Actor, ticket: Ticket) -> bool:
    """Whether the actor answers whistles for the ticket's current department."""
    return ticket.department_code is not None and any(
        g.role == "department_liaison" and g.unit_code == ticket.department_code
        for g in actor.grants)
