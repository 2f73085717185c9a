"""Meetings (联席会议、面对面, SPEC §12): publishing, the invitation's answers and live count,
the reminder, sign-in, minutes and decisions (each a ticket), and `/meetings`.

Every step checks permission and state again and writes the state change and its messages
(outbox) in one transaction. The timed steps — the reminder before the start, the organiser's
"Open sign-in" from 30 minutes before it, the request for minutes after the end — are due
times in the store, each cleared in the transaction that queues its messages
(`MeetingRepo.claim_step`): the meetings' watcher (`bot/watcher.py`) runs them exactly once,
restarts included.

Who is invited is decided in one place, `invite_targets`: for a joint meeting the staff chats
in scope and the member units (SPEC §10) of its communities — each unit's bound chat, else its
contacts privately, every invitation standing for its unit so that a sign-in there counts for
it —, and the building chats in scope for the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.hooks import SentHook
from bot.i18n import t
from bot.services import meeting_views as views
from bot.services import ticket_assign as assign
from bot.services.access import Access, Action, Actor
from bot.services.errors import Refused
from bot.services.horn_parse import parse_text
from bot.services.meeting_flow import SIGNIN_BEFORE, MeetingFlow, Step
from bot.services.meeting_views import Attendance, Press, View, attendance, data
from bot.services.outbox import Outbox, Priority
from bot.services.people import PeopleService
from bot.services.ticket_views import button, domain_label, when
from bot.services.tickets import TicketService
from bot.settings import Settings
from storage.inbox import current_update
from storage.models import (
    DOMAINS,
    Flow,
    Meeting,
    MeetingKind,
    MeetingPost,
    MeetingSignIn,
    OutboxItem,
    Ticket,
)
from storage.store import Store

logger = logging.getLogger(__name__)

WRAP_FLOW = "meeting_wrap"     # after the end: the minutes, then the decisions
POST_REF = "mpost"             # outbox ref of an invitation or sign-in post: `mpost:<id>:<kind>`
STAFF_UNIT_KINDS = ("community", "grid")
NOBODY_YET = "-"               # a decision's "No one yet": Assign from its card later
RECENT_DAYS = 30
DECISION_MAX = 2000


class WrapStep(StrEnum):
    MINUTES = "minutes"
    DECISION = "decision"
    DOMAIN = "domain"
    ASSIGNEE = "assignee"
    DEADLINE = "deadline"


WRAP_PRESSED_AT: dict[Press, WrapStep] = {
    Press.DOMAIN: WrapStep.DOMAIN, Press.ASSIGNEE: WrapStep.ASSIGNEE,
    Press.DEADLINE: WrapStep.DEADLINE, Press.DONE: WrapStep.DECISION}


@dataclass(frozen=True)
class Target:
    """Where an invitation goes: a chat (and topic), standing for a unit."""

    chat_id: int
    thread_id: int
    unit_code: str


@dataclass(frozen=True)
class Decided:
    """A decision turned into a ticket, and the wrap flow's next step."""

    ticket: Ticket
    flow: Flow


class MeetingService(MeetingFlow):
    def __init__(self, store: Store, access: Access, people: PeopleService, outbox: Outbox,
                 settings: Settings, tickets: TicketService,
                 clock: Callable[[], float] = time.time,
                 changed: Callable[..., None] | None = None) -> None:
        """`tickets`: decisions become tickets on its path; `changed` wakes the meetings'
        watcher (a new meeting may be due sooner)."""
        super().__init__(store, access, people, outbox, settings, clock)
        self.tickets = tickets
        self._changed = changed
        for prefix, hook in self.sent_hooks().items():
            outbox.on_sent(prefix, hook)

    def wake(self) -> None:
        if self._changed is not None:
            self._changed()

    # ------------------------------------------------------------------ publishing

    async def publish(self, actor: Actor) -> tuple[Meeting, int]:
        """Create the meeting and post the invitation to every chat in scope: one transaction
        (with clearing the flow, so a second Publish finds nothing). The meeting and how many
        chats were invited."""
        async with self.store.transaction():
            flow = await self.require(actor.user_id)
            if flow.step != Step.PREVIEW:
                raise Refused("button.stale")
            values = flow.data
            scope = await self.checked_scope(actor, values["scope"])  # rights may have changed
            start, end = float(values["start"]), float(values["end"])
            self.check_times(start, end)
            now = self.clock()
            chain = await self.store.map.ancestors(scope)
            grid = next((u.code for u in chain if u.kind == "grid"), None)
            community = next((u.code for u in chain if u.kind == "community"), scope)
            remind_at = start - self.settings.meeting_reminder_s
            mark = current_update.get()
            meeting = await self.store.meetings.create(
                kind=values["kind"], unit_code=scope, grid_code=grid, community_code=community,
                title=values["title"], place=values.get("place") or "",
                agenda=values.get("agenda") or "", starts_at=start, ends_at=end,
                organiser_id=actor.user_id,
                # published within the reminder's lead: the invitation is the reminder
                remind_at=remind_at if remind_at > now else None,
                offer_at=max(start - SIGNIN_BEFORE, now), wrap_at=end,
                source_update_id=mark.update_id if mark else None)
            if meeting is None:
                raise Refused("meeting.flow_gone")
            await self.store.flows.clear(actor.user_id)
            invited = await self._invite(meeting)
        self.wake()
        logger.info("meeting #%s (%s) published to %s chats", meeting.id, meeting.kind, invited)
        return meeting, invited

    async def invite_targets(self, meeting: Meeting) -> list[Target]:
        """The chats a meeting's invitation goes to: for a joint meeting the staff chats of the
        community and grids in scope and the member units of its communities
        (`member_targets`), for the others the building chats in scope; bound and active, one
        per chat."""
        kinds = STAFF_UNIT_KINDS if meeting.kind == MeetingKind.JOINT else ("building",)
        below = [u.code for u in await self.store.map.descendants(meeting.unit_code)
                 if u.kind in kinds]
        found: dict[int, Target] = {}
        for binding in await self.store.map.bindings(below):
            if binding.chat_id in found:
                continue
            chat = await self.store.map.chat(binding.chat_id)
            if chat is not None and not chat.active:
                continue
            found[binding.chat_id] = Target(binding.chat_id, binding.thread_id,
                                            binding.unit_code)
        if meeting.kind == MeetingKind.JOINT:
            for target in await self.member_targets(meeting):
                found.setdefault(target.chat_id, target)
        return list(found.values())

    async def member_targets(self, meeting: Meeting) -> list[Target]:
        """The member units (SPEC §10) of a joint meeting's communities: each unit's bound
        chat (active), else each of its contacts privately; every Target stands for its unit.
        A chat already standing for another unit keeps that unit."""
        communities = await self._communities(meeting)
        targets: list[Target] = []
        taken: set[int] = set()
        for unit in await self.store.map.members(communities):
            binding = await self.store.map.binding(unit.code)
            chat = await self.store.map.chat(binding.chat_id) if binding is not None else None
            if binding is not None and (chat is None or chat.active):
                places = [(binding.chat_id, binding.thread_id)]
            else:
                places = [(p.user_id, 0) for p in await self.store.people.with_role(
                    "unit_contact", [unit.code], None, reachable_only=True)]
            for chat_id, thread_id in places:
                if chat_id not in taken:
                    taken.add(chat_id)
                    targets.append(Target(chat_id, thread_id, unit.code))
        return targets

    async def _communities(self, meeting: Meeting) -> list[str]:
        """The communities a meeting's scope holds, or lies in."""
        codes = [u.code for u in await self.store.map.descendants(meeting.unit_code,
                                                                  "community")]
        codes += [u.code for u in await self.store.map.ancestors(meeting.unit_code)
                  if u.kind == "community" and u.code not in codes]
        return codes

    async def _invite(self, meeting: Meeting) -> int:
        invited = 0
        for target in await self.invite_targets(meeting):
            if not await self.store.meetings.add_post(meeting.id, "invite", target.chat_id,
                                                      target.thread_id, target.unit_code):
                continue
            view = await self._invitation(meeting, await self.people.locale_in(target.chat_id))
            await self.outbox.send(target.chat_id, view.text, priority=Priority.SERVICE,
                                   buttons=view.buttons, thread_id=target.thread_id,
                                   ref=f"{POST_REF}:{meeting.id}:invite")
            invited += 1
        return invited

    async def _invitation(self, meeting: Meeting, locale: str) -> View:
        attending, absent = await self.store.meetings.counts(meeting.id)
        return views.invitation(locale, meeting, await self._scope(meeting), self.settings.tz,
                                attending, absent)

    async def _scope(self, meeting: Meeting) -> str:
        unit = await self.store.map.get(meeting.unit_code)
        return views.scope_label(unit.name if unit else "", meeting.unit_code)

    # ------------------------------------------------------------------ answers

    async def answer_invitation(self, actor: Actor, meeting_id: int, chat_id: int,
                                attend: bool) -> tuple[Meeting, int]:
        """Attend / Can't attend on an invitation (the last answer counts); the invitations'
        live count is edited. The meeting and how many now attend."""
        async with self.store.transaction():
            meeting = await self._meeting(meeting_id)
            post = await self.store.meetings.post_in(meeting_id, "invite", chat_id)
            if post is None:
                raise Refused("button.stale")
            if meeting.ends_at <= self.clock():
                raise Refused("meeting.over", title=meeting.title)
            await self.store.meetings.record_answer(meeting_id, actor.user_id, attend,
                                                    post.unit_code)
            await self._edit_invitations(meeting)
            attending, _ = await self.store.meetings.counts(meeting_id)
        return meeting, attending

    async def _edit_invitations(self, meeting: Meeting, skip: tuple[int, str] | None = None
                                ) -> None:
        """Queue the current text of every invitation sent (the outbox coalesces edits of one
        message). `skip`: a chat whose copy already shows that text."""
        texts: dict[str, View] = {}
        for post in await self.store.meetings.posts(meeting.id, "invite"):
            if post.message_id is None:
                continue  # still on its way: its sent hook edits it if it is behind
            locale = await self.people.locale_in(post.chat_id)
            if locale not in texts:
                texts[locale] = await self._invitation(meeting, locale)
            view = texts[locale]
            if skip is not None and skip == (post.chat_id, view.text):
                continue
            await self.outbox.edit(post.chat_id, post.message_id, view.text,
                                   priority=Priority.SERVICE, buttons=view.buttons)

    def sent_hooks(self) -> dict[str, SentHook]:
        return {POST_REF: self._on_post_sent}

    async def _on_post_sent(self, item: OutboxItem, result: Any) -> None:
        """A post went out: remember its message (to edit the count later); an invitation
        whose count moved on while it waited is edited at once."""
        _, meeting_id, kind = (item.ref or "").split(":")
        async with self.store.transaction():
            await self.store.meetings.post_sent(int(meeting_id), kind, item.chat_id,
                                                result["message_id"])
            meeting = await self.store.meetings.get(int(meeting_id))
            if meeting is None or kind != "invite":
                return
            await self._edit_invitations(meeting, skip=(item.chat_id,
                                                        str(item.payload.get("text", ""))))

    # ------------------------------------------------------------------ timed steps

    async def run_due(self) -> int:
        """The reminders, the organisers' sign-in buttons and the requests for minutes that
        are due; how many acted. One meeting's failure does not hold back the others."""
        acted = 0
        for meeting in await self.store.meetings.due(self.clock()):
            try:
                acted += await self._due(meeting.id)
            except Exception:
                logger.exception("meeting #%s: timed work failed", meeting.id)
        return acted

    async def next_due(self) -> float | None:
        return await self.store.meetings.next_due()

    async def _due(self, meeting_id: int) -> int:
        now = self.clock()
        acted = 0
        async with self.store.transaction():
            meeting = await self._meeting(meeting_id)
            if meeting.remind_at is not None and meeting.remind_at <= now and \
                    await self.store.meetings.claim_step(meeting.id, "remind_at"):
                if now < meeting.starts_at:  # down past the start: a reminder is moot
                    await self._remind(meeting)
                acted += 1
            if meeting.offer_at is not None and meeting.offer_at <= now and \
                    await self.store.meetings.claim_step(meeting.id, "offer_at"):
                if now < meeting.ends_at:
                    await self._offer_signin(meeting)
                acted += 1
            if meeting.wrap_at is not None and meeting.wrap_at <= now and \
                    await self.store.meetings.claim_step(meeting.id, "wrap_at"):
                await self._ask_minutes(meeting)
                acted += 1
        return acted

    async def _remind(self, meeting: Meeting) -> None:
        """Once, before the start: in each invited chat (under the invitation) and to each
        person who said they attend."""
        scope = await self._scope(meeting)
        tz = self.settings.tz
        for post in await self.store.meetings.posts(meeting.id, "invite"):
            locale = await self.people.locale_in(post.chat_id)
            await self.outbox.send(
                post.chat_id, t(locale, "meeting.reminder") + "\n" + views.head(
                    locale, meeting, scope, tz), priority=Priority.SERVICE,
                thread_id=post.thread_id, reply_to=post.message_id,
                dedupe_key=f"mt:rem:{meeting.id}:{post.chat_id}")
        for user_id in await self.store.meetings.attending(meeting.id):
            locale = await self.people.locale_for(user_id)
            await self.outbox.send(
                user_id, t(locale, "meeting.reminder") + "\n" + views.head(
                    locale, meeting, scope, tz), priority=Priority.PERSONAL,
                dedupe_key=f"mt:rem:{meeting.id}:{user_id}")

    async def _offer_signin(self, meeting: Meeting) -> None:
        locale = await self.people.locale_for(meeting.organiser_id)
        await self.outbox.send(
            meeting.organiser_id,
            t(locale, "meeting.offer_signin", id=meeting.id, title=meeting.title,
              start=when(meeting.starts_at, self.settings.tz)),
            priority=Priority.PERSONAL,
            buttons=[[button(t(locale, "meeting.btn_open_signin"),
                             data(Press.OPEN, meeting.id))]],
            dedupe_key=f"mt:offer:{meeting.id}")

    async def _ask_minutes(self, meeting: Meeting) -> None:
        locale = await self.people.locale_for(meeting.organiser_id)
        summary = await self.attendance(meeting)
        labels = await self._unit_names(summary.on_time + summary.late)
        await self.outbox.send(
            meeting.organiser_id,
            t(locale, "meeting.ended", id=meeting.id, title=meeting.title,
              signed_in=summary.signed_in) + "\n" + views.units_line(
                locale, labels, summary.on_time, summary.late),
            priority=Priority.PERSONAL,
            buttons=[[button(t(locale, "meeting.btn_minutes"),
                             data(Press.MINUTES, meeting.id))]],
            dedupe_key=f"mt:wrap:{meeting.id}")

    # ------------------------------------------------------------------ sign-in

    async def open_signin(self, actor: Actor, meeting_id: int) -> tuple[Meeting, int]:
        """The organiser's "Open sign-in": the sign-in post to each invited chat, valid
        until the end. The meeting and how many chats got it."""
        async with self.store.transaction():
            meeting = await self._meeting(meeting_id)
            if actor.user_id != meeting.organiser_id and not actor.superadmin:
                raise Refused("meeting.not_organiser")
            self._check_window(meeting)
            if not await self.store.meetings.open_signin(meeting.id):
                raise Refused("meeting.signin_already_open", title=meeting.title)
            posted = 0
            for post in await self.store.meetings.posts(meeting.id, "invite"):
                if not await self.store.meetings.add_post(meeting.id, "signin", post.chat_id,
                                                          post.thread_id, post.unit_code):
                    continue
                view = views.signin_post(await self.people.locale_in(post.chat_id), meeting,
                                         self.settings.tz)
                await self.outbox.send(post.chat_id, view.text, priority=Priority.SERVICE,
                                       buttons=view.buttons, thread_id=post.thread_id,
                                       ref=f"{POST_REF}:{meeting.id}:signin")
                posted += 1
        return meeting, posted

    async def sign_in(self, actor: Actor, meeting_id: int, chat_id: int) -> MeetingSignIn:
        """签到 on a sign-in post: once per person, within the window; on time until the
        late mark after the start."""
        async with self.store.transaction():
            meeting = await self._meeting(meeting_id)
            post = await self.store.meetings.post_in(meeting_id, "signin", chat_id)
            if post is None:
                raise Refused("button.stale")
            now = self._check_window(meeting)
            late = now > meeting.starts_at + self.settings.meeting_late_s
            if not await self.store.meetings.sign_in(meeting.id, actor.user_id, post.unit_code,
                                                     now, late):
                raise Refused("meeting.already_signed_in", title=meeting.title)
        return MeetingSignIn(meeting_id=meeting.id, user_id=actor.user_id,
                             unit_code=post.unit_code, at=now, late=late)

    def _check_window(self, meeting: Meeting) -> float:
        """Sign-in runs from 30 minutes before the start to the end."""
        now = self.clock()
        if now < meeting.starts_at - SIGNIN_BEFORE:
            raise Refused("meeting.signin_not_yet", title=meeting.title,
                          opens=when(meeting.starts_at - SIGNIN_BEFORE, self.settings.tz))
        if now > meeting.ends_at:
            raise Refused("meeting.signin_closed", title=meeting.title)
        return now

    # ------------------------------------------------------------------ minutes, decisions

    async def wrap_flow(self, user_id: int) -> Flow | None:
        flow = await self.store.flows.get(user_id)
        return flow if flow is not None and flow.name == WRAP_FLOW else None

    async def start_wrap(self, actor: Actor, meeting_id: int) -> Flow:
        """After the end, the organiser's "Minutes and decisions": the minutes first."""
        meeting = await self._meeting(meeting_id)
        if actor.user_id != meeting.organiser_id and not actor.superadmin:
            raise Refused("meeting.not_organiser")
        if self.clock() < meeting.ends_at:
            raise Refused("meeting.not_ended", title=meeting.title)
        step = WrapStep.MINUTES if meeting.minutes is None else WrapStep.DECISION
        return await self._save_wrap(actor.user_id, step, {"meeting": meeting.id})

    async def wrap_answer(self, actor: Actor, text: str) -> Flow | Decided:
        """Typed input: the minutes, a decision's text, or its deadline as a date."""
        flow = await self._require_wrap(actor.user_id)
        values = dict(flow.data)
        step = WrapStep(flow.step)
        if step == WrapStep.MINUTES:
            minutes = parse_text(text, 4000)
            async with self.store.transaction():
                await self.store.meetings.set_minutes(int(values["meeting"]), minutes)
                await self.store.flows.set(actor.user_id, WRAP_FLOW, WrapStep.DECISION, values)
            return Flow(user_id=actor.user_id, name=WRAP_FLOW, step=WrapStep.DECISION,
                        data=values)
        if step == WrapStep.DECISION:
            values["text"] = parse_text(text, DECISION_MAX)
            return await self._save_wrap(actor.user_id, WrapStep.DOMAIN, values)
        if step == WrapStep.DEADLINE:
            due = views.parse_deadline_days(text, self.settings.tz, self.clock())
            if due is None or due <= self.clock():
                raise Refused("meeting.bad_deadline", text=text.strip()[:30])
            return await self._decide(actor, values, due)
        raise Refused("meeting.use_buttons")

    async def wrap_press(self, actor: Actor, press: Press, arg: str) -> Flow | Decided | None:
        """A button of the decisions: domain, assignee, deadline, or Done (None)."""
        flow = await self._require_wrap(actor.user_id)
        values = dict(flow.data)
        step = WrapStep(flow.step)
        if WRAP_PRESSED_AT.get(press) is not step:
            raise Refused("button.stale")
        if press == Press.DONE:
            async with self.store.transaction():
                await self.store.flows.clear(actor.user_id)
            return None
        if press == Press.DOMAIN:
            if arg not in DOMAINS:
                raise Refused("button.stale")
            values["domain"] = arg
            return await self._save_wrap(actor.user_id, WrapStep.ASSIGNEE, values)
        if press == Press.ASSIGNEE:
            return await self._pick(actor, values, arg)
        if not arg.isdecimal() or int(arg) not in views.DEADLINE_DAYS:
            raise Refused("button.stale")
        return await self._decide(actor, values, self.clock() + int(arg) * 86400)

    async def _pick(self, actor: Actor, values: dict[str, Any], arg: str) -> Flow:
        """A decision's assignee from 点将台's lists, checked as Assign on a card checks it
        ("All" widens the lists; "No one yet" leaves it to Assign on the ticket's card)."""
        values.pop("gone", None)
        if arg == assign.EVERYONE:
            values["everyone"] = True
            return await self._save_wrap(actor.user_id, WrapStep.ASSIGNEE, values)
        if arg == NOBODY_YET:
            values.pop("assign", None)
        else:
            scope = await self._decision_scope(await self._meeting(int(values["meeting"])),
                                               actor, values)
            await self.tickets.decision_choice(actor, scope, arg)
            values["assign"] = arg
        return await self._save_wrap(actor.user_id, WrapStep.DEADLINE, values)

    async def wrap_prompt(self, actor: Actor, locale: str, flow: Flow) -> View:
        values = flow.data
        step = WrapStep(flow.step)
        meeting = await self._meeting(int(values["meeting"]))
        if step == WrapStep.MINUTES:
            return View(t(locale, "meeting.ask_minutes", title=meeting.title))
        if step == WrapStep.DECISION:
            count = len(await self.store.meetings.decisions(meeting.id))
            return View(t(locale, "meeting.ask_decision", title=meeting.title, count=count),
                        [[button(t(locale, "meeting.btn_done"), data(Press.DONE))]])
        if step == WrapStep.DOMAIN:
            return View(t(locale, "meeting.ask_domain"), [
                [button(domain_label(locale, c), data(Press.DOMAIN, c))
                 for c in DOMAINS[i:i + 2]] for i in range(0, len(DOMAINS), 2)])
        if step == WrapStep.ASSIGNEE:
            return await self._assignee_prompt(actor, locale, meeting, values)
        return View(t(locale, "meeting.ask_deadline"), [
            [button(t(locale, "meeting.btn_days", days=days), data(Press.DEADLINE, days))
             for days in views.DEADLINE_DAYS]])

    async def _assignee_prompt(self, actor: Actor, locale: str, meeting: Meeting,
                               values: dict[str, Any]) -> View:
        """点将台's lists for the decision's domain, as "Assign / 点将" shows them on a card
        (SPEC §12), with "All" and "No one yet"."""
        scope = await self._decision_scope(meeting, actor, values)
        everyone = bool(values.get("everyone")) or not scope.filtered
        candidates = await self.tickets.decision_choices(actor, scope, everyone)
        lines, rows = assign.picker(locale, candidates,
                                    lambda arg: data(Press.ASSIGNEE, arg))
        head = t(locale, "meeting.ask_assignee_all" if everyone else "meeting.ask_assignee",
                 domain=domain_label(locale, scope.domain))
        if values.get("gone"):
            head = t(locale, "assign.not_candidate_now") + "\n" + head
        last = [button(t(locale, "meeting.btn_nobody_yet"), data(Press.ASSIGNEE, NOBODY_YET))]
        if not everyone:
            last.insert(0, button(t(locale, "assign.btn_all"),
                                  data(Press.ASSIGNEE, assign.EVERYONE)))
        return View("\n".join([head, *lines]), [*rows, last])

    async def _decision_scope(self, meeting: Meeting, actor: Actor,
                              values: dict[str, Any]) -> assign.Scope:
        """Where the decision's ticket will stand (`_building_of`): its community and grid,
        the decision's domain; the organiser, its reporter, is not listed."""
        chain = await self.store.map.ancestors(await self._building_of(meeting))
        grid = next((u.code for u in chain if u.kind == "grid"), "")
        community = next((u.code for u in chain if u.kind == "community"), "")
        return assign.Scope(community, grid, values.get("domain"), actor.user_id)

    async def _decide(self, actor: Actor, values: dict[str, Any],
                      due: float) -> Decided | Flow:
        """The decision as a ticket (source `meeting`), its pick asked and due; the next one
        asked. A pick no longer among the lists sends the flow back to the picker."""
        meeting = await self._meeting(int(values["meeting"]))
        building = await self._building_of(meeting)
        unit = await self.store.map.get(meeting.unit_code)
        level = unit.kind if unit is not None and unit.kind in STAFF_UNIT_KINDS else "building"
        locale = await self.people.locale_for(actor.user_id)
        pick = values.get("assign")
        if pick:  # no longer among the lists (a role revoked meanwhile): picked again
            try:
                await self.tickets.decision_choice(
                    actor, await self._decision_scope(meeting, actor, values), str(pick))
            except Refused:
                values.pop("assign")
                return await self._save_wrap(actor.user_id, WrapStep.ASSIGNEE,
                                             {**values, "gone": True})
        async with self.store.transaction():
            if (await self._require_wrap(actor.user_id)).step != WrapStep.DEADLINE:
                raise Refused("button.stale")  # a second press while the first was saved
            ticket = await self.tickets.meeting_ticket(
                organiser_id=actor.user_id, building_code=building, level=level,
                text=f"{values['text']}\n\n📋 {meeting.title}", domain=values.get("domain"),
                due_at=due, locale=locale)
            if ticket is None:
                raise Refused("meeting.flow_gone")
            if pick:  # asked as Assign on its card asks: Accept makes the assignee
                ticket = await self.tickets.assign_decision(actor, ticket, str(pick))
            person = str(pick)[1:] if pick and str(pick).startswith(assign.PERSON) else ""
            await self.store.meetings.add_decision(
                meeting.id, ticket.id, int(person) if person.isdecimal() else None, due)
            rest = {"meeting": meeting.id}
            await self.store.flows.set(actor.user_id, WRAP_FLOW, WrapStep.DECISION, rest)
        self.tickets.changed(ticket.remind_at)
        return Decided(ticket, Flow(user_id=actor.user_id, name=WRAP_FLOW,
                                    step=WrapStep.DECISION, data=rest))

    async def _building_of(self, meeting: Meeting) -> str:
        """A ticket stands on a building: the meeting's own, else the first in its scope."""
        buildings = await self.store.map.descendants(meeting.unit_code, "building")
        if not buildings:
            raise Refused("meeting.no_building", code=meeting.unit_code)
        return buildings[0].code

    async def _require_wrap(self, user_id: int) -> Flow:
        flow = await self.wrap_flow(user_id)
        if flow is None:
            raise Refused("meeting.flow_gone")
        return flow

    async def _save_wrap(self, user_id: int, step: WrapStep, values: dict[str, Any]) -> Flow:
        async with self.store.transaction():
            await self.store.flows.set(user_id, WRAP_FLOW, step, values)
        return Flow(user_id=user_id, name=WRAP_FLOW, step=step, data=values)

    # ------------------------------------------------------------------ /meetings

    async def attendance(self, meeting: Meeting) -> Attendance:
        attending, _ = await self.store.meetings.counts(meeting.id)
        return attendance(meeting, attending,
                          await self.store.meetings.signins([meeting.id]))

    async def listing(self, actor: Actor, locale: str) -> str:
        """`/meetings`: upcoming and recent (30 days) meetings in the asker's scope, with
        attendance (people signed in; for joint meetings the units on time and late)."""
        if not self.access.can_somewhere(actor, Action.MEETING):
            raise Refused("meeting.not_staff")
        now = self.clock()
        meetings = [m for m in await self.store.meetings.between(
            now - RECENT_DAYS * 86400, now + 366 * 86400)
            if await self.access.can(actor, Action.MEETING, m.unit_code)]
        if not meetings:
            return t(locale, "meeting.list_empty")
        tz = self.settings.tz
        upcoming = [m for m in meetings if m.ends_at > now]
        recent = [m for m in meetings if m.ends_at <= now][::-1]
        lines = []
        for title_key, group in (("meeting.list_upcoming", upcoming),
                                 ("meeting.list_recent", recent)):
            if not group:
                continue
            lines.append(t(locale, title_key))
            for meeting in group:
                summary = await self.attendance(meeting)
                lines.append(t(locale, "meeting.list_line", id=meeting.id,
                               kind=views.kind_label(locale, meeting.kind),
                               title=meeting.title, start=when(meeting.starts_at, tz),
                               attending=summary.attending, signed_in=summary.signed_in))
                if meeting.kind == MeetingKind.JOINT and (summary.on_time or summary.late):
                    labels = await self._unit_names(summary.on_time + summary.late)
                    lines.append(views.units_line(locale, labels, summary.on_time,
                                                  summary.late))
        return "\n".join(lines)

    async def _unit_names(self, codes: list[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for code in codes:
            unit = await self.store.map.get(code)
            names[code] = unit.name if unit else code
        return names

    async def _meeting(self, meeting_id: int) -> Meeting:
        meeting = await self.store.meetings.get(meeting_id)
        if meeting is None:
            raise Refused("meeting.unknown", id=meeting_id)
        return meeting


__all__ = ["MeetingPost", "MeetingService", "Target", "WRAP_FLOW", "WrapStep"]
