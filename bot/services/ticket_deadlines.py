"""Deadlines (SPEC §4): the assignee is reminded at 75 % of a deadline; when it passes, the
ticket moves up a level (building → grid → community) and both levels and the reporter are
told. The deadline watcher (bot/watcher.py) calls `run_due` when `next_due` comes; each
reminder and escalation clears what fired it in the same transaction, so it happens once,
restarts included."""

from __future__ import annotations

import logging
from typing import Any

from bot.i18n import t
from bot.services import ticket_views as views
from bot.services.backups import for_line
from bot.services.outbox import Priority
from bot.services.ticket_base import LEVELS
from bot.services.ticket_cards import TicketCards
from bot.services.ticket_refs import note_ref
from bot.services.ticket_states import TimelineEvent
from storage.models import DueKind, Ticket, TicketLevel, TicketStatus

logger = logging.getLogger(__name__)


class TicketDeadlines(TicketCards):
    async def run_due(self) -> int:
        """Send due reminders (75 %) and escalate passed deadlines; returns how many acted."""
        acted = 0
        for ticket in await self.store.tickets.due(self.clock()):
            try:
                acted += await self._deadline(ticket)
            except Exception:
                logger.exception("deadline handling of #%s failed", ticket.id)
        return acted

    async def next_due(self) -> float | None:
        return await self.store.tickets.next_due()

    async def _deadline(self, ticket: Ticket) -> int:
        now = self.clock()
        async with self.store.transaction():
            fresh = await self.store.tickets.get(ticket.id)
            if fresh is None or not fresh.is_open:
                return 0
            ticket = fresh
            if ticket.due_at is not None and ticket.due_at <= now:
                await self._escalate_overdue(ticket)
                return 1
            if ticket.remind_at is not None and ticket.remind_at <= now:
                await self.store.tickets.update(ticket.id, remind_at=None)
                await self._remind(ticket)
                return 1
        return 0

    async def _remind(self, ticket: Ticket) -> None:
        # a holder away: the reminder follows who stands in (AB岗)
        for delivery in await self._deliveries(*await self._assignees(ticket)):
            user_id = delivery.recipient
            locale = await self.people.locale_for(user_id)
            due = t(locale, views.DUE_KEY[ticket.due_kind]) if ticket.due_kind else ""
            await self.outbox.send(
                user_id, for_line(locale, delivery.on_behalf_of) +
                t(locale, "remind.deadline", id=ticket.id, due=due,
                  at=views.when(ticket.due_at, self.settings.tz)),
                priority=Priority.PERSONAL, ref=note_ref(ticket.id))

    async def _escalate_overdue(self, ticket: Ticket) -> None:
        index = LEVELS.index(ticket.level)
        new_level = LEVELS[min(index + 1, len(LEVELS) - 1)]
        if new_level == ticket.level:
            fields: dict[str, Any] = {"due_at": None, "remind_at": None}
        else:
            # the next level's deadline is the one it now owes: a missed acknowledgement
            # leaves the grid the ticket's resolve deadline (as the Escalate button does);
            # a missed acceptance or resolution gives the next level that deadline afresh
            now = self.clock()
            if ticket.due_kind in (None, DueKind.ACKNOWLEDGE):
                kind = DueKind.RESOLVE
                span = self.span(ticket.urgency, kind)
                start = ticket.created_at if ticket.created_at + span > now else now
            else:
                kind = ticket.due_kind
                span = await self.ticket_span(ticket, kind)
                start = now
            fields = {"level": new_level, **self._due_fields(kind, start, span)}
        status = TicketStatus.ESCALATED if ticket.status in (
            TicketStatus.NEW, TicketStatus.ACKNOWLEDGED) and new_level != TicketLevel.BUILDING \
            else ticket.status
        await self.store.tickets.update(ticket.id, status=status, **fields)
        await self.store.tickets.add_event(ticket.id, None, TimelineEvent.OVERDUE,
                                           data={"due": ticket.due_kind, "from": ticket.level,
                                                 "to": new_level,
                                                 "department": ticket.department_code})
        ticket = await self._get(ticket.id)
        await self._tell_reporter(ticket, "notice.overdue")
        if index == 0:  # the building heads missed it: they hear it moved up
            await self._tell_heads(ticket, "staff.overdue", level=new_level)
        units = [ticket.grid_code] + (
            [ticket.community_code] if new_level == TicketLevel.COMMUNITY else [])
        for unit_code in units:
            # in the community's chat the notice goes right before the ticket's first card
            # there (queued first); elsewhere it goes into the topic or replies to the card
            await self._unit_notice(ticket, unit_code, "staff.overdue", level=new_level)
        if new_level == TicketLevel.COMMUNITY and index < 2:
            await self._post_staff_card(ticket, ticket.community_code)
        await self.refresh_cards(ticket)

    async def _assignees(self, ticket: Ticket) -> list[int]:
        """Who is reminded: the current level's people (building heads before acknowledgement)."""
        if ticket.status in (TicketStatus.WHISTLED, TicketStatus.ACCEPTED) and \
                ticket.department_code:
            return await self._holders(("department_liaison",), ticket.department_code,
                                       exact=True)
        if ticket.level == TicketLevel.BUILDING:
            return await self._heads(ticket)
        if ticket.level == TicketLevel.GRID:
            return await self._holders(("grid_leader", "grid_worker"), ticket.grid_code,
                                       exact=True)
        return await self._holders(("community_staff",), ticket.community_code, exact=True)
