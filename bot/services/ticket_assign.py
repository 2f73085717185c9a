"""点将 (SPEC §10): "Assign" on a ticket's staff card opens 点将台's lists filtered by the
ticket's domain (people by their skills, member units by the domains of the resources they
offer; "All" lists everyone); the chosen person (or each contact of a chosen member unit) gets
the ticket privately (the reporter hidden if anonymous) with Accept / Decline. The first to
accept becomes the assignee as "Take it" makes one (the lifecycle's rows ASSIGN,
ASSIGN_ACCEPT, ASSIGN_DECLINE, PROGRESS; resolving is RESOLVE's row), may post progress
("Update") and resolves the ticket with a note and the hours it took: at most 8 are
credited, to their hours and to the time bank's ledger (as a horn's confirmed hours are).

A meeting's decision (SPEC §12) is given the same way, by the same code: its lists are read
for a `Scope` before the ticket exists (`decision_choices`, `decision_choice`) and the new
ticket is asked of the pick in the decision's transaction (`assign_decision`); `picker`
renders the lists for both.

Every press is checked again: the staff member's scope (`Action.TALENT`) and the ticket's
state for Assign; for the assignee's presses, their own ask and its state. Each person is
asked once per ticket (the store's unique key): a second ask, after a decline too, is refused
— until the ticket is reopened (SPEC §4 keeps no assignee then): an ask withdrawn or resolved
before may be made again, and a second resolution credits no more hours. A ticket closed by
anyone but its assignee's own resolve ends its open asks in the closing step
(`TicketLifecycle._end_asks`): each person is told, nothing is credited, and a later press on
the ask is answered that the ticket is closed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bot import labels
from bot.i18n import escape, t
from bot.labels import SKILL
from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Key, Refused
from bot.services.horn_closing import POINTS_PER_HOUR
from bot.services.outbox import Priority
from bot.services.ticket_lifecycle import TicketLifecycle
from bot.services.ticket_refs import note_ref
from bot.services.ticket_states import TicketAction
from bot.textsplit import LIMIT, visible_length
from storage.models import (
    PARTY_MEMBER,
    REASKABLE,
    Assignment,
    DueKind,
    Person,
    Skill,
    Ticket,
    TicketStatus,
    Unit,
)

#: the skills that suit a ticket's domain (SPEC §10); a domain not here (red, gold, none)
#: suits everyone
DOMAIN_SKILLS: Mapping[str, tuple[Skill, ...]] = MappingProxyType({
    "orange": (Skill.ELDERLY, Skill.CHILDCARE, Skill.MEDICAL),
    "green": (Skill.SANITATION,),
    "cyan": (Skill.IT, Skill.TRANSLATION),
    "blue": (Skill.LEGAL, Skill.PATROL),
    "purple": (Skill.REPAIRS, Skill.DRIVING),
})
MAX_HOURS = 8.0            # credited per ticket at most
EVERYONE = "*"             # the picker's "All"
MAX_CHOICES = 30           # lines a picker shows
PERSON, UNIT = "p", "u"    # a choice's argument: p<user id> or u<member unit code>
RESOLVE_ARG = "r"          # `t:prg:<ticket>:r`: the assignee's Resolve
UPDATE_FLOW = "assign_update"
NOTE_FLOW = "assign_note"
HOURS_FLOW = "assign_hours"
FLOWS = (UPDATE_FLOW, NOTE_FLOW, HOURS_FLOW)
_NO_DEADLINE = {"due_kind": None, "due_at": None, "remind_at": None}


@dataclass(frozen=True)
class Candidate:
    """A line of the picker: a person or a member unit, with what the staff weigh."""

    arg: str                       # the button's argument (p<id> / u<code>)
    name: str
    skills: tuple[str, ...] = ()
    load: int = 0                  # open assignments (of the unit's contacts)
    unit: Unit | None = None
    asked: bool = False            # asked for this ticket before: no button


@dataclass(frozen=True)
class Scope:
    """Where 点将台's lists are read for a ticket, or for a meeting's decision before its
    ticket exists (SPEC §12): the community and grid, the domain, the reporter (never listed)."""

    community_code: str
    grid_code: str
    domain: str | None
    reporter_id: int | None = None

    @classmethod
    def of(cls, ticket: Ticket) -> Scope:
        return cls(ticket.community_code, ticket.grid_code, ticket.domain, ticket.reporter_id)

    @property
    def filtered(self) -> bool:
        """Whether the domain narrows the lists (red, gold and none suit everyone)."""
        return bool(DOMAIN_SKILLS.get(self.domain or ""))


@dataclass(frozen=True)
class Choices:
    ticket: Ticket
    everyone: bool                 # "All": not filtered by the domain
    candidates: list[Candidate]


@dataclass(frozen=True)
class Resolved:
    ticket: Ticket
    hours: float
    points: int
    balance: int
    again: bool = False            # resolved before the ticket was reopened: no more hours


def parse_assign_hours(text: str) -> float:
    """The hours an assignee typed ("2", "1.5", "1,5 h"): above 0; at most MAX_HOURS count."""
    cleaned = text.strip().lower().rstrip("h小时 ").replace(",", ".")
    try:
        hours = float(cleaned)
    except ValueError:
        raise Refused("assign.bad_hours", max=f"{MAX_HOURS:g}") from None
    if not math.isfinite(hours) or hours <= 0:
        raise Refused("assign.bad_hours", max=f"{MAX_HOURS:g}")
    return round(min(hours, MAX_HOURS), 2)


class TicketAssignments(TicketLifecycle):
    async def _people_in(self, actor: Actor,
                         scope: Scope) -> dict[int, tuple[Person, tuple[str, ...]]]:
        """Volunteers and party members in 点将台's scope (the community for community staff,
        the grid for grid staff: SPEC §10), those reported to the community (双报到) included,
        with their skills; the reporter never (an anonymous one stays so)."""
        top = scope.community_code if await self.access.can(
            actor, Action.TALENT, scope.community_code) else scope.grid_code
        units = await self.store.map.descendants(top)
        codes = [u.code for u in units if u.kind != "member"]
        buildings = [u.code for u in units if u.kind == "building"]
        found: dict[int, Person] = {}
        for role in ("volunteer", PARTY_MEMBER):
            for person in await self.store.people.with_role(role, codes, buildings):
                found[person.user_id] = person
        reports = {r.user_id: r for r in
                   await self.store.units.dual_reports([scope.community_code])}
        for person in await self.store.people.many(list(reports)):
            found.setdefault(person.user_id, person)
        people = {}
        for user_id, person in sorted(found.items()):
            if user_id == scope.reporter_id or person.erased or person.blocked:
                continue
            report = reports.get(user_id)
            skills = tuple(str(s) for s in Skill if s in person.skills or
                           (report is not None and s in report.skills))
            people[user_id] = (person, skills)
        return people

    async def _ticket_for_assign(self, actor: Actor, ticket_id: int) -> Ticket:
        ticket = await self._staff_ticket(actor, ticket_id, Action.TALENT)
        self.check(TicketAction.ASSIGN, ticket)
        if ticket.assignee_id:
            raise Refused("assign.taken", id=ticket.id)
        return ticket

    async def assign_choices(self, actor: Actor, ticket_id: int, everyone: bool) -> Choices:
        """The picker of a ticket's card: 点将台's lists, those asked before marked."""
        ticket = await self._ticket_for_assign(actor, ticket_id)
        asked = {a.user_id for a in await self.store.assignments.of_ticket(ticket.id)
                 if a.state not in REASKABLE}
        return Choices(ticket, everyone,
                       await self._candidates(actor, Scope.of(ticket), everyone, asked))

    async def decision_choices(self, actor: Actor, scope: Scope,
                               everyone: bool) -> list[Candidate]:
        """The same lists for a meeting's decision, before its ticket exists (SPEC §12)."""
        await self._require_talent(actor, scope)
        return await self._candidates(actor, scope, everyone, set())

    async def decision_choice(self, actor: Actor, scope: Scope, arg: str) -> str:
        """A decision's pick, checked as Assign checks it: the name of who will be asked."""
        await self._require_talent(actor, scope)
        name, _ = await self._targets(actor, scope, arg, None)
        return name

    async def assign_decision(self, actor: Actor, ticket: Ticket, arg: str) -> Ticket:
        """Inside the caller's transaction: a meeting's decision, just made a ticket, asked
        of its pick exactly as Assign on a card asks (ASSIGN's row, Accept / Decline)."""
        name, targets = await self._targets(actor, Scope.of(ticket), arg, ticket.id)
        return await self._ask(actor, ticket, name, targets)

    async def _require_talent(self, actor: Actor, scope: Scope) -> None:
        if not await self.access.can(actor, Action.TALENT, scope.grid_code):
            raise Refused("talent.not_allowed")

    async def _candidates(self, actor: Actor, scope: Scope, everyone: bool,
                          asked: set[int]) -> list[Candidate]:
        """People whose skills suit the domain (or all, with "All"), then the community's
        member units (each through its contacts) with a resource serving the domain (or all);
        a unit with none that does is listed under "All" only."""
        wanted = DOMAIN_SKILLS.get(scope.domain or "", ())
        candidates = []
        for user_id, (person, skills) in (await self._people_in(actor, scope)).items():
            if wanted and not everyone and not set(skills) & set(wanted):
                continue
            candidates.append(Candidate(
                f"{PERSON}{user_id}", person.display_name, skills,
                await self.store.assignments.open_count(user_id), asked=user_id in asked))
        units = await self.store.map.members([scope.community_code])
        serving = {r.unit_code for r in await self.store.units.resources(
            [u.code for u in units]) if r.domain == scope.domain}
        for unit in units:
            if wanted and not everyone and unit.code not in serving:
                continue
            contacts = await self._contacts(unit, scope)
            if not contacts:
                continue
            load = sum([await self.store.assignments.open_count(p.user_id) for p in contacts])
            candidates.append(Candidate(
                f"{UNIT}{unit.code}", unit.name, load=load, unit=unit,
                asked=all(p.user_id in asked for p in contacts)))
        return candidates

    async def _contacts(self, unit: Unit, scope: Scope) -> list[Person]:
        return [p for p in await self.store.people.with_role("unit_contact", [unit.code], None)
                if p.user_id != scope.reporter_id and not p.erased and not p.blocked]

    async def _targets(self, actor: Actor, scope: Scope, arg: str,
                       ticket_id: int | None) -> tuple[str, list[tuple[int, str | None]]]:
        """Who a pick asks: the person, or each contact of the unit (with its code); the
        name to show. A pick no longer among the lists is refused."""
        refused = Refused("assign.not_candidate", id=ticket_id) if ticket_id is not None \
            else Refused("assign.not_candidate_now")
        if arg.startswith(PERSON) and arg[1:].isdecimal():
            found = (await self._people_in(actor, scope)).get(int(arg[1:]))
            if found is None:
                raise refused
            return found[0].display_name, [(found[0].user_id, None)]
        if arg.startswith(UNIT):
            unit = next((u for u in await self.store.map.members([scope.community_code])
                         if u.code == arg[1:]), None)
            contacts = await self._contacts(unit, scope) if unit is not None else []
            if unit is None or not contacts:
                raise refused
            return unit.name, [(p.user_id, unit.code) for p in contacts]
        raise Refused("button.stale")

    async def assign(self, actor: Actor, ticket_id: int, arg: str) -> tuple[Ticket, str]:
        """Ask the chosen person, or each contact of the chosen unit, privately; returns the
        ticket and the name of who was asked."""
        ticket = await self._ticket_for_assign(actor, ticket_id)
        name, targets = await self._targets(actor, Scope.of(ticket), arg, ticket.id)
        async with self.store.transaction():
            ticket = await self._ask(actor, ticket, name, targets)
        self.changed()
        return ticket, name

    async def _ask(self, actor: Actor, ticket: Ticket, name: str,
                   targets: list[tuple[int, str | None]]) -> Ticket:
        """Inside a transaction: the asks (one per person and ticket; one whose earlier ask
        was withdrawn or resolved before a reopening is asked anew), ASSIGN's row, and the
        ticket sent to each privately. The ticket is held and looked at again first: a
        Resolve or an Accept between the staff's press and this commit refuses it."""
        await self.store.db.lock_row("tickets", ticket.id)
        now = await self._get(ticket.id)
        self.check(TicketAction.ASSIGN, now)
        if now.assignee_id:
            raise Refused("assign.taken", id=ticket.id)
        ticket = now
        added: list[Assignment] = []
        for user_id, unit_code in targets:
            row = await self.store.assignments.add(ticket.id, user_id, unit_code,
                                                   actor.user_id, self.clock())
            if row is not None:
                added.append(row)
        if not added:
            raise Refused("assign.asked_before", id=ticket.id, name=name)
        ticket = await self._step(TicketAction.ASSIGN, ticket, actor.user_id, note=name,
                                  event_data={"users": [a.user_id for a in added],
                                              "unit": targets[0][1]})
        for row in added:
            await self._send_ask(ticket, row.user_id)
        return ticket

    async def _send_ask(self, ticket: Ticket, user_id: int) -> None:
        """The ticket, privately, with Accept / Decline: the reporter named only when they
        are neither anonymous nor a caller whose details are for staff."""
        locale = await self.people.locale_for(user_id)
        building = await self.store.map.get(ticket.building_code)
        values = {"id": ticket.id, "domain": views.domain_label(locale, ticket.domain),
                  "building": building.name if building else ticket.building_code}
        reporter = "" if ticket.anonymous or ticket.entered else \
            views.reporter_label(locale, ticket, await self.store.people.get(ticket.reporter_id))
        head = t(locale, "assign.ask", **values) + ("\n" + t(
            locale, "assign.ask_reporter", reporter=reporter) if reporter else "")
        if ticket.due_kind == DueKind.RESOLVE and ticket.due_at is not None:
            head += "\n" + t(locale, "assign.ask_due", due=views.when(ticket.due_at,
                                                                      self.settings.tz))
        text = f"{head}\n\n{escape(ticket.text)}"
        if visible_length(text) > LIMIT:
            await self._send_full_text(user_id, locale, ticket, 0, Priority.PERSONAL)
            text = f"{head}\n\n{t(locale, 'ticket.text_above')}"
        await self.outbox.send(user_id, text, priority=Priority.PERSONAL, buttons=[[
            views.press(t(locale, "btn.accept"), TicketAction.ASSIGN_ACCEPT, ticket.id),
            views.press(t(locale, "btn.decline"), TicketAction.ASSIGN_DECLINE, ticket.id)]],
            ref=note_ref(ticket.id))

    def _check_not_closed(self, ticket: Ticket) -> None:
        """A press on an ask of a ticket closed since (resolved, rejected or merged by
        others: the ask was withdrawn then) is answered that the ticket is closed, and how."""
        if not ticket.is_open:
            raise Refused("assign.closed", id=ticket.id,
                          state=Key(labels.STATUS[ticket.status]))

    async def answer_assignment(self, actor: Actor, ticket_id: int, accept: bool) -> Ticket:
        """Accept: the assignee, as "Take it" (the first wins; the others' asks withdrawn);
        Decline: the staff are told, and this person is not asked again for it."""
        ticket = await self._get(ticket_id)
        row = await self.store.assignments.get(ticket.id, actor.user_id)
        if row is None:
            raise Refused("button.stale")
        action = TicketAction.ASSIGN_ACCEPT if accept else TicketAction.ASSIGN_DECLINE
        self.check(action, ticket)  # closed since: "assign.closed", with how
        if row.state != "offered":
            raise Refused("assign.answered", id=ticket.id)
        person = await self.store.people.get(actor.user_id)
        name = person.display_name if person is not None else str(actor.user_id)
        now = self.clock()
        async with self.store.transaction():
            if not await self.store.assignments.move(
                    row.id, "offered", "accepted" if accept else "declined", now):
                raise Refused("assign.answered", id=ticket.id)
            if not accept:
                ticket = await self._step(action, ticket, actor.user_id, note=name,
                                          told={"name": name})
                return ticket
            if not await self.store.tickets.assign(ticket.id, actor.user_id):
                raise Refused("ticket.already_taken", id=ticket.id)
            # the others' asks still waiting end in the step (`_taken_asks`)
            ticket = await self._step(action, ticket, actor.user_id, note=name,
                                      event_data={"assignment": row.id},
                                      told={"name": name})
            locale = await self.people.locale_for(actor.user_id)
            await self.outbox.send(actor.user_id, t(locale, "assign.yours", id=ticket.id),
                                   priority=Priority.PERSONAL,
                                   buttons=assignee_buttons(locale, ticket.id),
                                   ref=note_ref(ticket.id))
        self.changed()
        return ticket

    async def _assignee_ticket(self, actor: Actor, ticket_id: int) -> tuple[Ticket, Assignment]:
        """The ticket and the actor's accepted assignment of it (else a refusal)."""
        ticket = await self._get(ticket_id)
        row = await self.store.assignments.get(ticket.id, actor.user_id)
        if row is not None and row.state == "withdrawn":
            self._check_not_closed(ticket)  # closed by staff while it was theirs
        if row is None or ticket.assignee_id != actor.user_id or \
                row.state not in ("accepted", "resolved"):
            raise Refused("assign.not_yours", id=ticket_id)
        return ticket, row

    async def ask_assignee(self, actor: Actor, ticket_id: int, resolve: bool) -> None:
        """"Update" or "Resolve" pressed: the next private text is the progress, or the
        result note (then the hours)."""
        ticket, row = await self._assignee_ticket(actor, ticket_id)
        self.check(TicketAction.RESOLVE if resolve else TicketAction.PROGRESS, ticket)
        if row.state != "accepted":
            raise Refused("assign.answered", id=ticket.id)
        async with self.store.transaction():
            await self.store.flows.set(actor.user_id, NOTE_FLOW if resolve else UPDATE_FLOW,
                                       "words", {"ticket": ticket.id})

    async def progress(self, actor: Actor, ticket_id: int, note: str) -> Ticket:
        """进展: the assignee's words on the timeline and in the staff thread."""
        ticket, row = await self._assignee_ticket(actor, ticket_id)
        self.check(TicketAction.PROGRESS, ticket)
        if row.state != "accepted":
            raise Refused("assign.answered", id=ticket.id)
        note = note.strip()[:1000]
        if not note:
            raise Refused("ticket.need_words")
        person = await self.store.people.get(actor.user_id)
        name = person.display_name if person is not None else str(actor.user_id)
        async with self.store.transaction():
            await self._clear_flow(actor.user_id)
            ticket = await self._step(TicketAction.PROGRESS, ticket, actor.user_id, note=note,
                                      told={"name": name, "note": note})
        return ticket

    async def _end_asks(self, ticket: Ticket, tell: bool) -> list[Assignment]:
        """The asks ended as the lifecycle ends them; an assignee in the middle of typing
        progress, a result or hours for this ticket leaves that flow."""
        withdrawn = await super()._end_asks(ticket, tell)
        for row in withdrawn:
            flow = await self.store.flows.get(row.user_id)
            if flow is not None and flow.name in FLOWS and flow.data.get("ticket") == ticket.id:
                await self.store.flows.clear(row.user_id)
        return withdrawn

    async def _clear_flow(self, user_id: int) -> None:
        flow = await self.store.flows.get(user_id)
        if flow is not None and flow.name in FLOWS:
            await self.store.flows.clear(user_id)

    async def assignee_text(self, actor: Actor, flow_name: str, ticket_id: int,
                            text: str) -> Ticket | Resolved | None:
        """The assignee's private text in one of the flows: the progress (the ticket), the
        result note (None: the hours are asked next), or the hours (resolved). Resolving a
        reopened ticket a second time asks no hours: its hours were credited the first."""
        if flow_name == UPDATE_FLOW:
            return await self.progress(actor, ticket_id, text)
        if flow_name == NOTE_FLOW:
            ticket, row = await self._assignee_ticket(actor, ticket_id)
            self.check(TicketAction.RESOLVE, ticket)
            note = text.strip()[:2000]
            if not note:
                raise Refused("ticket.need_words")
            if row.resolved_at is not None:
                return await self.resolve_assignment(actor, ticket_id, note, None)
            async with self.store.transaction():
                await self.store.flows.set(actor.user_id, HOURS_FLOW, "hours",
                                           {"ticket": ticket.id, "note": note})
            return None
        flow = await self.store.flows.get(actor.user_id)
        note = str(flow.data.get("note", "")) if flow is not None else ""
        return await self.resolve_assignment(actor, ticket_id, note, text)

    async def resolve_assignment(self, actor: Actor, ticket_id: int, note: str,
                                 hours_text: str | None) -> Resolved:
        """办结 by the assignee: RESOLVE's row (the reporter asked to rate), and the hours
        they typed, at most 8, credited once to their hours and the time bank (None: a
        second resolution after a reopening, nothing more credited)."""
        ticket, row = await self._assignee_ticket(actor, ticket_id)
        self.check(TicketAction.RESOLVE, ticket)
        note = note.strip()
        if not note:
            raise Refused("ticket.need_words")
        again = row.resolved_at is not None
        hours = 0.0 if again or hours_text is None else parse_assign_hours(hours_text)
        points = round(hours * POINTS_PER_HOUR)
        now = self.clock()
        async with self.store.transaction():
            if not await self.store.assignments.resolve(row.id, hours, points, now):
                raise Refused("assign.answered", id=ticket.id)
            resolved = await self._step(
                TicketAction.RESOLVE, ticket, actor.user_id, note=note,
                fields={"result_note": note, "resolved_at": now, **_NO_DEADLINE},
                event_data={"assignment": row.id, "hours": hours},
                told={"note": note}, buttons=views.rating_buttons(ticket.id))
            if ticket.status == TicketStatus.ACCEPTED:
                await self._ask_whistle_rating(resolved)
            await self._clear_flow(actor.user_id)
            if not again:
                await self.store.people.add_hours(actor.user_id, hours, points)
                await self.store.shop.credit(actor.user_id, points, now, None,
                                             ticket_id=ticket.id)
            balance = await self.store.shop.balance(actor.user_id)
        self.changed()
        return Resolved(resolved, hours, points, balance, again)


def picker(locale: str, candidates: list[Candidate], data: Callable[[str], str]
           ) -> tuple[list[str], views.Buttons]:
    """点将台's lists as a picker shows them, on a card's Assign and in a meeting's
    decision alike: a line per candidate and a button per one not asked before, whose callback
    data is `data(candidate.arg)`."""
    lines: list[str] = []
    rows: views.Buttons = []
    for choice in candidates[:MAX_CHOICES]:
        if choice.unit is not None:
            lines.append(t(locale, "assign.unit_line", name=choice.name, load=choice.load))
        else:
            lines.append(t(locale, "assign.person_line", name=choice.name, load=choice.load,
                           skills=", ".join(t(locale, SKILL[s]) for s in choice.skills)
                           or t(locale, "me.none")))
        if not choice.asked:
            label = f"🏢 {choice.name}" if choice.unit is not None else choice.name
            rows.append([views.button(label[:60], data(choice.arg))])
    if not candidates:
        lines.append(t(locale, "assign.nobody"))
    return lines, rows


def assignee_buttons(locale: str, ticket_id: int) -> views.Buttons:
    """The assignee's buttons: Update, Resolve (`t:prg:<ticket>` and `t:prg:<ticket>:r`)."""
    return [[views.press(t(locale, "assign.btn_update"), TicketAction.PROGRESS, ticket_id),
             views.press(t(locale, "btn.resolve"), TicketAction.PROGRESS, ticket_id,
                         RESOLVE_ARG)]]

