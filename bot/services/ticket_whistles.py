"""The whistle catalogue at work (吹哨清单, 积分管理, SPEC §11): the two-step whistle picker
(a category, then one of its items, whose department it goes to; "Other" keeps the free
department picker) and the whistling staff's rating of the department's work (评价), which the
departments' board weighs as a third of a department's score (bot/services/boards.py).

The whistle itself, with or without an item, is a step of the lifecycle
(`TicketLifecycle.whistle`); resolving a whistle the department accepted asks its whistler
for the rating (`TicketLifecycle._ask_whistle_rating`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Refused
from bot.services.ticket_lifecycle import TicketLifecycle, rateable_whistle
from bot.services.ticket_states import TicketAction
from storage.models import Ticket, WhistleItem, WhistleRating


@dataclass(frozen=True)
class WhistleMenu:
    """What the picker shows: the catalogue's items (all, or one category's) and the
    departments' names by code."""

    ticket: Ticket
    items: list[WhistleItem]
    departments: dict[str, str]
    category: str | None = None


class TicketWhistles(TicketLifecycle):
    async def whistle_menu(self, actor: Actor, ticket_id: int,
                           category_key: str | None = None) -> WhistleMenu:
        """The picker for a ticket the actor may whistle: every item of the catalogue, or the
        items of the category `category_key` names (`ticket_views.category_key`)."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.WHISTLE)
        self.check(TicketAction.WHISTLE, ticket)
        departments = {u.code: u.name for u in await self.store.map.departments()}
        items = [i for i in await self.store.whistles.items()
                 if i.department_code in departments]
        if category_key is None:
            return WhistleMenu(ticket, items, departments)
        for name, members in views.categories(items):
            if views.category_key(name) == category_key:
                return WhistleMenu(ticket, members, departments, name)
        raise Refused("whistle.category_gone", id=ticket.id)

    async def rate_department(self, actor: Actor, ticket_id: int, stars: int, chat_id: int,
                              message_id: int) -> Ticket:
        """评价: the whistler's 1–5 on the department's work, once per whistle; a reply to
        the message pressed (`chat_id`, `message_id`) then adds a comment."""
        ticket = await self._get(ticket_id)
        if not 1 <= stars <= 5:
            raise Refused("button.stale")
        whistle = rateable_whistle(await self.store.tickets.events(ticket.id))
        if whistle is None:
            raise Refused("whistle.not_rateable", id=ticket.id)
        if whistle.actor_id != actor.user_id:
            raise Refused("whistle.rating_not_yours", id=ticket.id)
        data = whistle.data or {}
        department = str(data.get("department") or "")
        item = data.get("item")
        points = data.get("points")
        async with self.store.transaction():
            added = await self.store.whistles.add_rating(WhistleRating(
                whistle_event=whistle.id, ticket_id=ticket.id, department_code=department,
                item_code=str(item) if item else None,
                points=points if isinstance(points, int) else None,
                rater_id=actor.user_id, stars=stars, at=self.clock()))
            if not added:
                raise Refused("whistle.already_rated", id=ticket.id)
            await self._step(TicketAction.RATE_DEPARTMENT, ticket, actor.user_id,
                             note=str(stars),
                             event_data={"department": department, "stars": stars})
            await self.store.tickets.add_prompt(
                chat_id, message_id, actor.user_id, ticket.id,
                views.ACTION_CODES[TicketAction.COMMENT_DEPARTMENT])
        return ticket

    async def comment_department(self, actor: Actor, ticket_id: int, text: str) -> Ticket:
        """The whistler's words on their rating, kept with it and in the timeline."""
        ticket = await self._get(ticket_id)
        whistle = rateable_whistle(await self.store.tickets.events(ticket.id))
        rating = await self.store.whistles.rating(whistle.id) if whistle is not None else None
        if rating is None or rating.rater_id != actor.user_id:
            raise Refused("button.stale")
        text = text.strip()
        if not text:
            raise Refused("ticket.need_words")
        async with self.store.transaction():
            await self.store.whistles.set_comment(rating.whistle_event, text)
            await self._step(TicketAction.COMMENT_DEPARTMENT, ticket, actor.user_id, note=text)
        return ticket
