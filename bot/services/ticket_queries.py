"""Reading tickets: `/my`, `/tickets` (open ones in a staff member's scope) and `/ticket N`
with its timeline (SPEC §4)."""

from __future__ import annotations

from bot.i18n import t
from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Refused
from bot.services.ticket_cards import TicketCards
from bot.services.ticket_views import CardKind
from storage.models import Ticket


class TicketQueries(TicketCards):
    async def my_tickets(self, user_id: int) -> list[Ticket]:
        return await self.store.tickets.of_reporter(user_id)

    async def open_tickets(self, actor: Actor, page: int, per_page: int = 10
                           ) -> tuple[list[Ticket], int]:
        if actor.superadmin:
            return await self.store.tickets.open_in(None, limit=per_page,
                                                    offset=page * per_page)
        departments = [g.unit_code for g in actor.grants if g.role == "department_liaison"]
        scopes = await self.access.scope_units(actor, Action.VIEW_TICKETS)
        buildings: set[str] = set()
        for unit in scopes:
            if unit.kind != "department":
                buildings |= {u.code for u in await self.store.map.descendants(unit.code,
                                                                                "building")}
        if not buildings and not departments:
            raise Refused("tickets.not_staff")
        return await self.store.tickets.open_in(sorted(buildings), sorted(departments),
                                                limit=per_page, offset=page * per_page)

    async def visible_ticket(self, actor: Actor, ticket_id: int) -> tuple[Ticket, bool]:
        """A ticket for /ticket N: the reporter sees their own, staff those in scope.
        Returns the ticket and whether the viewer sees it as staff."""
        ticket = await self._get(ticket_id)
        if ticket.reporter_id == actor.user_id and not actor.is_staff:
            return ticket, False
        if await self._may(actor, Action.VIEW_TICKETS, ticket):
            return ticket, True
        if ticket.reporter_id == actor.user_id:
            return ticket, False
        raise Refused("ticket.unknown", id=ticket_id)

    async def render_ticket(self, locale: str, actor: Actor, ticket: Ticket, staff: bool) -> str:
        """`/ticket N`: the card with the whole text and note, and the timeline (a reply
        that long is split, never cut)."""
        if staff:
            text, _ = await self._card_text(locale, ticket, CardKind.STAFF, actor.user_id,
                                            whole=True)
        else:
            text, _ = views.card_text(locale, ticket, await self.store.map.get(
                ticket.building_code), self.settings.tz, None, whole=True)
        events = await self.store.tickets.events(ticket.id)
        names: dict[int, str] = {}
        for event in events:
            if event.actor_id and event.actor_id not in names:
                if event.actor_id == ticket.reporter_id:
                    names[event.actor_id] = views.reporter_label(
                        locale, ticket, await self.store.people.get(event.actor_id),
                        reveal=actor.superadmin) if staff else t(locale, "ticket.you")
                else:
                    person = await self.store.people.get(event.actor_id)
                    names[event.actor_id] = person.display_name if person else ""
        return f"{text}\n\n<b>{t(locale, 'ticket.timeline')}</b>\n" + \
            views.timeline(locale, events, self.settings.tz, names)
