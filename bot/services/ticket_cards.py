"""A ticket's copies and notices: the staff cards (and the backlog that queues a new ticket's
cards after its Submit is answered), editing every copy to the ticket's state, and the
notices to the reporter and into the ticket's staff thread (SPEC §4)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.i18n import escape, t
from bot.services import ticket_views as views
from bot.services.backups import Delivery, deliver_to, for_line
from bot.services.outbox import QUEUED_FOR, Priority
from bot.services.ticket_base import TicketBase
from bot.services.ticket_refs import card_ref, note_ref, topic_ref
from bot.services.ticket_views import CardKind
from bot.textsplit import split_html
from storage.models import Binding, Chat, Conflict, Person, Ticket, TicketLevel, Unit, WhistleItem

logger = logging.getLogger(__name__)
#: a reporter's notice that asks for stars, and what asks who entered a case for the caller's
#: verdict instead (回访)
ASKS_VERDICT = {"notice.resolved": "intake.notice_resolved"}


@dataclass(frozen=True)
class _CardFacts:
    building: Unit | None
    department: Unit | None
    reporter: Person | None
    taker: str | None
    item: WhistleItem | None = None


@dataclass(frozen=True)
class _Recipients:
    """What a new ticket's cards need, read before its transaction (which then holds the
    write lock for its writes only): the heads and their languages, the grid's chat."""

    grid_code: str
    heads: list[tuple[int, str]]
    binding: Binding | None
    chat: Chat | None
    chat_locale: str | None
    building: Unit | None
    reporter: Person | None


class TicketCards(TicketBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cards_failed: set[int] = set()
        self._cards_undone: set[int] = set()  # undone once (a Conflict): tried once more

    async def post_pending_cards(self, batch: int = 50) -> bool:
        """Queue the building heads' and the grid's cards of new tickets (Submit only flags
        them, so that a burst of Submits is answered first). True while more are waiting.
        A ticket closed meanwhile gets none; one whose cards fail is logged and left
        flagged for the next start, so it never holds back the others; one undone by the
        store for another's sake (`Conflict`: a deadlock, a stale plan) is tried once more
        at once."""
        waiting = await self.store.tickets.cards_pending(batch + 1, skip=self._cards_failed)
        again = False
        for ticket_id in waiting[:batch]:
            try:
                await self._post_cards_of(ticket_id)
                self._cards_undone.discard(ticket_id)
            except Conflict as exc:
                if ticket_id in self._cards_undone:
                    logger.error("the staff cards of #%s were undone twice (%s)", ticket_id, exc)
                    self._cards_undone.discard(ticket_id)
                    self._cards_failed.add(ticket_id)
                else:
                    logger.warning("the staff cards of #%s were undone (%s); once more",
                                   ticket_id, exc)
                    self._cards_undone.add(ticket_id)
                    again = True
            except Exception:
                logger.exception("the staff cards of #%s could not be queued", ticket_id)
                self._cards_failed.add(ticket_id)
        return again or len(waiting) > batch

    async def _post_cards_of(self, ticket_id: int) -> None:
        ticket = await self._get(ticket_id)
        reporter = await self.store.people.get(ticket.reporter_id)
        building = await self.store.map.get(ticket.building_code)
        known = await self._recipients(reporter, ticket.grid_code, building) \
            if reporter is not None and building is not None else None
        queued_for = QUEUED_FOR.set(ticket.source_update_id)  # what the cards answer
        try:
            async with self.store.transaction():
                fresh = await self.store.tickets.take_cards_pending(ticket_id)
                if fresh is not None:
                    ticket = fresh
                    if ticket.is_open:
                        await self._post_new_cards(ticket, known)
        finally:
            QUEUED_FOR.reset(queued_for)

    async def _recipients(self, reporter: Person, grid_code: str, building: Unit) -> _Recipients:
        heads = await self._holders(("building_head",), building.code, exact=True)
        binding = await self.store.map.binding(grid_code)
        # a chat bound through the map file is learned before its first card: a forum
        # gives each ticket its topic there too
        chat = await self.learn_chat(binding.chat_id) if binding is not None else None
        return _Recipients(
            grid_code=grid_code, heads=[(h, await self.people.locale_in(h)) for h in heads],
            binding=binding, chat=chat,
            chat_locale=(chat.locale if chat is not None and chat.locale else
                         self.settings.default_locale) if binding is not None else None,
            building=building, reporter=reporter)

    async def _post_new_cards(self, ticket: Ticket, known: _Recipients | None = None) -> None:
        """Cards to the building heads (private; a head away: to who stands in, AB岗) and
        to the grid's staff chat."""
        locales = dict(known.heads) if known is not None else {}
        heads = list(locales) if known is not None else await self._heads(ticket)
        grid_chat = known.binding if known is not None and known.grid_code == ticket.grid_code \
            else await self.store.map.binding(ticket.grid_code)
        for delivery in await self._deliveries(*heads):
            if delivery.fallback and grid_chat is not None:
                continue  # the grid's chat card is the next level's copy
            await self._send_card(ticket, delivery.recipient, 0, CardKind.HEAD,
                                  locales.get(delivery.recipient), known,
                                  on_behalf_of=delivery.on_behalf_of)
        await self._post_staff_card(ticket, ticket.grid_code, known)

    async def _deliveries(self, *user_ids: int) -> list[Delivery]:
        """Who receives what is addressed to these people (SPEC §11 AB岗: `deliver_to`),
        each once: a holder's own copy first, so one who also stands in for another holder
        gets their own, unmarked."""
        found: list[Delivery] = []
        for user_id in user_ids:
            found += await deliver_to(self.store, user_id, self.clock())
        found.sort(key=lambda d: d.on_behalf_of is not None)
        once: dict[int, Delivery] = {}
        for delivery in found:
            once.setdefault(delivery.recipient, delivery)
        return list(once.values())

    async def _post_staff_card(self, ticket: Ticket, unit_code: str,
                               known: _Recipients | None = None) -> None:
        if known is not None and known.grid_code == unit_code:
            binding, chat = known.binding, known.chat
        else:
            known = None
            binding = await self.store.map.binding(unit_code)
            chat = await self.store.map.chat(binding.chat_id) if binding is not None else None
        if binding is None:
            return
        if chat is not None and not chat.active:
            return
        if chat is not None and chat.is_forum and chat.can_manage_topics and \
                ticket.staff_thread_id is None and unit_code == ticket.grid_code:
            await self.outbox.call(
                binding.chat_id, "createForumTopic", {"name": views.topic_name(ticket)},
                priority=Priority.CARD, ref=topic_ref(ticket.id),
                dedupe_key=topic_ref(ticket.id))
            return
        thread = ticket.staff_thread_id if unit_code == ticket.grid_code and \
            ticket.staff_thread_id else binding.thread_id
        await self._send_card(ticket, binding.chat_id, thread or 0, CardKind.STAFF,
                              known.chat_locale if known is not None else None, known)

    async def topic_created(self, ticket_id: int, chat_id: int, thread_id: int) -> None:
        """Outbox hook: the ticket's forum topic exists; its card goes in."""
        await self.store.tickets.update(ticket_id, staff_thread_id=thread_id)
        ticket = await self._get(ticket_id)
        await self._send_card(ticket, chat_id, thread_id, CardKind.STAFF)

    async def _send_card(self, ticket: Ticket, chat_id: int, thread_id: int, kind: CardKind,
                         locale: str | None = None, known: _Recipients | None = None, *,
                         on_behalf_of: Person | None = None) -> None:
        locale = locale or await self.people.locale_in(chat_id)
        text, fits = await self._card_text(locale, ticket, kind, chat_id, known)
        text = for_line(locale, on_behalf_of) + text
        if not fits:
            await self._send_full_text(chat_id, locale, ticket, thread_id, Priority.CARD)
        await self.outbox.send(chat_id, text, priority=Priority.CARD, thread_id=thread_id,
                               buttons=views.staff_buttons(locale, ticket, kind),
                               ref=card_ref(ticket.id, kind))
        photos = ticket.photos
        for index, photo in enumerate(photos, 1):
            caption = f"#{ticket.id}" + (f" ({index}/{len(photos)})" if len(photos) > 1 else "")
            await self.outbox.call(chat_id, "sendPhoto",
                                   {"photo": photo, "caption": caption,
                                    **({"message_thread_id": thread_id} if thread_id else {})},
                                   priority=Priority.CARD, ref=note_ref(ticket.id))

    async def _send_full_text(self, chat_id: int, locale: str, ticket: Ticket, thread_id: int,
                              priority: int, quiet: bool = False) -> None:
        """The ticket's text on its own, split, never cut: it goes before a card or post
        whose text would not fit in one message (which then points to it)."""
        for part in split_html(t(locale, "ticket.full_text", id=ticket.id) + "\n" +
                               escape(ticket.text)):
            await self.outbox.send(chat_id, part, priority=priority, thread_id=thread_id,
                                   quiet=quiet, ref=note_ref(ticket.id))

    async def card_sent(self, ticket_id: int, kind: str, chat_id: int, message_id: int) -> None:
        """Outbox hook: remember a card so that later steps can edit it."""
        await self.store.tickets.add_card(ticket_id, chat_id, message_id, kind)

    async def _card_facts(self, ticket: Ticket, known: _Recipients | None = None) -> _CardFacts:
        """What every copy of a ticket's card shows, read once for all of them."""
        building = known.building if known is not None and known.building is not None and \
            known.building.code == ticket.building_code else \
            await self.store.map.get(ticket.building_code)
        department = await self.store.map.get(ticket.department_code) \
            if ticket.department_code else None
        reporter = known.reporter if known is not None and known.reporter is not None and \
            known.reporter.user_id == ticket.reporter_id else \
            await self.store.people.get(ticket.reporter_id)
        taker = None
        if ticket.assignee_id:
            taker_person = await self.store.people.get(ticket.assignee_id)
            taker = taker_person.display_name if taker_person else str(ticket.assignee_id)
        item = await self.store.whistles.item(ticket.whistle_item) if ticket.whistle_item \
            else None
        return _CardFacts(building, department, reporter, taker, item)

    async def _card_text(self, locale: str, ticket: Ticket, kind: CardKind, chat_id: int,
                         known: _Recipients | None = None,
                         facts: _CardFacts | None = None, whole: bool = False
                         ) -> tuple[str, bool]:
        facts = facts or await self._card_facts(ticket, known)
        reporter = None
        if kind in (CardKind.HEAD, CardKind.STAFF):
            reveal = chat_id in self.settings.superadmins
            reporter = views.reporter_label(locale, ticket, facts.reporter, reveal=reveal)
        if kind == CardKind.BUILDING:
            head = t(locale, "ticket.building_post", id=ticket.id,
                     domain=views.domain_label(locale, ticket.domain), count=ticket.me_too)
            if views.text_fits(ticket):
                return f"{head}\n\n{escape(ticket.text)}", True
            return f"{head}\n\n{t(locale, 'ticket.text_above')}", False
        return views.card_text(locale, ticket, facts.building, self.settings.tz, reporter,
                               facts.department, facts.taker, whole=whole, item=facts.item)

    async def refresh_cards(self, ticket: Ticket) -> None:
        """Edit every copy of the ticket to its current state (coalesced in the outbox)."""
        cards = [c for c in await self.store.tickets.cards(ticket.id)
                 if c.kind != CardKind.OFFER]
        facts = await self._card_facts(ticket) if cards else None
        holders: dict[CardKind, list[int]] = {}  # whose private cards these are (AB岗)
        for card in cards:
            kind = CardKind(card.kind)
            locale = await self.people.locale_in(card.chat_id)
            text, _ = await self._card_text(locale, ticket, kind, card.chat_id, facts=facts)
            if card.chat_id > 0 and kind in (CardKind.HEAD, CardKind.DEPARTMENT):
                if kind not in holders:
                    holders[kind] = await self._heads(ticket) if kind == CardKind.HEAD else \
                        await self._holders(("department_liaison",),
                                            ticket.department_code or "", exact=True)
                if card.chat_id not in holders[kind]:
                    text = for_line(locale, await self._stood_in_for(
                        card.chat_id, holders[kind])) + text
            if kind == CardKind.BUILDING:
                buttons = views.me_too_buttons(locale, ticket) if ticket.is_open else []
            else:
                buttons = views.staff_buttons(locale, ticket, kind)
            await self.outbox.edit(card.chat_id, card.message_id, text,
                                   priority=Priority.PERSONAL, buttons=buttons,
                                   ref=note_ref(ticket.id))

    async def _stood_in_for(self, chat_id: int, holders: list[int]) -> Person | None:
        """The holder whose card this person holds as their stand-in (AB岗), while away."""
        for delivery in await self._deliveries(*holders):
            if delivery.recipient == chat_id:
                return delivery.on_behalf_of
        return None

    async def _card_in(self, ticket: Ticket, chat_id: int, kind: CardKind) -> int | None:
        """The message id of the ticket's card of this kind in a chat, if it went out."""
        found = None
        for card in await self.store.tickets.cards(ticket.id):
            if card.chat_id == chat_id and card.kind == kind:
                found = card.message_id
        return found

    async def _tell_reporter(self, ticket: Ticket, key: str, ref: str | None = None,
                             buttons: views.Buttons | None = None, **values: Any) -> None:
        """A step, told in the reporter's language; a long note is split, never cut (the
        buttons go with the last part, the one to rate; a reply to any part answers). An
        erased reporter (SPEC §14) is told nothing."""
        reporter = await self.store.people.get(ticket.reporter_id)
        if reporter is not None and reporter.erased:
            return
        locale = self.people.locale_of(reporter)
        text = t(locale, key, id=ticket.id, **values)
        if ticket.entered:  # told to who entered the case, for its caller
            if key in ASKS_VERDICT:
                text = t(locale, ASKS_VERDICT[key], id=ticket.id, **values)
                buttons = views.verdict_buttons(locale, ticket.id)
            text = t(locale, "intake.notice_for", **views.source_values(locale, ticket)) + \
                "\n" + text
        parts = split_html(text)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            await self.outbox.send(ticket.reporter_id, part, priority=Priority.PERSONAL,
                                   ref=ref or note_ref(ticket.id),
                                   buttons=buttons if last else None)

    async def _tell_heads(self, ticket: Ticket, key: str, level: TicketLevel | None = None,
                          **values: Any) -> None:
        """A note to each building head, privately, in reply to their card of the ticket
        (the private chat's thread of that ticket)."""
        for delivery in await self._deliveries(*await self._heads(ticket)):
            to = delivery.recipient
            locale = await self.people.locale_for(to)
            if level is not None:
                values["level"] = t(locale, views.LEVEL_KEY[level])
            await self.outbox.send(
                to, for_line(locale, delivery.on_behalf_of) +
                t(locale, key, id=ticket.id, **values), priority=Priority.PERSONAL,
                reply_to=await self._card_in(ticket, to, CardKind.HEAD), ref=note_ref(ticket.id))

    async def _staff_notice(self, ticket: Ticket, key: str, photo: str | None = None,
                            **values: Any) -> None:
        """A note in the ticket's staff thread: its topic, or a reply to its staff card
        (with the reporter's photo after it, copied by its file id, never forwarded)."""
        await self._unit_notice(ticket, ticket.grid_code, key, photo=photo, **values)
        if ticket.level == TicketLevel.COMMUNITY:
            await self._unit_notice(ticket, ticket.community_code, key, photo=photo, **values)

    async def _unit_notice(self, ticket: Ticket, unit_code: str, key: str,
                           level: TicketLevel | None = None, photo: str | None = None,
                           **values: Any) -> None:
        binding = await self.store.map.binding(unit_code)
        if binding is None:
            return
        locale = await self.people.locale_in(binding.chat_id)
        if level is not None:
            values["level"] = t(locale, views.LEVEL_KEY[level])
        thread_id = binding.thread_id
        reply_to = None
        if unit_code == ticket.grid_code and ticket.staff_thread_id:
            thread_id = ticket.staff_thread_id
        else:
            reply_to = await self._card_in(ticket, binding.chat_id, CardKind.STAFF)
        for part in split_html(t(locale, key, id=ticket.id, **values)):
            await self.outbox.send(binding.chat_id, part, priority=Priority.PERSONAL,
                                   thread_id=thread_id or 0, reply_to=reply_to,
                                   ref=note_ref(ticket.id))
        if photo:
            payload: dict[str, Any] = {"photo": photo, "caption": f"#{ticket.id}"}
            if thread_id:
                payload["message_thread_id"] = thread_id
            if reply_to:
                payload["reply_parameters"] = {"message_id": reply_to,
                                               "allow_sending_without_reply": True}
            await self.outbox.call(binding.chat_id, "sendPhoto", payload,
                                   priority=Priority.PERSONAL, ref=note_ref(ticket.id))
