"""The steps of a ticket's lifecycle (SPEC §4), each run through the table of
bot/services/ticket_states.py: one transaction checks the state again, moves it, writes the
timeline row and queues every notice the table names.

What the table does not hold stays here: who may act (§1), the level a step needs, and the
words or choices a step takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot import labels, logcontext
from bot.i18n import t
from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Key, Refused
from bot.services.outbox import Priority
from bot.services.ticket_base import liaison_of
from bot.services.ticket_cards import TicketCards
from bot.services.ticket_refs import card_ref, comment_ref, note_ref
from bot.services.ticket_states import LIFECYCLE, TicketAction, TimelineEvent, refusal_key
from bot.services.ticket_views import CardKind
from bot.textsplit import LIMIT, visible_length
from storage.models import (
    Assignment,
    DueKind,
    Ticket,
    TicketEvent,
    TicketLevel,
    TicketStatus,
    Unit,
    Urgency,
    WhistleItem,
)

_NOTHING: Mapping[str, Any] = {}
_NO_DEADLINE: Mapping[str, Any] = {"due_kind": None, "due_at": None, "remind_at": None}


class TicketLifecycle(TicketCards):
    def check(self, action: TicketAction, ticket: Ticket) -> None:
        """Refuse `action` unless the table allows it from the ticket's state."""
        key = refusal_key(action, ticket.status)
        if key is not None:
            raise Refused(key, id=ticket.id, state=Key(labels.STATUS[ticket.status]))

    async def _step(self, action: TicketAction, ticket: Ticket, actor_id: int | None, *,
                    fields: Mapping[str, Any] = _NOTHING, note: str | None = None,
                    event_data: dict[str, Any] | None = None,
                    told: Mapping[str, Any] = _NOTHING, ref: str | None = None,
                    buttons: views.Buttons | None = None, photo: str | None = None,
                    tell_liaisons: bool = True) -> Ticket:
        """Inside a transaction: one row of the table. The store decides races: the state
        moves only if it is still one the step is allowed from. `told` fills the notices'
        texts; `ref` and `buttons` go with the reporter's, `photo` with the staff's;
        `tell_liaisons` False: the liaisons get a card instead (no department chat)."""
        step = LIFECYCLE[action]
        logcontext.tag(ticket_id=ticket.id)
        self.check(action, ticket)
        if step.to is not None or fields:
            moved = await self.store.tickets.update(
                ticket.id, expect_status=step.allowed, status=step.to or ticket.status,
                **fields)
            if not moved:  # another step came first
                current = await self._get(ticket.id)
                self.check(action, current)
                raise Refused("ticket.bad_state", id=ticket.id,
                              state=Key(labels.STATUS[current.status]))
        if step.event is not None:
            await self.store.tickets.add_event(ticket.id, actor_id, step.event, note, event_data)
        before = ticket
        ticket = await self._get(ticket.id)
        if action == TicketAction.REOPEN or (before.is_open and not ticket.is_open):
            await self._end_asks(ticket, tell=action != TicketAction.REOPEN)
        elif before.assignee_id is None and ticket.assignee_id is not None:
            await self._taken_asks(ticket)
        if step.refreshes_cards:
            await self.refresh_cards(ticket)
        if step.reporter is not None:
            await self._tell_reporter(ticket, step.reporter, ref=ref, buttons=buttons, **told)
        if step.staff is not None:
            await self._staff_notice(ticket, step.staff, photo=photo, **told)
        if step.liaisons is not None and ticket.department_code is not None and tell_liaisons:
            for liaison in await self._holders(("department_liaison",), ticket.department_code,
                                               exact=True):
                locale = await self.people.locale_for(liaison)
                await self.outbox.send(liaison, t(locale, step.liaisons, id=ticket.id, **told),
                                       priority=Priority.PERSONAL, ref=note_ref(ticket.id))
        return ticket

    async def _end_asks(self, ticket: Ticket, tell: bool) -> list[Assignment]:
        """Inside the step's transaction: the 点将 asks (SPEC §10) still open when a ticket
        leaves the open states, or is reopened, are withdrawn: those waiting for an answer,
        and an accepted one whose holder did not resolve it (their own resolve made it
        `resolved` first; a withdrawn one credits no hours). Closing tells each of them
        privately, in their language, how the ticket ended (the reporter never named); a
        reopening tells only the previous assignee (`_reopen`)."""
        withdrawn = await self.store.assignments.withdraw(ticket.id, self.clock())
        if not tell:
            return withdrawn
        building = await self.store.map.get(ticket.building_code)
        for row in withdrawn:
            locale = await self.people.locale_for(row.user_id)
            key = "assign.ended_accepted" if row.state == "accepted" else "assign.ended_offered"
            await self.outbox.send(row.user_id, t(
                locale, key, id=ticket.id, domain=views.domain_label(locale, ticket.domain),
                building=building.name if building else ticket.building_code,
                state=t(locale, labels.STATUS[ticket.status])), priority=Priority.PERSONAL)
        return withdrawn

    async def _taken_asks(self, ticket: Ticket) -> None:
        """Inside the step's transaction: the ticket has an assignee now ("Take it", or one
        of its 点将 asks accepted): the asks still waiting are withdrawn, each person told."""
        for row in await self.store.assignments.withdraw(ticket.id, self.clock(), ("offered",)):
            locale = await self.people.locale_for(row.user_id)
            await self.outbox.send(row.user_id, t(locale, "assign.withdrawn", id=ticket.id),
                                   priority=Priority.PERSONAL, ref=note_ref(ticket.id))

    async def _transition(self, action: TicketAction, ticket: Ticket, actor_id: int | None,
                          **step: Any) -> Ticket:
        """One step in its own transaction; the deadline watcher looks again after it."""
        async with self.store.transaction():
            ticket = await self._step(action, ticket, actor_id, **step)
        self.changed()
        return ticket

    async def acknowledge(self, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self.check(TicketAction.ACKNOWLEDGE, ticket)
        return await self._transition(
            TicketAction.ACKNOWLEDGE, ticket, actor.user_id, fields=self._due_fields(
                DueKind.RESOLVE, ticket.created_at,
                self.span(ticket.urgency, DueKind.RESOLVE)))

    async def set_urgency(self, actor: Actor, ticket_id: int, urgency: str) -> Ticket:
        if urgency not in tuple(Urgency):
            raise Refused("button.stale")
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self.check(TicketAction.SET_URGENCY, ticket)
        fields: dict[str, Any] = {"urgency": urgency}
        if ticket.due_kind and ticket.due_from is not None:
            span = await self.ticket_span(ticket.model_copy(update={"urgency": Urgency(urgency)}),
                                          ticket.due_kind)
            fields.update(self._due_fields(ticket.due_kind, ticket.due_from, span))
        return await self._transition(TicketAction.SET_URGENCY, ticket, actor.user_id,
                                      fields=fields, note=urgency)

    async def escalate(self, actor: Actor, ticket_id: int) -> Ticket:
        """Building → grid, by a building head."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.ESCALATE)
        self.check(TicketAction.ESCALATE, ticket)
        if ticket.level != TicketLevel.BUILDING:
            raise Refused("ticket.bad_state", id=ticket.id,
                          state=Key(labels.STATUS[ticket.status]))
        return await self._transition(
            TicketAction.ESCALATE, ticket, actor.user_id,
            fields={"level": TicketLevel.GRID, **self._due_fields(
                DueKind.RESOLVE, ticket.created_at, self.span(ticket.urgency, DueKind.RESOLVE))})

    async def departments(self, actor: Actor, ticket_id: int) -> tuple[Ticket, list[Unit]]:
        """The whistle's department picker: the domain's lead department first."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.WHISTLE)
        self.check(TicketAction.WHISTLE, ticket)
        all_units = await self.store.map.departments()
        leads = [u for u in all_units if ticket.domain and ticket.domain in u.domains]
        return ticket, leads + [u for u in all_units if u not in leads]

    async def whistle(self, actor: Actor, ticket_id: int, department_code: str | None = None,
                      item_code: str | None = None) -> Ticket:
        """吹哨: post the ticket to a department's chat with an Accept button. With an item
        of the whistle catalogue (SPEC §11) the department is the item's, its deadline (if
        any) the time to accept, and the ticket remembers the item; the whistle's timeline
        row keeps the item and its points as they were, for the departments' board."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.WHISTLE)
        item: WhistleItem | None = None
        if item_code is not None:
            item = await self.store.whistles.item(item_code)
            if item is None:
                raise Refused("whistle.item_gone", code=item_code)
            department_code = item.department_code
        department = await self.store.map.get(department_code or "")
        if department is None or department.kind != "department":
            raise Refused("map.unknown_code", code=department_code or "")
        self.check(TicketAction.WHISTLE, ticket)
        level = TicketLevel.GRID if ticket.level == TicketLevel.BUILDING else ticket.level
        accept_span = float(item.deadline) if item is not None and item.deadline \
            else self.span(ticket.urgency, DueKind.ACCEPT)
        data: dict[str, Any] = {"department": department.code}
        if item is not None:
            data["item"] = item.code
            if item.points is not None:
                data["points"] = item.points
        async with self.store.transaction():
            binding = await self.store.map.binding(department.code)
            chat = await self.store.map.chat(binding.chat_id) if binding is not None else None
            if chat is not None and not chat.active:
                binding = None  # the bot is not in the department's chat (any more)
            ticket = await self._step(
                TicketAction.WHISTLE, ticket, actor.user_id,
                fields={"department_code": department.code, "level": level,
                        "whistle_item": item.code if item is not None else None,
                        **self._due_fields(DueKind.ACCEPT, self.clock(), accept_span)},
                note=department.name if item is None else f"{department.name} · {item.name}",
                event_data=data, told={"department": department.name},
                tell_liaisons=binding is not None)
            if binding is not None:
                await self._send_card(ticket, binding.chat_id, binding.thread_id,
                                      CardKind.DEPARTMENT)
            else:  # no department chat: each liaison gets the card, with Accept and Decline
                liaisons = await self._holders(("department_liaison",), department.code,
                                               exact=True)
                for delivery in await self._deliveries(*liaisons):  # AB岗: who stands in
                    await self._send_card(ticket, delivery.recipient, 0, CardKind.DEPARTMENT,
                                          on_behalf_of=delivery.on_behalf_of)
        self.changed()
        return ticket

    async def accept(self, actor: Actor, ticket_id: int) -> Ticket:
        """听哨报到: the department accepts."""
        ticket = await self._department_ticket(actor, ticket_id)
        self.check(TicketAction.ACCEPT, ticket)
        return await self._transition(
            TicketAction.ACCEPT, ticket, actor.user_id, fields=self._due_fields(
                DueKind.RESOLVE, self.clock(), self.span(ticket.urgency, DueKind.RESOLVE)))

    async def decline(self, actor: Actor, ticket_id: int, reason: str) -> Ticket:
        """退回: the department returns the ticket to the grid, with a reason."""
        ticket = await self._department_ticket(actor, ticket_id)
        self.check(TicketAction.DECLINE, ticket)
        department = await self.store.map.get(ticket.department_code or "")
        return await self._transition(
            TicketAction.DECLINE, ticket, actor.user_id, note=reason,
            fields={"department_code": None, "whistle_item": None, "level": TicketLevel.GRID,
                    **self._due_fields(
                DueKind.RESOLVE, ticket.created_at, self.span(ticket.urgency, DueKind.RESOLVE))},
            event_data={"department": ticket.department_code},
            told={"department": department.name if department else "", "reason": reason})

    async def resolve(self, actor: Actor, ticket_id: int, note: str) -> Ticket:
        """办结 with a result note; the reporter is asked to rate."""
        ticket = await self._get(ticket_id)
        await self._check_resolve(actor, ticket)
        note = note.strip()
        if not note:
            raise Refused("ticket.need_words")
        async with self.store.transaction():
            resolved = await self._step(
                TicketAction.RESOLVE, ticket, actor.user_id, note=note,
                fields={"result_note": note, "resolved_at": self.clock(), **_NO_DEADLINE},
                told={"note": note}, buttons=views.rating_buttons(ticket.id))
            if ticket.status == TicketStatus.ACCEPTED:
                await self._ask_whistle_rating(resolved)
        self.changed()
        return resolved

    async def _ask_whistle_rating(self, ticket: Ticket) -> None:
        """Inside the resolving transaction: the staff member who whistled is asked,
        privately, to rate the department's work (评价, SPEC §11)."""
        whistle = rateable_whistle(await self.store.tickets.events(ticket.id))
        if whistle is None or whistle.actor_id is None:
            return
        data = whistle.data or {}
        department = await self.store.map.get(str(data.get("department", "")))
        item = await self.store.whistles.item(str(data["item"])) if data.get("item") else None
        locale = await self.people.locale_for(whistle.actor_id)
        text = t(locale, "whistle.rate_ask", id=ticket.id,
                 department=department.name if department else data.get("department", ""),
                 title=views.title_of(ticket))
        if item is not None:
            text += "\n" + t(locale, "whistle.card_item", category=item.category, item=item.name)
        await self.outbox.send(whistle.actor_id, text, priority=Priority.PERSONAL,
                               buttons=views.whistle_rating_buttons(ticket.id),
                               ref=note_ref(ticket.id))

    async def _check_resolve(self, actor: Actor, ticket: Ticket) -> None:
        """Who may resolve (SPEC §1): the department once it accepted; a building head
        before a whistle; grid and community staff (who may whistle it) at any time."""
        self.check(TicketAction.RESOLVE, ticket)
        if await self.access.can(actor, Action.WHISTLE, ticket.building_code):
            return  # grid or community staff (a liaison too may hold such a role)
        if liaison_of(actor, ticket):
            if ticket.status != TicketStatus.ACCEPTED:
                raise Refused("ticket.bad_state", id=ticket.id,
                              state=Key(labels.STATUS[ticket.status]))
            return
        await self._require(actor, Action.RESOLVE, ticket)
        if ticket.status in (TicketStatus.WHISTLED, TicketStatus.ACCEPTED):
            raise Refused("ticket.head_after_whistle", id=ticket.id)

    async def reject(self, actor: Actor, ticket_id: int, reason: str) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self.check(TicketAction.REJECT, ticket)
        if not reason.strip():
            raise Refused("ticket.need_words")
        return await self._transition(
            TicketAction.REJECT, ticket, actor.user_id, note=reason.strip(),
            fields=_NO_DEADLINE, told={"reason": reason.strip()})

    async def merge(self, actor: Actor, ticket_id: int, target_text: str) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self.check(TicketAction.MERGE, ticket)
        digits = target_text.strip().lstrip("#")
        target = await self.store.tickets.get(int(digits)) if digits.isdigit() else None
        if target is None or target.id == ticket.id or target.status == TicketStatus.MERGED:
            raise Refused("ticket.bad_merge_target", text=target_text.strip()[:20])
        await self._require(actor, Action.HANDLE_TICKET, target)
        return await self._transition(
            TicketAction.MERGE, ticket, actor.user_id, note=f"#{target.id}",
            fields={"merged_into": target.id, **_NO_DEADLINE}, told={"target": target.id})

    async def rate(self, user_id: int, ticket_id: int, stars: int) -> Ticket:
        """群众评单: 1–5 stars; 1–2 reopens the ticket at grid level."""
        ticket = await self._get(ticket_id)
        if ticket.reporter_id != user_id or not 1 <= stars <= 5:
            raise Refused("button.stale")
        if stars <= 2:
            self.check(TicketAction.REOPEN, ticket)
            return await self._reopen(ticket, user_id, stars)
        self.check(TicketAction.RATE, ticket)
        return await self._transition(TicketAction.RATE, ticket, user_id, note=str(stars),
                                      fields={"rating": stars}, ref=comment_ref(ticket.id))

    async def _reopen(self, ticket: Ticket, user_id: int, stars: int) -> Ticket:
        """Reopened at grid level without its assignee (SPEC §4 keeps none): "Assign / 点将"
        is offered again, the previous assignee among those who may be asked; the asks still
        open (an old one could otherwise be accepted now) are withdrawn by the step
        (`_end_asks`), and the previous assignee is told."""
        now = self.clock()
        async with self.store.transaction():
            reopened = await self._step(
                TicketAction.REOPEN, ticket, user_id, note=str(stars),
                fields={"rating": stars, "level": TicketLevel.GRID, "resolved_at": None,
                        "assignee_id": None,
                        **self._due_fields(DueKind.RESOLVE, now,
                                           self.span(ticket.urgency, DueKind.RESOLVE))},
                told={"stars": stars}, ref=comment_ref(ticket.id))
            if ticket.assignee_id:
                locale = await self.people.locale_for(ticket.assignee_id)
                await self.outbox.send(ticket.assignee_id,
                                       t(locale, "assign.reopened", id=ticket.id),
                                       priority=Priority.PERSONAL, ref=note_ref(ticket.id))
        self.changed()
        return reopened

    async def post_to_building(self, actor: Actor, ticket_id: int) -> Ticket:
        """楼栋议事: post the ticket, without the reporter, for residents to add "Me too"."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.HANDLE_TICKET)
        self.check(TicketAction.POST_TO_BUILDING, ticket)
        binding = await self.store.map.binding(ticket.building_code)
        if binding is None:
            raise Refused("ticket.building_not_bound", code=ticket.building_code)
        async with self.store.transaction():
            ticket = await self._step(TicketAction.POST_TO_BUILDING, ticket, actor.user_id)
            locale = await self.people.locale_in(binding.chat_id)
            text, fits = await self._card_text(locale, ticket, CardKind.BUILDING,
                                               binding.chat_id)
            if not fits:
                await self._send_full_text(binding.chat_id, locale, ticket, binding.thread_id,
                                           Priority.SERVICE, quiet=True)
            await self.outbox.send(
                binding.chat_id, text, priority=Priority.SERVICE, thread_id=binding.thread_id,
                buttons=views.me_too_buttons(locale, ticket),
                ref=card_ref(ticket.id, CardKind.BUILDING), quiet=True)
        return ticket

    async def me_too(self, user_id: int, ticket_id: int) -> int | None:
        """我也是: count a resident once; None when they were already counted."""
        ticket = await self._get(ticket_id)
        self.check(TicketAction.ME_TOO, ticket)
        async with self.store.transaction():
            count = await self.store.tickets.add_me_too(ticket.id, user_id)
            if count is not None:
                await self.refresh_cards(await self._get(ticket.id))
        return count

    async def offer(self, actor: Actor, ticket_id: int) -> Ticket:
        """居民点单、社区派单、党员接单: offer as a service request with a "Take it" button."""
        ticket = await self._staff_ticket(actor, ticket_id, Action.WHISTLE)
        self.check(TicketAction.OFFER, ticket)
        if ticket.service_request:
            raise Refused("ticket.already_offered", id=ticket.id)
        async with self.store.transaction():
            ticket = await self._step(TicketAction.OFFER, ticket, actor.user_id,
                                      fields={"service_request": 1})
            binding = await self.store.map.binding(ticket.building_code)
            targets: list[tuple[int, int]] = []
            if binding is not None:
                targets.append((binding.chat_id, binding.thread_id))
            for user_id in await self._holders(("party_member", "volunteer"),
                                               ticket.building_code):
                targets.append((user_id, 0))
            for chat_id, thread_id in targets:
                await self._send_offer(ticket, chat_id, thread_id)
        return ticket

    async def _send_offer(self, ticket: Ticket, chat_id: int, thread_id: int) -> None:
        locale = await self.people.locale_in(chat_id)
        domain = views.domain_label(locale, ticket.domain)
        text = t(locale, "ticket.offer", id=ticket.id, domain=domain, text=ticket.text)
        if visible_length(text) > LIMIT:
            await self._send_full_text(chat_id, locale, ticket, thread_id,
                                       Priority.SERVICE, quiet=chat_id < 0)
            text = t(locale, "ticket.offer", id=ticket.id, domain=domain,
                     text=t(locale, "ticket.text_above"))
        await self.outbox.send(
            chat_id, text, priority=Priority.SERVICE, thread_id=thread_id, quiet=chat_id < 0,
            buttons=views.take_buttons(locale, ticket), ref=card_ref(ticket.id, CardKind.OFFER))

    async def take(self, actor: Actor, ticket_id: int) -> Ticket:
        """The first tap wins; everyone else hears it is taken."""
        ticket = await self._get(ticket_id)
        if not ticket.service_request:
            raise Refused("ticket.closed", id=ticket.id)
        self.check(TicketAction.TAKE, ticket)
        if not await self.access.can(actor, Action.TAKE, ticket.building_code):
            raise Refused("ticket.take_not_allowed")
        async with self.store.transaction():
            if not await self.store.tickets.claim(ticket.id, actor.user_id):
                raise Refused("ticket.already_taken", id=ticket.id)
            return await self._step(TicketAction.TAKE, ticket, actor.user_id)



def rateable_whistle(events: list[TicketEvent]) -> TicketEvent | None:
    """The ticket's last whistle if the department accepted it and it was then resolved:
    the whistle its whistler may rate (评价); None otherwise."""
    last = max((i for i, e in enumerate(events) if e.kind == TimelineEvent.WHISTLED),
               default=None)
    if last is None:
        return None
    accepted = False
    for event in events[last + 1:]:
        if event.kind == TimelineEvent.ACCEPTED:
            accepted = True
        elif event.kind == TimelineEvent.DECLINED:
            return None
        elif event.kind == TimelineEvent.RESOLVED and accepted:
            return events[last]
    return None
