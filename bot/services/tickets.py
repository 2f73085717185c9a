"""Voice of the residents (民声e通道): drafts, tickets and their lifecycle (SPEC §4).

`TicketService` is the one entry the handlers and the app use; it is put together from the
parts, one module each:

- drafts and Submit (`ticket_drafts`);
- staff cards, their backlog and the notices (`ticket_cards`);
- the lifecycle, run through one table (`ticket_states`, `ticket_lifecycle`);
- prompts and relays (`ticket_prompts`);
- deadlines: reminders and overdue escalation (`ticket_deadlines`);
- `/my`, `/tickets`, `/ticket N` (`ticket_queries`).

Every step checks permission and state again and writes the state change, the timeline row
and every notice (outbox) in one transaction. Reporters are told in their own language at
each step; anonymous reporters are never named to anyone but superadmins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.services.ticket_deadlines import TicketDeadlines
from bot.services.ticket_drafts import DraftView, TicketDrafts
from bot.services.ticket_prompts import TicketPrompts
from bot.services.ticket_queries import TicketQueries
from bot.services.ticket_refs import RefKind, parse_ref
from bot.services.ticket_states import TicketAction
from storage.models import OutboxItem

__all__ = ["DraftView", "SentHook", "TicketService"]

SentHook = Callable[[OutboxItem, Any], Awaitable[None]]


class TicketService(TicketDrafts, TicketPrompts, TicketDeadlines, TicketQueries):
    """Drafts, the lifecycle, cards, prompts, deadlines and queries of tickets."""

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
