"""Voice of the residents (民声e通道): drafts, tickets and their lifecycle (SPEC §4).

Every transition is one call that checks permission and state again, writes the state change,
the timeline row and every notice (outbox) in one transaction. Reporters are told in their own
language at each step; anonymous reporters are never named to anyone but superadmins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.i18n import t
from bot.services.outbox import Priority
from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Key, Refused
from bot.textsplit import LIMIT, split_html, visible_length
from storage.inbox import current_update
from storage.models import (DOMAINS, OPEN_STATUSES, Binding, Chat, Draft, Person, Ticket,
                            Unit)

logger = logging.getLogger(__name__)
LEVELS = ("building", "grid", "community")
REMIND_AT = 0.75
MAX_PHOTOS = 10  # per opinion


@dataclass(frozen=True)
class _CardFacts:
    building: Unit | None
    department: Unit | None
    reporter: Person | None
    taker: str | None


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


@dataclass(frozen=True)
class DraftView:
    parts: list[str]
    buttons: views.Buttons


class TicketService(Service):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: wakes the deadline watcher: something may be due at the given time (None: now)
        self.changed: Callable[[float | None], None] = lambda when=None: None
        #: wakes the backlog that queues new tickets' staff cards (`post_pending_cards`)
        self.cards_waiting: Callable[[], None] = lambda: None
        self._cards_failed: set[int] = set()

    # ------------------------------------------------------------------ drafts

    async def draft(self, user_id: int) -> Draft | None:
        return await self.store.drafts.get(user_id)

    async def add_to_draft(self, user_id: int, text: str, photo_file_id: str | None) -> Draft:
        """Start a draft, or add a further message to the open one."""
        async with self.store.transaction():
            draft = await self.draft(user_id)
            data: dict[str, Any] = dict(draft.data) if draft else {
                "text": "", "photo": None, "domain": None, "anonymous": False}
            if text:
                data["text"] = f"{data['text']}\n{text}" if data["text"] else text
            if photo_file_id:
                photos = _draft_photos(data)
                if photo_file_id not in photos and len(photos) < MAX_PHOTOS:
                    data["photos"] = [*photos, photo_file_id]
                data.pop("photo", None)
            data["card"] = None
            await self.store.drafts.set(user_id, data)
        return await self._require_draft(user_id)

    async def draft_shown(self, user_id: int, message_id: int) -> None:
        """Remember which message is the draft's card: buttons on older cards are stale."""
        async with self.store.transaction():
            draft = await self._require_draft(user_id)
            await self.store.drafts.set(user_id, {**draft.data, "card": message_id})

    async def draft_choice(self, user_id: int, message_id: int, choice: str) -> Draft:
        """A domain or the anonymous toggle, pressed on the current draft card."""
        async with self.store.transaction():
            draft = await self._draft_for_card(user_id, message_id)
            data = dict(draft.data)
            if choice == "anon":
                data["anonymous"] = not data.get("anonymous", False)
            elif choice == "unsure":
                data["domain"] = None
            elif choice in DOMAINS:
                data["domain"] = choice
            else:
                raise Refused("button.stale")
            await self.store.drafts.set(user_id, data)
        return await self._require_draft(user_id)

    async def cancel_draft(self, user_id: int, message_id: int) -> None:
        async with self.store.transaction():
            await self._draft_for_card(user_id, message_id)
            await self.store.drafts.clear(user_id)

    def draft_view(self, locale: str, draft: Draft) -> DraftView:
        data = draft.data
        return DraftView(
            parts=views.draft_text(locale, data["text"], data.get("domain"),
                                   data.get("anonymous", False), bool(_draft_photos(data))),
            buttons=views.draft_buttons(locale, data.get("domain"), data.get("anonymous", False)))

    async def _require_draft(self, user_id: int) -> Draft:
        draft = await self.draft(user_id)
        if draft is None:
            raise Refused("draft.none")
        return draft

    async def _draft_for_card(self, user_id: int, message_id: int) -> Draft:
        draft = await self._require_draft(user_id)
        if draft.data.get("card") != message_id:
            raise Refused("button.stale")
        return draft

    # ------------------------------------------------------------------ submit

    async def submit(self, user_id: int, message_id: int) -> Ticket:
        """Submit the draft: ticket #N, receipt, building heads' cards, the grid's card."""
        person = await self.store.people.get(user_id)
        draft = await self._draft_for_card(user_id, message_id)
        if person is None or not person.building_code:
            raise Refused("draft.join_first")
        since = self.clock() - 3600
        if await self.store.tickets.count_since(user_id, since) >= self.settings.opinions_per_hour:
            raise Refused("draft.rate_limited", limit=self.settings.opinions_per_hour)
        chain = await self.store.map.ancestors(person.building_code)
        grid = next((u for u in chain if u.kind == "grid"), None)
        community = next((u for u in chain if u.kind == "community"), None)
        if grid is None or community is None:
            raise Refused("draft.join_first")
        mark = current_update.get()
        now = self.clock()
        deadlines = self.settings.deadlines("routine")
        photos = _draft_photos(draft.data)
        async with self.store.transaction():
            ticket = await self.store.tickets.create(
                reporter_id=user_id, anonymous=bool(draft.data.get("anonymous")),
                building_code=person.building_code, grid_code=grid.code,
                community_code=community.code, domain=draft.data.get("domain"),
                text=draft.data["text"] or "",
                photo_file_id=photos[0] if photos else None, more_photos=tuple(photos[1:]),
                source_update_id=mark.update_id if mark else None, cards_pending=True,
                **self._due_fields("ack", now, deadlines.acknowledge.total_seconds()))
            if ticket is None:  # this Submit was handled before a restart
                raise Refused("draft.already_submitted")
            await self.store.drafts.clear(user_id)
            await self.store.tickets.add_event(ticket.id, user_id, "created")
            locale = self.people.locale_of(person)
            due = deadlines.acknowledge
            await self.outbox.send(
                user_id, t(locale, "ticket.receipt", id=ticket.id,
                           hours=_hours_text(locale, due.total_seconds())),
                priority=Priority.PERSONAL)
            # the draft card loses its buttons; the receipt above is what the resident waits for
            await self.outbox.edit(user_id, message_id, t(locale, "draft.submitted", id=ticket.id),
                                   priority=Priority.CARD)
            # the staff cards follow once the people being answered have their answers
            self.store.db.after_commit(self.cards_waiting)
        self.changed(ticket.remind_at)
        return ticket

    async def post_pending_cards(self, batch: int = 50) -> bool:
        """Queue the building heads' and the grid's cards of new tickets (Submit only flags
        them, so that a burst of Submits is answered first). True while more are waiting.
        A ticket closed meanwhile gets none; one whose cards fail is logged and left
        flagged for the next start, so it never holds back the others."""
        waiting = await self.store.tickets.cards_pending(batch + 1, skip=self._cards_failed)
        for ticket_id in waiting[:batch]:
            try:
                await self._post_cards_of(ticket_id)
            except Exception:
                logger.exception("the staff cards of #%s could not be queued", ticket_id)
                self._cards_failed.add(ticket_id)
        return len(waiting) > batch

    async def _post_cards_of(self, ticket_id: int) -> None:
        ticket = await self._get(ticket_id)
        reporter = await self.store.people.get(ticket.reporter_id)
        building = await self.store.map.get(ticket.building_code)
        known = await self._recipients(reporter, ticket.grid_code, building) \
            if reporter is not None and building is not None else None
        async with self.store.transaction():
            if await self.store.tickets.take_cards_pending(ticket_id):
                ticket = await self._get(ticket_id)
                if ticket.is_open:
                    await self._post_new_cards(ticket, known)

    async def _recipients(self, reporter: Person, grid_code: str, building: Unit) -> _Recipients:
        heads = await self._holders(("building_head",), building.code, exact=True)
        binding = await self.store.map.binding(grid_code)
        chat = await self.store.map.chat(binding.chat_id) if binding is not None else None
        return _Recipients(
            grid_code=grid_code, heads=[(h, await self.people.locale_in(h)) for h in heads],
            binding=binding, chat=chat,
            chat_locale=(chat.locale if chat is not None and chat.locale else
                         self.settings.default_locale) if binding is not None else None,
            building=building, reporter=reporter)

    async def _post_new_cards(self, ticket: Ticket, known: _Recipients | None = None) -> None:
        """Cards to the building heads (private) and to the grid's staff chat."""
        if known is not None:
            for head_id, locale in known.heads:
                await self._send_card(ticket, head_id, 0, "head", locale, known)
        else:
            for head_id in await self._holders(("building_head",), ticket.building_code,
                                               exact=True):
                await self._send_card(ticket, head_id, 0, "head")
        await self._post_staff_card(ticket, ticket.grid_code, known)

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
                priority=Priority.CARD, ref=f"ttopic:{ticket.id}",
                dedupe_key=f"ttopic:{ticket.id}")
            return
        thread = ticket.staff_thread_id if unit_code == ticket.grid_code and \
            ticket.staff_thread_id else binding.thread_id
        await self._send_card(ticket, binding.chat_id, thread or 0, "staff",
                              known.chat_locale if known is not None else None, known)

    async def topic_created(self, ticket_id: int, chat_id: int, thread_id: int) -> None:
        """Outbox hook: the ticket's forum topic exists; its card goes in."""
        await self.store.tickets.update(ticket_id, staff_thread_id=thread_id)
        ticket = await self._get(ticket_id)
        await self._send_card(ticket, chat_id, thread_id, "staff")

    async def _send_card(self, ticket: Ticket, chat_id: int, thread_id: int, kind: str,
                         locale: str | None = None, known: _Recipients | None = None) -> None:
        locale = locale or await self.people.locale_in(chat_id)
        text, fits = await self._card_text(locale, ticket, kind, chat_id, known)
        if not fits:
            await self._send_full_text(chat_id, locale, ticket, thread_id, Priority.CARD)
        await self.outbox.send(chat_id, text, priority=Priority.CARD, thread_id=thread_id,
                               buttons=views.staff_buttons(locale, ticket, kind),
                               ref=f"tcard:{ticket.id}:{kind}")
        photos = ticket.photos
        for index, photo in enumerate(photos, 1):
            caption = f"#{ticket.id}" + (f" ({index}/{len(photos)})" if len(photos) > 1 else "")
            await self.outbox.call(chat_id, "sendPhoto",
                                   {"photo": photo, "caption": caption,
                                    **({"message_thread_id": thread_id} if thread_id else {})},
                                   priority=Priority.CARD)

    async def _send_full_text(self, chat_id: int, locale: str, ticket: Ticket, thread_id: int,
                              priority: int, quiet: bool = False) -> None:
        """The ticket's text on its own, split, never cut: it goes before a card or post
        whose text would not fit in one message (which then points to it)."""
        for part in split_html(t(locale, "ticket.full_text", id=ticket.id) + "\n" +
                               views.escape(ticket.text)):
            await self.outbox.send(chat_id, part, priority=priority, thread_id=thread_id,
                                   quiet=quiet)

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
        return _CardFacts(building, department, reporter, taker)

    async def _card_text(self, locale: str, ticket: Ticket, kind: str, chat_id: int,
                         known: _Recipients | None = None,
                         facts: _CardFacts | None = None, whole: bool = False
                         ) -> tuple[str, bool]:
        facts = facts or await self._card_facts(ticket, known)
        building, department, taker = facts.building, facts.department, facts.taker
        reporter = None
        if kind in ("head", "staff"):
            reveal = chat_id in self.settings.superadmins
            reporter = views.reporter_label(locale, ticket, facts.reporter, reveal=reveal)
        if kind == "building":
            head = t(locale, "ticket.building_post", id=ticket.id,
                     domain=views.domain_label(locale, ticket.domain), count=ticket.me_too)
            if views.text_fits(ticket):
                return f"{head}\n\n{views.escape(ticket.text)}", True
            return f"{head}\n\n{t(locale, 'ticket.text_above')}", False
        return views.card_text(locale, ticket, building, self.settings.tz, reporter, department,
                               taker, whole=whole)

    async def refresh_cards(self, ticket: Ticket) -> None:
        """Edit every copy of the ticket to its current state (coalesced in the outbox)."""
        cards = [c for c in await self.store.tickets.cards(ticket.id) if c.kind != "offer"]
        facts = await self._card_facts(ticket) if cards else None
        for card in cards:
            locale = await self.people.locale_in(card.chat_id)
            text, _ = await self._card_text(locale, ticket, card.kind, card.chat_id,
                                            facts=facts)
            if card.kind == "building":
                buttons = [[views.button(t(locale, "btn.me_too", count=ticket.me_too),
                                         f"t:me:{ticket.id}")]] if ticket.is_open else []
            else:
                buttons = views.staff_buttons(locale, ticket, card.kind)
            await self.outbox.edit(card.chat_id, card.message_id, text,
                                   priority=Priority.PERSONAL, buttons=buttons)

    # ------------------------------------------------------------------ lifecycle

    async def acknowledge(self, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        if ticket.status != "new":
            raise Refused("ticket.bad_state", id=ticket.id,
                          state=Key("status." + ticket.status))
        deadlines = self.settings.deadlines(ticket.urgency)
        return await self._transition(
            ticket, actor, "acknowledged", {"new"}, "acknowledged",
            fields=self._due_fields("resolve", ticket.created_at, deadlines.resolve.total_seconds()),
            reporter_key="notice.acknowledged")

    async def set_urgency(self, actor: Actor, ticket_id: int, urgency: str) -> Ticket:
        if urgency not in ("routine", "major", "urgent"):
            raise Refused("button.stale")
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self._require_open(ticket)
        fields: dict[str, Any] = {"urgency": urgency}
        if ticket.due_kind and ticket.due_from is not None:
            span = getattr(self.settings.deadlines(urgency),
                           {"ack": "acknowledge", "accept": "accept", "resolve": "resolve"}
                           [ticket.due_kind]).total_seconds()
            fields.update(self._due_fields(ticket.due_kind, ticket.due_from, span))
        return await self._transition(ticket, actor, ticket.status, set(OPEN_STATUSES),
                                      "urgency", fields=fields, note=urgency)

    async def escalate(self, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.ESCALATE)
        if ticket.level != "building" or ticket.status not in ("new", "acknowledged"):
            raise Refused("ticket.bad_state", id=ticket.id, state=Key("status." + ticket.status))
        deadlines = self.settings.deadlines(ticket.urgency)
        ticket = await self._transition(
            ticket, actor, "escalated", {"new", "acknowledged"}, "escalated",
            fields={"level": "grid", **self._due_fields(
                "resolve", ticket.created_at, deadlines.resolve.total_seconds())},
            reporter_key="notice.escalated", staff_key="staff.escalated")
        return ticket

    async def departments(self, actor: Actor, ticket_id: int) -> tuple[Ticket, list[Unit]]:
        """The whistle's department picker: the domain's lead department first."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.WHISTLE)
        if ticket.status not in ("new", "acknowledged", "escalated"):
            raise Refused("ticket.bad_state", id=ticket.id, state=Key("status." + ticket.status))
        all_units = await self.store.map.departments()
        leads = [u for u in all_units if ticket.domain and ticket.domain in u.domains]
        return ticket, leads + [u for u in all_units if u not in leads]

    async def whistle(self, actor: Actor, ticket_id: int, department_code: str) -> Ticket:
        """吹哨: post the ticket to a department's chat with an Accept button."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.WHISTLE)
        department = await self.store.map.get(department_code)
        if department is None or department.kind != "department":
            raise Refused("map.unknown_code", code=department_code)
        if ticket.status not in ("new", "acknowledged", "escalated"):
            raise Refused("ticket.bad_state", id=ticket.id, state=Key("status." + ticket.status))
        deadlines = self.settings.deadlines(ticket.urgency)
        level = "grid" if ticket.level == "building" else ticket.level
        now = self.clock()
        async with self.store.transaction():
            ticket = await self._apply(
                ticket, actor, "whistled", {"new", "acknowledged", "escalated"}, "whistled",
                fields={"department_code": department.code, "level": level,
                        **self._due_fields("accept", now, deadlines.accept.total_seconds())},
                note=department.name, event_data={"department": department.code})
            binding = await self.store.map.binding(department.code)
            if binding is not None:
                await self._send_card(ticket, binding.chat_id, binding.thread_id, "department")
            for liaison in await self._holders(("department_liaison",), department.code,
                                               exact=True):
                locale = await self.people.locale_for(liaison)
                await self.outbox.send(liaison, t(locale, "dept.whistled", id=ticket.id,
                                                  department=department.name),
                                       priority=Priority.PERSONAL)
            await self._tell_reporter(ticket, "notice.whistled", department=department.name)
        self.changed()
        return ticket

    async def accept(self, actor: Actor, ticket_id: int) -> Ticket:
        """听哨报到: the department accepts."""
        ticket = await self._department_ticket(actor, ticket_id)
        if ticket.status != "whistled":
            raise Refused("ticket.bad_state", id=ticket.id, state=Key("status." + ticket.status))
        deadlines = self.settings.deadlines(ticket.urgency)
        return await self._transition(
            ticket, actor, "accepted", {"whistled"}, "accepted",
            fields=self._due_fields("resolve", self.clock(), deadlines.resolve.total_seconds()),
            reporter_key="notice.accepted", staff_key="staff.accepted")

    async def decline(self, actor: Actor, ticket_id: int, reason: str) -> Ticket:
        """退回: the department returns the ticket to the grid, with a reason."""
        ticket = await self._department_ticket(actor, ticket_id)
        if ticket.status != "whistled":
            raise Refused("ticket.bad_state", id=ticket.id, state=Key("status." + ticket.status))
        deadlines = self.settings.deadlines(ticket.urgency)
        department = await self.store.map.get(ticket.department_code or "")
        return await self._transition(
            ticket, actor, "escalated", {"whistled"}, "declined", note=reason,
            fields={"department_code": None, "level": "grid", **self._due_fields(
                "resolve", ticket.created_at, deadlines.resolve.total_seconds())},
            reporter_key="notice.declined",
            reporter_values={"department": department.name if department else ""},
            staff_key="staff.declined",
            staff_values={"department": department.name if department else "", "reason": reason},
            event_data={"department": ticket.department_code})

    async def resolve(self, actor: Actor, ticket_id: int, note: str) -> Ticket:
        """办结 with a result note; the reporter is asked to rate."""
        ticket = await self._get(ticket_id)
        await self._check_resolve(actor, ticket)
        note = note.strip()
        if not note:
            raise Refused("ticket.need_words")
        async with self.store.transaction():
            ticket = await self._apply(
                ticket, actor, "resolved", set(OPEN_STATUSES), "resolved", note=note,
                fields={"result_note": note, "resolved_at": self.clock(), "due_kind": None,
                        "due_at": None, "remind_at": None})
            await self._tell_reporter(ticket, "notice.resolved",
                                      buttons=views.rating_buttons(ticket.id), note=note)
            await self._staff_notice(ticket, "staff.resolved", note=note)
        self.changed()
        return ticket

    async def reject(self, actor: Actor, ticket_id: int, reason: str) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self._require_open(ticket)
        if not reason.strip():
            raise Refused("ticket.need_words")
        return await self._transition(
            ticket, actor, "rejected", set(OPEN_STATUSES), "rejected", note=reason.strip(),
            fields={"due_kind": None, "due_at": None, "remind_at": None},
            reporter_key="notice.rejected", reporter_values={"reason": reason.strip()})

    async def merge(self, actor: Actor, ticket_id: int, target_text: str) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self._require_open(ticket)
        digits = target_text.strip().lstrip("#")
        target = await self.store.tickets.get(int(digits)) if digits.isdigit() else None
        if target is None or target.id == ticket.id or target.status == "merged":
            raise Refused("ticket.bad_merge_target", text=target_text.strip()[:20])
        await self._require(actor, Action.HANDLE_TICKET, target)
        return await self._transition(
            ticket, actor, "merged", set(OPEN_STATUSES), "merged", note=f"#{target.id}",
            fields={"merged_into": target.id, "due_kind": None, "due_at": None,
                    "remind_at": None},
            reporter_key="notice.merged", reporter_values={"target": target.id})

    async def reply_to_reporter(self, actor: Actor, ticket_id: int, text: str) -> Ticket:
        """Relay a staff answer to the reporter; their reply to it comes back to the thread."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        if not text.strip():
            raise Refused("ticket.need_words")
        async with self.store.transaction():
            await self.store.tickets.add_event(ticket.id, actor.user_id, "replied", text)
            locale = await self.people.locale_for(ticket.reporter_id)
            for part in split_html(t(locale, "notice.reply", id=ticket.id, text=text)):
                await self.outbox.send(ticket.reporter_id, part, priority=Priority.PERSONAL,
                                       ref=f"relay:{ticket.id}")
        return ticket

    async def ask(self, actor: Actor, ticket_id: int, action: str) -> Ticket:
        """Check, before asking for words, that the actor may do `action` on the ticket."""
        ticket = await self._get(ticket_id)
        if action == "dec":
            await self._department_ticket(actor, ticket_id)
            if ticket.status != "whistled":
                raise Refused("ticket.bad_state", id=ticket.id,
                              state=Key("status." + ticket.status))
            return ticket
        if action == "res":
            await self._check_resolve(actor, ticket)
            return ticket
        await self._require(actor, Action.HANDLE_TICKET, ticket)
        if action != "rep":
            self._require_open(ticket)
        return ticket

    async def _check_resolve(self, actor: Actor, ticket: Ticket) -> None:
        """Who may resolve (SPEC §1): the department once it accepted; a building head
        before a whistle; grid and community staff (who may whistle it) at any time."""
        self._require_open(ticket)
        if await self.access.can(actor, Action.WHISTLE, ticket.building_code):
            return  # grid or community staff (a liaison too may hold such a role)
        if _liaison_of(actor, ticket):
            if ticket.status != "accepted":
                raise Refused("ticket.bad_state", id=ticket.id,
                              state=Key("status." + ticket.status))
            return
        await self._require(actor, Action.RESOLVE, ticket)
        if ticket.status in ("whistled", "accepted"):
            raise Refused("ticket.head_after_whistle", id=ticket.id)

    async def remember_prompt(self, chat_id: int, message_id: int, user_id: int,
                              ticket_id: int, action: str) -> None:
        async with self.store.transaction():
            await self.store.tickets.add_prompt(chat_id, message_id, user_id, ticket_id, action)

    async def prompt_for(self, chat_id: int, message_id: int):  # -> Prompt | None
        return await self.store.tickets.prompt(chat_id, message_id)

    async def answer_prompt(self, actor: Actor, chat_id: int, message_id: int, text: str,
                            photo_file_id: str | None = None) -> tuple[str, Ticket] | None:
        """A reply to one of our prompts: do the action it asked words for."""
        prompt = await self.store.tickets.prompt(chat_id, message_id)
        if prompt is None:
            return None
        if prompt.user_id is not None and prompt.user_id != actor.user_id:
            raise Refused("prompt.not_yours")
        handlers = {
            "res": lambda: self.resolve(actor, prompt.ticket_id, text),
            "rej": lambda: self.reject(actor, prompt.ticket_id, text),
            "mrg": lambda: self.merge(actor, prompt.ticket_id, text),
            "rep": lambda: self.reply_to_reporter(actor, prompt.ticket_id, text),
            "dec": lambda: self.decline(actor, prompt.ticket_id, text),
            "answer": lambda: self.reporter_answer(actor.user_id, prompt.ticket_id, text,
                                                   photo_file_id),
            "comment": lambda: self.comment(actor.user_id, prompt.ticket_id, text),
        }
        run = handlers.get(prompt.action)
        if run is None:
            return None
        if not text.strip() and prompt.action != "answer":
            raise Refused("ticket.need_words")
        ticket = await run()
        if prompt.action not in ("answer",):
            async with self.store.transaction():
                await self.store.tickets.drop_prompt(chat_id, message_id)
        return prompt.action, ticket

    async def relay_sent(self, ticket_id: int, chat_id: int, message_id: int,
                         action: str = "answer") -> None:
        """Outbox hook: a reply to this message is the reporter's answer (or comment)."""
        await self.store.tickets.add_prompt(chat_id, message_id, chat_id, ticket_id, action)

    async def reporter_answer(self, user_id: int, ticket_id: int, text: str,
                              photo_file_id: str | None = None) -> Ticket:
        ticket = await self._get(ticket_id)
        if ticket.reporter_id != user_id:
            raise Refused("button.stale")
        async with self.store.transaction():
            await self.store.tickets.add_event(
                ticket.id, user_id, "reporter_answered", text,
                {"photo": photo_file_id} if photo_file_id else None)
            await self._staff_notice(ticket, "staff.reporter_answer", photo=photo_file_id,
                                     text=text)
            locale = await self.people.locale_for(user_id)
            await self.outbox.send(user_id, t(locale, "notice.answer_passed", id=ticket.id),
                                   priority=Priority.PERSONAL)
        return ticket

    async def rate(self, user_id: int, ticket_id: int, stars: int) -> Ticket:
        """群众评单: 1–5 stars; 1–2 reopens the ticket at grid level."""
        ticket = await self._get(ticket_id)
        if ticket.reporter_id != user_id or not 1 <= stars <= 5:
            raise Refused("button.stale")
        if ticket.status != "resolved":
            raise Refused("ticket.already_rated" if ticket.status == "rated" else
                          "ticket.bad_state", id=ticket.id, state=Key("status." + ticket.status))
        if stars <= 2:
            deadlines = self.settings.deadlines(ticket.urgency)
            now = self.clock()
            ticket = await self._transition(
                ticket, None, "escalated", {"resolved"}, "reopened", note=str(stars),
                actor_id=user_id,
                fields={"rating": stars, "level": "grid", "resolved_at": None,
                        **self._due_fields("resolve", now, deadlines.resolve.total_seconds())},
                reporter_key="notice.reopened", reporter_ref=f"comment:{ticket.id}",
                staff_key="staff.reopened",
                staff_values={"stars": stars})
        else:
            ticket = await self._transition(
                ticket, None, "rated", {"resolved"}, "rated", note=str(stars), actor_id=user_id,
                fields={"rating": stars}, reporter_key="notice.rated",
                reporter_ref=f"comment:{ticket.id}")
        return ticket

    async def comment(self, user_id: int, ticket_id: int, text: str) -> Ticket:
        ticket = await self._get(ticket_id)
        if ticket.reporter_id != user_id or ticket.rating is None:
            raise Refused("button.stale")
        async with self.store.transaction():
            await self.store.tickets.update(ticket.id, rating_comment=text)
            await self.store.tickets.add_event(ticket.id, user_id, "commented", text)
            await self._staff_notice(ticket, "staff.comment", text=text)
        return await self._get(ticket.id)

    # ------------------------------------------------------------------ Me too, Take it

    async def post_to_building(self, actor: Actor, ticket_id: int) -> Ticket:
        """楼栋议事: post the ticket, without the reporter, for residents to add "Me too"."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self._require_open(ticket)
        binding = await self.store.map.binding(ticket.building_code)
        if binding is None:
            raise Refused("ticket.building_not_bound", code=ticket.building_code)
        async with self.store.transaction():
            await self.store.tickets.add_event(ticket.id, actor.user_id, "posted_to_building")
            locale = await self.people.locale_in(binding.chat_id)
            text, fits = await self._card_text(locale, ticket, "building", binding.chat_id)
            if not fits:
                await self._send_full_text(binding.chat_id, locale, ticket, binding.thread_id,
                                           Priority.SERVICE, quiet=True)
            await self.outbox.send(
                binding.chat_id, text, priority=Priority.SERVICE, thread_id=binding.thread_id,
                buttons=[[views.button(t(locale, "btn.me_too", count=ticket.me_too),
                                       f"t:me:{ticket.id}")]],
                ref=f"tcard:{ticket.id}:building", quiet=True)
        return ticket

    async def me_too(self, user_id: int, ticket_id: int) -> int | None:
        """我也是: count a resident once; None when they were already counted."""
        ticket = await self._get(ticket_id)
        if not ticket.is_open:
            raise Refused("ticket.closed", id=ticket.id)
        async with self.store.transaction():
            count = await self.store.tickets.add_me_too(ticket.id, user_id)
            if count is not None:
                await self.refresh_cards(await self._get(ticket.id))
        return count

    async def offer(self, actor: Actor, ticket_id: int) -> Ticket:
        """居民点单、社区派单、党员接单: offer as a service request with a "Take it" button."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.WHISTLE)
        self._require_open(ticket)
        if ticket.service_request:
            raise Refused("ticket.already_offered", id=ticket.id)
        async with self.store.transaction():
            ticket = await self._apply(ticket, actor, ticket.status, set(OPEN_STATUSES),
                                       "offered", fields={"service_request": 1})
            binding = await self.store.map.binding(ticket.building_code)
            targets: list[tuple[int, int]] = []
            if binding is not None:
                targets.append((binding.chat_id, binding.thread_id))
            for user_id in await self._holders(("party_member", "volunteer"),
                                               ticket.building_code):
                targets.append((user_id, 0))
            for chat_id, thread_id in targets:
                locale = await self.people.locale_in(chat_id)
                domain = views.domain_label(locale, ticket.domain)
                text = t(locale, "ticket.offer", id=ticket.id, domain=domain, text=ticket.text)
                if visible_length(text) > LIMIT:
                    await self._send_full_text(chat_id, locale, ticket, thread_id,
                                               Priority.SERVICE, quiet=chat_id < 0)
                    text = t(locale, "ticket.offer", id=ticket.id, domain=domain,
                             text=t(locale, "ticket.text_above"))
                await self.outbox.send(
                    chat_id, text,
                    priority=Priority.SERVICE, thread_id=thread_id, quiet=chat_id < 0,
                    buttons=[[views.button(t(locale, "btn.take"), f"t:take:{ticket.id}")]],
                    ref=f"tcard:{ticket.id}:offer")
        return ticket

    async def take(self, actor: Actor, ticket_id: int) -> Ticket:
        """The first tap wins; everyone else hears it is taken."""
        ticket = await self._get(ticket_id)
        if not ticket.service_request or not ticket.is_open:
            raise Refused("ticket.closed", id=ticket.id)
        if not await self.access.can(actor, Action.TAKE, ticket.building_code):
            raise Refused("ticket.take_not_allowed")
        async with self.store.transaction():
            if not await self.store.tickets.claim(ticket.id, actor.user_id):
                raise Refused("ticket.already_taken", id=ticket.id)
            await self.store.tickets.add_event(ticket.id, actor.user_id, "taken")
            ticket = await self._get(ticket.id)
            await self._tell_reporter(ticket, "notice.taken")
            await self.refresh_cards(ticket)
        return ticket

    # ------------------------------------------------------------------ deadlines

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
                for user_id in await self._assignees(ticket):
                    locale = await self.people.locale_for(user_id)
                    await self.outbox.send(
                        user_id, t(locale, "remind.deadline", id=ticket.id,
                                   due=t(locale, f"due.{ticket.due_kind}"),
                                   at=views.when(ticket.due_at, self.settings.tz)),
                        priority=Priority.PERSONAL)
                return 1
        return 0

    async def _escalate_overdue(self, ticket: Ticket) -> None:
        index = LEVELS.index(ticket.level)
        new_level = LEVELS[min(index + 1, len(LEVELS) - 1)]
        if new_level == ticket.level:
            fields: dict[str, Any] = {"due_at": None, "remind_at": None}
        else:
            # the next level's deadline is the one it now owes: a missed acknowledgement
            # leaves the grid the ticket's resolve deadline (as the Escalate button does);
            # a missed acceptance or resolution gives the next level that deadline afresh
            deadlines = self.settings.deadlines(ticket.urgency)
            now = self.clock()
            if ticket.due_kind in (None, "ack"):
                kind, span = "resolve", deadlines.resolve.total_seconds()
                start = ticket.created_at if ticket.created_at + span > now else now
            else:
                kind = ticket.due_kind
                span = (deadlines.accept if kind == "accept" else deadlines.resolve
                        ).total_seconds()
                start = now
            fields = {"level": new_level, **self._due_fields(kind, start, span)}
        status = "escalated" if ticket.status in ("new", "acknowledged") and \
            new_level != "building" else ticket.status
        await self.store.tickets.update(ticket.id, status=status, **fields)
        await self.store.tickets.add_event(ticket.id, None, "overdue",
                                           data={"due": ticket.due_kind, "from": ticket.level,
                                                 "to": new_level,
                                                 "department": ticket.department_code})
        ticket = await self._get(ticket.id)
        await self._tell_reporter(ticket, "notice.overdue")
        if index == 0:  # the building heads missed it: they hear it moved up
            for head in await self._holders(("building_head",), ticket.building_code,
                                            exact=True):
                locale = await self.people.locale_for(head)
                await self.outbox.send(head, t(locale, "staff.overdue", id=ticket.id,
                                               level=t(locale, f"level.{new_level}")),
                                       priority=Priority.PERSONAL)
        units = [ticket.grid_code] + ([ticket.community_code] if new_level == "community" else [])
        for unit_code in units:
            await self._unit_notice(ticket, unit_code, "staff.overdue",
                                    level_key=f"level.{new_level}")
        if new_level == "community" and index < 2:
            await self._post_staff_card(ticket, ticket.community_code)
        await self.refresh_cards(ticket)

    # ------------------------------------------------------------------ views

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
        text, _ = await self._card_text(locale, ticket, "staff" if staff else "department",
                                        actor.user_id, whole=True)
        if not staff:
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

    # ------------------------------------------------------------------ helpers

    def _due_fields(self, kind: str, start: float, span: float) -> dict[str, Any]:
        return {"due_kind": kind, "due_from": start, "due_at": start + span,
                "remind_at": start + REMIND_AT * span}

    async def _get(self, ticket_id: int) -> Ticket:
        ticket = await self.store.tickets.get(ticket_id)
        if ticket is None:
            raise Refused("ticket.unknown", id=ticket_id)
        return ticket

    def _require_open(self, ticket: Ticket) -> None:
        if not ticket.is_open:
            raise Refused("ticket.closed", id=ticket.id)

    async def _may(self, actor: Actor, action: Action, ticket: Ticket) -> bool:
        if action == Action.VIEW_TICKETS and _liaison_of(actor, ticket):
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
        if not actor.superadmin and not _liaison_of(actor, ticket):
            raise Refused("ticket.not_allowed", id=ticket.id)
        return ticket

    async def _apply(self, ticket: Ticket, actor: Actor | None, status: str,
                     expect: set[str], event: str, *, fields: dict[str, Any] | None = None,
                     note: str | None = None, actor_id: int | None = None,
                     event_data: dict[str, Any] | None = None) -> Ticket:
        """Inside a transaction: move the state (if still as expected) and write the timeline."""
        changed = await self.store.tickets.update(ticket.id, expect_status=expect,
                                                  status=status, **(fields or {}))
        if not changed:
            current = await self._get(ticket.id)
            raise Refused("ticket.bad_state", id=ticket.id, state=Key("status." + current.status))
        who = actor.user_id if actor is not None else actor_id
        await self.store.tickets.add_event(ticket.id, who, event, note, event_data)
        updated = await self._get(ticket.id)
        await self.refresh_cards(updated)
        return updated

    async def _transition(self, ticket: Ticket, actor: Actor | None, status: str,
                          expect: set[str], event: str, *, fields: dict[str, Any] | None = None,
                          note: str | None = None,
                          actor_id: int | None = None, reporter_key: str | None = None,
                          reporter_values: dict[str, Any] | None = None,
                          reporter_ref: str | None = None,
                          staff_key: str | None = None,
                          staff_values: dict[str, Any] | None = None,
                          event_data: dict[str, Any] | None = None) -> Ticket:
        async with self.store.transaction():
            ticket = await self._apply(ticket, actor, status, expect, event, fields=fields,
                                       note=note,
                                       actor_id=actor_id, event_data=event_data)
            if reporter_key:
                await self._tell_reporter(ticket, reporter_key, ref=reporter_ref,
                                          **(reporter_values or {}))
            if staff_key:
                await self._staff_notice(ticket, staff_key, **(staff_values or {}))
        self.changed()
        return ticket

    async def _tell_reporter(self, ticket: Ticket, key: str, ref: str | None = None,
                             buttons: views.Buttons | None = None, **values: Any) -> None:
        """A step, told in the reporter's language; a long note is split, never cut (the
        buttons and the ref go with the last part, the one to answer or rate)."""
        locale = await self.people.locale_for(ticket.reporter_id)
        parts = split_html(t(locale, key, id=ticket.id, **values))
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            await self.outbox.send(ticket.reporter_id, part, priority=Priority.PERSONAL,
                                   ref=ref if last else None, buttons=buttons if last else None)

    async def _staff_notice(self, ticket: Ticket, key: str, photo: str | None = None,
                            **values: Any) -> None:
        """A note in the ticket's staff thread: its topic, or a reply to its staff card
        (with the reporter's photo after it, copied by its file id, never forwarded)."""
        await self._unit_notice(ticket, ticket.grid_code, key, photo=photo, **values)
        if ticket.level == "community":
            await self._unit_notice(ticket, ticket.community_code, key, photo=photo, **values)

    async def _unit_notice(self, ticket: Ticket, unit_code: str, key: str,
                           level_key: str | None = None, photo: str | None = None,
                           **values: Any) -> None:
        binding = await self.store.map.binding(unit_code)
        if binding is None:
            return
        locale = await self.people.locale_in(binding.chat_id)
        if level_key:
            values["level"] = t(locale, level_key)
        thread_id = binding.thread_id
        reply_to = None
        if unit_code == ticket.grid_code and ticket.staff_thread_id:
            thread_id = ticket.staff_thread_id
        else:
            for card in await self.store.tickets.cards(ticket.id):
                if card.chat_id == binding.chat_id and card.kind == "staff":
                    reply_to = card.message_id
        for part in split_html(t(locale, key, id=ticket.id, **values)):
            await self.outbox.send(binding.chat_id, part, priority=Priority.PERSONAL,
                                   thread_id=thread_id or 0, reply_to=reply_to)
        if photo:
            payload: dict[str, Any] = {"photo": photo, "caption": f"#{ticket.id}"}
            if thread_id:
                payload["message_thread_id"] = thread_id
            if reply_to:
                payload["reply_parameters"] = {"message_id": reply_to,
                                               "allow_sending_without_reply": True}
            await self.outbox.call(binding.chat_id, "sendPhoto", payload,
                                   priority=Priority.PERSONAL)

    async def _holders(self, roles: tuple[str, ...], unit_code: str,
                       exact: bool = False) -> list[int]:
        """People holding `roles` on the unit itself (exact) or on any unit covering it."""
        codes = [unit_code] if exact else await self.access.covering(unit_code)
        return sorted({g.user_id for g in await self.store.people.holders(roles, codes)})

    async def _assignees(self, ticket: Ticket) -> list[int]:
        """Who is reminded: the current level's people (building heads before acknowledgement)."""
        if ticket.status in ("whistled", "accepted") and ticket.department_code:
            return await self._holders(("department_liaison",), ticket.department_code,
                                       exact=True)
        if ticket.level == "building":
            return await self._holders(("building_head",), ticket.building_code, exact=True)
        if ticket.level == "grid":
            return await self._holders(("grid_leader", "grid_worker"), ticket.grid_code,
                                       exact=True)
        return await self._holders(("community_staff",), ticket.community_code, exact=True)


def _draft_photos(data: dict[str, Any]) -> list[str]:
    """A draft's photos (drafts stored before several were kept have one, as "photo")."""
    return list(data.get("photos") or ([data["photo"]] if data.get("photo") else []))


def _liaison_of(actor: Actor, ticket: Ticket) -> bool:
    """Whether the actor answers whistles for the ticket's current department."""
    return ticket.department_code is not None and any(
        g.role == "department_liaison" and g.unit_code == ticket.department_code
        for g in actor.grants)


def _hours_text(locale: str, seconds: float) -> str:
    """"1 day", "7 days", "1.5 hours" (a singular key for exactly one)."""
    if seconds >= 86400 and seconds % 86400 == 0:
        n, unit = seconds / 86400, "day"
    elif seconds >= 3600:
        n, unit = seconds / 3600, "hour"
    elif seconds >= 60:
        n, unit = seconds / 60, "minute"
    else:
        n, unit = float(int(seconds)), "second"
    return t(locale, f"duration.{unit}" if n == 1 else f"duration.{unit}s", n=f"{n:g}")

