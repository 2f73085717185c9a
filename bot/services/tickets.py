"""Voice of the residents (民声e通道): drafts, tickets and their lifecycle (SPEC §4).

`TicketService` is the one entry the handlers and the app use; it is put together from the
parts, one module each:

- drafts and Submit (`ticket_drafts`), and staff intake on the same path (`ticket_intake`);
- staff cards, their backlog and the notices (`ticket_cards`);
- the lifecycle, run through one table (`ticket_states`, `ticket_lifecycle`);
- the whistle catalogue's picker and the staff's rating of departments (`ticket_whistles`);
- prompts and relays (`ticket_prompts`);
- deadlines: reminders and overdue escalation (`ticket_deadlines`);
- `/my`, `/tickets`, `/ticket N` (`ticket_queries`);
- 点将: assigning from the card, the assignee's answer, progress and hours (`ticket_assign`);
- a revoked building head's tickets passing to the grid (`ticket_handover`).

Every step checks permission and state again and writes the state change, the timeline row
and every notice (outbox) in one transaction. Reporters are told in their own language at
each step; anonymous reporters are never named to anyone but superadmins.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.hooks import SentHook
from bot.services.access import Access
from bot.services.outbox import Outbox
from bot.services.people import PeopleService
from bot.services.ticket_assign import TicketAssignments
from bot.services.ticket_deadlines import TicketDeadlines
from bot.services.ticket_drafts import DraftView
from bot.services.ticket_handover import TicketHandover
from bot.services.ticket_intake import TicketIntake
from bot.services.ticket_prompts import TicketPrompts
from bot.services.ticket_queries import TicketQueries
from bot.services.ticket_refs import RefKind, about, parse_ref
from bot.services.ticket_states import TicketAction
from bot.settings import Settings
from storage.models import Chat, OutboxItem
from storage.store import Store

__all__ = ["DraftView", "SentHook", "TicketService"]


class TicketService(TicketIntake, TicketPrompts, TicketDeadlines, TicketQueries,
                    TicketHandover, TicketAssignments):
    """Drafts, the lifecycle, cards, prompts, deadlines and queries of tickets."""

    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, clock: Callable[[], float] = time.time, *,
                 changed: Callable[..., None] | None = None,
                 cards_waiting: Callable[[], None] | None = None,
                 learn_chat: Callable[[int], Awaitable[Chat | None]] | None = None) -> None:
        """`changed` wakes the deadline watcher, `cards_waiting` the cards' backlog,
        `learn_chat` learns a staff chat bound through the map file before its first card
        (`ChatService.known`); the ticket's refs are registered with the outbox here (only
        this service reads them)."""
        super().__init__(store, access, people, outbox, settings, clock, changed=changed,
                         cards_waiting=cards_waiting, learn_chat=learn_chat)
        for prefix, hook in self.sent_hooks().items():
            outbox.on_sent(prefix, hook)
        for kind in RefKind:  # the sender's log lines name the ticket (SPEC §15)
            outbox.on_about(kind.value, about)

    def sent_hooks(self) -> dict[str, SentHook]:
        """What the ticket learns when one of its messages went out, by the prefix of the
        item's ref: a card's message id (to edit it later), its forum topic, the relayed
        messages the reporter may answer."""

        async def card(item: OutboxItem, result: Any) -> None:
            ref = parse_ref(item.ref)
            await self.card_sent(ref.ticket_id, ref.card_kind, item.chat_id,
                                 result["message_id"])

        async def topic(item: OutboxItem, result: Any) -> None:
            await self.topic_created(parse_ref(item.ref).ticket_id, item.chat_id,
                                     result["message_thread_id"])

        def relayed(action: TicketAction) -> SentHook:
            async def hook(item: OutboxItem, result: Any) -> None:
                await self.relay_sent(parse_ref(item.ref).ticket_id, item.chat_id,
                                      result["message_id"], action=action)
            return hook

        return {RefKind.CARD: card, RefKind.TOPIC: topic,
                RefKind.RELAY: relayed(TicketAction.ANSWER),
                RefKind.COMMENT: relayed(TicketAction.COMMENT)}
