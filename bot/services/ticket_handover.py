"""A building head's open tickets when their role is revoked (SPEC §11: "a revoked building
head's open cards pass to the grid").

What a grid worker expects, and what is done, in the revoke's own transaction:

- the head's private cards of the building's open tickets are edited a last time: the
  ticket as it now stands, no buttons, and a line saying who has it now; they are forgotten,
  so no later step puts buttons back on them;
- if another building head of that building remains, the tickets stay with them (their own
  cards are untouched): nothing moves;
- if none remains, every open ticket still at building level (new, or acknowledged and not
  yet passed up) is escalated to the grid through the lifecycle's Escalate step (the
  reporter told, the escalation noted in the ticket's staff thread, the cards refreshed,
  the grid's resolve deadline as the Escalate button sets it; the revoker is the timeline's
  actor), and the grid's staff chat is told once which tickets came to it and why.
"""

from __future__ import annotations

from bot.i18n import t
from bot.services.outbox import Priority
from bot.services.ticket_lifecycle import TicketLifecycle
from bot.services.ticket_refs import note_ref
from bot.services.ticket_states import TicketAction
from bot.services.ticket_views import LEVEL_KEY, CardKind
from storage.models import DueKind, TicketLevel, TicketStatus, Unit

_AT_BUILDING = (TicketStatus.NEW, TicketStatus.ACKNOWLEDGED)
_ALL = 100_000  # a building's open tickets: all of them


class TicketHandover(TicketLifecycle):
    async def head_left(self, actor_id: int, head_id: int, building: Unit) -> list[int]:
        """Inside a transaction, after `head_id` lost the building head role on `building`:
        their cards close and, with no head left there, the building's tickets go to the
        grid. The numbers of the tickets escalated."""
        remaining = await self._holders(("building_head",), building.code, exact=True)
        tickets, _ = await self.store.tickets.open_in([building.code], limit=_ALL)
        locale = await self.people.locale_for(head_id)
        escalated: list[int] = []
        grid_code = ""
        for ticket in sorted(tickets, key=lambda ticket: ticket.id):
            mine = [c for c in await self.store.tickets.cards(ticket.id)
                    if c.chat_id == head_id and c.kind == CardKind.HEAD]
            if mine:
                await self.store.tickets.drop_cards(ticket.id, head_id, CardKind.HEAD)
            if not remaining and ticket.level == TicketLevel.BUILDING and \
                    ticket.status in _AT_BUILDING:
                ticket = await self._step(
                    TicketAction.ESCALATE, ticket, actor_id,
                    fields={"level": TicketLevel.GRID, **self._due_fields(
                        DueKind.RESOLVE, ticket.created_at,
                        self.span(ticket.urgency, DueKind.RESOLVE))},
                    event_data={"head_revoked": head_id})
                escalated.append(ticket.id)
                grid_code = ticket.grid_code
            if ticket.level == TicketLevel.BUILDING:  # its other heads have it
                note = t(locale, "handover.card_heads")
            else:
                note = t(locale, "handover.card_level", level=t(locale, LEVEL_KEY[ticket.level]))
            for card in mine:
                text, _ = await self._card_text(locale, ticket, CardKind.HEAD, head_id)
                await self.outbox.edit(head_id, card.message_id, f"{text}\n\n{note}",
                                       priority=Priority.PERSONAL, ref=note_ref(ticket.id))
        if escalated:
            await self._tell_grid(grid_code, head_id, building, escalated)
        return escalated

    async def _tell_grid(self, grid_code: str, head_id: int, building: Unit,
                         escalated: list[int]) -> None:
        """Once, in the grid's staff chat: which tickets came up, and why."""
        binding = await self.store.map.binding(grid_code)
        if binding is None:
            return
        chat = await self.store.map.chat(binding.chat_id)
        if chat is not None and not chat.active:
            return
        head = await self.store.people.get(head_id)
        locale = await self.people.locale_in(binding.chat_id)
        await self.outbox.send(
            binding.chat_id,
            t(locale, "handover.grid", head=head.display_name if head else str(head_id),
              building=f"{building.name} ({building.code})",
              tickets=", ".join(f"#{n}" for n in escalated)),
            priority=Priority.PERSONAL, thread_id=binding.thread_id)
