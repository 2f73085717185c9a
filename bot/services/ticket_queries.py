"""Reading tickets: `/my`, `/tickets` (open ones in a staff member's scope, by pages, with
filters) and `/ticket N` with its timeline (SPEC §4, §11).

Sent privately, `/tickets` and `/ticket N` show each ticket as its card with the buttons the
viewer has on the staff chat's card (`card_views`); the cards shown are kept as the ticket's
live copies in that chat (`cards_shown`), so each later step edits them as it edits every
other copy, and a press on them takes the one path every card's press takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import escape, t
from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Refused
from bot.services.ticket_base import liaison_of
from bot.services.ticket_cards import TicketCards
from bot.services.ticket_views import CardKind
from bot.textsplit import split_html
from storage.models import DOMAINS, Ticket
from storage.tickets import OpenFilters

PER_PAGE = 10
OVERDUE, MINE = "overdue", "mine"
#: at most this many filters at once (they travel in the "More" button's data)
MAX_FILTERS = 3


@dataclass(frozen=True)
class TicketPage:
    """A page of `/tickets`: its tickets, how many match in all, the filters as given."""

    tickets: list[Ticket]
    total: int
    page: int
    filters: tuple[str, ...]

    @property
    def first(self) -> int:
        return self.page * PER_PAGE + 1

    @property
    def more(self) -> bool:
        return (self.page + 1) * PER_PAGE < self.total


@dataclass(frozen=True)
class CardView:
    """A ticket's card as one viewer sees it privately: the kind of copy (the buttons they
    have on the staff chat's card), its text, and the ticket's text in parts before it when
    the card cannot hold it."""

    ticket_id: int
    kind: CardKind
    text: str
    buttons: views.Buttons
    above: list[str]


class TicketQueries(TicketCards):
    async def my_tickets(self, user_id: int) -> list[Ticket]:
        return await self.store.tickets.of_reporter(user_id)

    async def open_tickets(self, actor: Actor, page: int = 0,
                           filters: tuple[str, ...] = ()) -> TicketPage:
        """Open tickets in the actor's scope, soonest deadline first, `PER_PAGE` a page,
        narrowed by `filters`: `overdue`, `mine`, a domain, a unit code (all must hold)."""
        narrowed = await self._filters(actor, filters)
        offset = max(page, 0) * PER_PAGE
        if actor.superadmin:
            tickets, total = await self.store.tickets.open_in(
                None, limit=PER_PAGE, offset=offset, filters=narrowed)
            return TicketPage(tickets, total, page, filters)
        departments = [g.unit_code for g in actor.grants if g.role == "department_liaison"]
        scope: dict[str, set[str]] = {"building": set(), "grid": set(), "community": set()}
        for unit in await self.access.scope_units(actor, Action.VIEW_TICKETS):
            if unit.kind in ("community", "grid", "building"):
                scope[unit.kind].add(unit.code)
            elif unit.kind == "estate":
                scope["building"] |= {u.code for u in await self.store.map.descendants(
                    unit.code, "building")}
        if not any(scope.values()) and not departments:
            raise Refused("tickets.not_staff")
        tickets, total = await self.store.tickets.open_in(
            sorted(scope["building"]), sorted(departments), limit=PER_PAGE, offset=offset,
            grid_codes=sorted(scope["grid"]), community_codes=sorted(scope["community"]),
            filters=narrowed)
        return TicketPage(tickets, total, page, filters)

    async def _filters(self, actor: Actor, given: tuple[str, ...]) -> OpenFilters | None:
        """The filters of `/tickets` read and checked: an unknown word, a unit outside the
        viewer's scope or too many filters are refused, naming the problem."""
        if not given:
            return None
        if len(given) > MAX_FILTERS:
            raise Refused("tickets.too_many_filters", most=MAX_FILTERS)
        domain = due_by = involving = column = None
        codes: tuple[str, ...] = ()
        for word in given:
            lower = word.lower()
            if lower == OVERDUE:
                due_by = self.clock()
            elif lower == MINE:
                involving = actor.user_id
            elif lower in DOMAINS:
                domain = lower
            else:
                unit = await self.store.map.get(word.upper())
                if unit is None:
                    raise Refused("tickets.bad_filter", text=word[:30])
                if unit.kind != "department" and \
                        not await self.access.can(actor, Action.VIEW_TICKETS, unit.code):
                    raise Refused("tickets.filter_out_of_scope", code=unit.code)
                if unit.kind == "estate":
                    column = "building"
                    codes = tuple(u.code for u in await self.store.map.descendants(
                        unit.code, "building"))
                else:
                    column, codes = unit.kind, (unit.code,)
        return OpenFilters(domain=domain, due_by=due_by, column=column, codes=codes,
                           involving=involving)

    async def card_kind_for(self, actor: Actor, ticket: Ticket) -> CardKind:
        """The copy a viewer would work the ticket from: a department's (Accept, Decline,
        Resolve) for its liaison, the staff chat's for grid and community staff, a building
        head's otherwise."""
        staff = await self.access.can(actor, Action.WHISTLE, ticket.building_code)
        if liaison_of(actor, ticket) and not staff:
            return CardKind.DEPARTMENT
        if staff:
            return CardKind.STAFF
        if await self.access.can(actor, Action.HANDLE_TICKET, ticket.building_code):
            return CardKind.HEAD
        return CardKind.DEPARTMENT

    async def card_views(self, actor: Actor, locale: str,
                         tickets: list[Ticket]) -> list[CardView]:
        """Each ticket's card as the viewer works it privately (their own buttons)."""
        shown = []
        for ticket in tickets:
            kind = await self.card_kind_for(actor, ticket)
            text, fits = await self._card_text(locale, ticket, kind, actor.user_id)
            above = [] if fits else split_html(
                t(locale, "ticket.full_text", id=ticket.id) + "\n" + escape(ticket.text))
            shown.append(CardView(ticket.id, kind, text,
                                  views.staff_buttons(locale, ticket, kind), above))
        return shown

    async def cards_shown(self, chat_id: int, shown: list[tuple[int, int, CardKind]]) -> None:
        """The cards a person was shown privately, (ticket, message id, kind): the ticket's
        live copies in that chat from now on (every step edits them)."""
        async with self.store.transaction():
            await self.store.tickets.show_cards(
                chat_id, [(ticket_id, message_id, str(kind))
                          for ticket_id, message_id, kind in shown])

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
        return f"{text}\n\n{await self.render_timeline(locale, actor, ticket, staff)}"

    async def render_timeline(self, locale: str, actor: Actor, ticket: Ticket,
                              staff: bool) -> str:
        """A ticket's timeline: every step, when and who (an anonymous reporter unnamed)."""
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
                    names[event.actor_id] = "" if person is None else t(
                        locale, "privacy.erased") if person.erased else person.display_name
        return f"<b>{t(locale, 'ticket.timeline')}</b>\n" + \
            views.timeline(locale, events, self.settings.tz, names)
