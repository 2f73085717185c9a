"""Staff intake (工单录入, SPEC §11): cases that do not arrive through a resident's phone —
the 12345 hotline, the mailbox, a visit, a call, a patrol, a meeting — entered by staff.

`/intake` is a guided flow (stored in `flows`, name "intake", so a restart keeps it): source,
the external reference number (hotline and mailbox only, and required there), building
(within the staff member's scope), domain, urgency, text, photos and the caller (optional,
staff-only), then a preview to create. The short form `/intake SOURCE [REF] BUILDING TEXT…`
asks only for the domain and creates the ticket with urgency routine.

The ticket is made on the resident's Submit path (`TicketDrafts._open_ticket`: one insert,
its timeline row, its receipt, its cards flagged for the backlog, one transaction). Its
reporter is the staff member who entered it: every reporter notice goes to them, and after
"resolved" they record the caller's verdict (a rating of 5, 3 or 1 stars). The same source
and reference twice is refused naming the existing ticket; the store's UNIQUE index decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot import labels
from bot.i18n import escape, join_list, t
from bot.services import presses
from bot.services import ticket_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Key, Refused
from bot.services.ticket_drafts import MAX_PHOTOS, TicketDrafts
from bot.services.ticket_states import TimelineEvent
from bot.services.ticket_views import Buttons, button
from storage.models import (
    DOMAINS,
    INTAKE_SOURCES,
    SOURCES_WITH_REF,
    DueKind,
    Flow,
    Ticket,
    TicketSource,
    TicketStatus,
    Urgency,
)

FLOW = "intake"
PREFIX = "ik"  # callback data: `ik:<press>[:<arg>]`
TEXT_MAX = 4000
REF_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._/\-]{0,39}$")
PHONE_PATTERN = re.compile(r"^\+?[\d\-]{5,20}$")
NAME_MAX = 60
MAX_BUILDING_BUTTONS = 12


class IntakeStep(StrEnum):
    SOURCE = "source"
    REF = "ref"
    BUILDING = "building"
    DOMAIN = "domain"
    URGENCY = "urgency"
    TEXT = "text"
    PHOTOS = "photos"
    CALLER = "caller"
    PREVIEW = "preview"


class IntakePress(StrEnum):
    """The flow's buttons; each belongs to one step (an older prompt's button is stale)."""

    START = "start"        # "Report a problem" under /patrol: the flow, source filled in
    SOURCE = "src"
    BUILDING = "bld"
    DOMAIN = "dom"
    URGENCY = "urg"
    PHOTOS_DONE = "done"
    SKIP_CALLER = "skip"
    CREATE = "create"
    CANCEL = "cancel"


PRESSED_AT: dict[IntakePress, IntakeStep] = {
    IntakePress.SOURCE: IntakeStep.SOURCE, IntakePress.BUILDING: IntakeStep.BUILDING,
    IntakePress.DOMAIN: IntakeStep.DOMAIN, IntakePress.URGENCY: IntakeStep.URGENCY,
    IntakePress.PHOTOS_DONE: IntakeStep.PHOTOS, IntakePress.SKIP_CALLER: IntakeStep.CALLER,
    IntakePress.CREATE: IntakeStep.PREVIEW}
ASK_KEYS: dict[IntakeStep, str] = {
    IntakeStep.SOURCE: "intake.ask_source", IntakeStep.REF: "intake.ask_ref",
    IntakeStep.BUILDING: "intake.ask_building", IntakeStep.DOMAIN: "intake.ask_domain",
    IntakeStep.URGENCY: "intake.ask_urgency", IntakeStep.TEXT: "intake.ask_text",
    IntakeStep.PHOTOS: "intake.ask_photos", IntakeStep.CALLER: "intake.ask_caller"}
ORDER = (IntakeStep.SOURCE, IntakeStep.REF, IntakeStep.BUILDING, IntakeStep.DOMAIN,
         IntakeStep.URGENCY, IntakeStep.TEXT, IntakeStep.PHOTOS, IntakeStep.CALLER,
         IntakeStep.PREVIEW)


@dataclass(frozen=True)
class IntakeView:
    """A step's prompt (HTML) and its buttons."""

    text: str
    buttons: Buttons = field(default_factory=list)


def press_data(press: IntakePress, arg: str | None = None) -> str:
    return presses.encode(PREFIX, press, arg)


def read_press(data: str) -> tuple[IntakePress, str]:
    """A press's button and argument; a forged or unknown one is stale."""
    return presses.decode(data, IntakePress)


def parse_source(text: str) -> TicketSource:
    word = text.strip().lower().replace("-", "_")
    if word == "12345":
        word = TicketSource.HOTLINE
    if word not in INTAKE_SOURCES:
        raise Refused("intake.unknown_source", source=text.strip()[:30],
                      sources=", ".join(INTAKE_SOURCES))
    return TicketSource(word)


def parse_ref(text: str) -> str:
    ref = text.strip().lstrip("#").upper()
    if not ref:
        raise Refused("intake.ref_required")
    if not REF_PATTERN.match(ref):
        raise Refused("intake.bad_ref", ref=text.strip()[:40])
    return ref


def parse_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise Refused("intake.need_text")
    if len(text) > TEXT_MAX:
        raise Refused("intake.text_too_long", limit=TEXT_MAX)
    return text


def parse_caller(text: str) -> tuple[str | None, str | None]:
    """"NAME PHONE" in any order; either may be left out."""
    phones = [w for w in text.split() if PHONE_PATTERN.match(w)]
    name = " ".join(w for w in text.split() if w not in phones)
    if len(phones) > 1 or len(name) > NAME_MAX:
        raise Refused("intake.bad_caller")
    return name or None, phones[0] if phones else None


def next_step(step: IntakeStep, source: str | None) -> IntakeStep:
    following = ORDER[ORDER.index(step) + 1]
    if following == IntakeStep.REF and source not in SOURCES_WITH_REF:
        return IntakeStep.BUILDING
    return following


class TicketIntake(TicketDrafts):
    async def intake_flow(self, user_id: int) -> Flow | None:
        """The person's intake flow, if that is what they are in."""
        flow = await self.store.flows.get(user_id)
        return flow if flow is not None and flow.name == FLOW else None

    def _require_staff(self, actor: Actor) -> None:
        if not self.access.can_somewhere(actor, Action.HANDLE_TICKET):
            raise Refused("intake.not_staff")

    async def start_intake(self, actor: Actor, source: str | None = None) -> Flow:
        """/intake: the first step; "Report a problem" under /patrol fills the source in
        (`patrol:BUILDING` under a checkpoint's visit: its building too, SPEC §13)."""
        self._require_staff(actor)
        data: dict[str, Any] = {"photos": []}
        step = IntakeStep.SOURCE
        if source is not None:
            source, _, building = source.partition(":")
            data["source"] = parse_source(source)
            step = next_step(step, data["source"])
            if building and step == IntakeStep.BUILDING:
                data["building"] = await self._checked_building(actor, building)
                step = next_step(step, data["source"])
        return await self._save(actor.user_id, step, data)

    async def intake_short(self, actor: Actor, text: str) -> Flow:
        """`/intake SOURCE [REF] BUILDING TEXT…`: everything checked, then the domain."""
        self._require_staff(actor)
        words = text.split(maxsplit=1)
        if not words:
            raise Refused("intake.usage", sources=", ".join(INTAKE_SOURCES))
        source = parse_source(words[0])
        rest = words[1] if len(words) > 1 else ""
        ref = None
        if source in SOURCES_WITH_REF:
            first = rest.split(maxsplit=1)
            if not first or await self._is_building(first[0]):
                raise Refused("intake.ref_required")
            ref = parse_ref(first[0])
            await self._check_unused(source, ref)
            rest = first[1] if len(first) > 1 else ""
        parts = rest.split(maxsplit=1)
        if len(parts) < 2:
            raise Refused("intake.usage", sources=", ".join(INTAKE_SOURCES))
        building = await self._checked_building(actor, parts[0])
        return await self._save(actor.user_id, IntakeStep.DOMAIN, {
            "source": source, "ref": ref, "building": building, "text": parse_text(parts[1]),
            "urgency": Urgency.ROUTINE, "photos": [], "short": True})

    async def intake_answer(self, actor: Actor, text: str, photo: str | None) -> Flow:
        """Typed input (or a photo) for the current step; a bad one is refused and the step
        stays."""
        flow = await self._require_flow(actor.user_id)
        data = dict(flow.data)
        step = IntakeStep(flow.step)
        if step == IntakeStep.PHOTOS and photo is not None:
            photos = list(data.get("photos") or [])
            if photo not in photos and len(photos) < MAX_PHOTOS:
                photos.append(photo)
            data["photos"] = photos
            if text.strip():
                data["text"] = f"{data['text']}\n{text.strip()}"
            return await self._save(actor.user_id, step, data)
        if photo is not None or not text.strip():
            raise Refused("intake.use_buttons")
        if step == IntakeStep.SOURCE:
            data["source"] = parse_source(text)
        elif step == IntakeStep.REF:
            data["ref"] = parse_ref(text)
            await self._check_unused(data["source"], data["ref"])
        elif step == IntakeStep.BUILDING:
            data["building"] = await self._checked_building(actor, text.strip())
        elif step == IntakeStep.TEXT:
            data["text"] = parse_text(text)
        elif step == IntakeStep.CALLER:
            data["caller_name"], data["caller_phone"] = parse_caller(text)
        else:
            raise Refused("intake.use_buttons")
        return await self._save(actor.user_id, next_step(step, data.get("source")), data)

    async def intake_press(self, actor: Actor, press: IntakePress, arg: str
                           ) -> Flow | Ticket | None:
        """A button of the flow, checked against the current step: the next step, the
        ticket made (Create, or the domain of the short form), or None (cancelled)."""
        if press == IntakePress.START:
            return await self.start_intake(actor, arg)
        if press == IntakePress.CANCEL:
            async with self.store.transaction():
                await self._require_flow(actor.user_id)
                await self.store.flows.clear(actor.user_id)
            return None
        flow = await self._require_flow(actor.user_id)
        data = dict(flow.data)
        step = IntakeStep(flow.step)
        if PRESSED_AT.get(press) is not step:
            raise Refused("button.stale")
        if press == IntakePress.SOURCE:
            data["source"] = parse_source(arg)
        elif press == IntakePress.BUILDING:
            data["building"] = await self._checked_building(actor, arg)
        elif press == IntakePress.DOMAIN:
            if arg != views.UNSURE and arg not in DOMAINS:
                raise Refused("button.stale")
            data["domain"] = None if arg == views.UNSURE else arg
            if data.get("short"):
                return await self._create(actor, data)
        elif press == IntakePress.URGENCY:
            if arg not in tuple(Urgency):
                raise Refused("button.stale")
            data["urgency"] = arg
        elif press == IntakePress.SKIP_CALLER:
            data["caller_name"] = data["caller_phone"] = None
        elif press == IntakePress.CREATE:
            return await self._create(actor, data)
        return await self._save(actor.user_id, next_step(step, data.get("source")), data)

    async def intake_prompt(self, actor: Actor, locale: str, flow: Flow) -> IntakeView:
        """What to show for the flow's current step."""
        data = flow.data
        step = IntakeStep(flow.step)
        cancel = [button(t(locale, "intake.btn_cancel"), press_data(IntakePress.CANCEL))]
        if step == IntakeStep.PREVIEW:
            return IntakeView(await self._preview(locale, data), [
                [button(t(locale, "intake.btn_create"), press_data(IntakePress.CREATE))],
                cancel])
        rows: Buttons = []
        if step == IntakeStep.SOURCE:
            rows = [[button(t(locale, labels.SOURCE[s]), press_data(IntakePress.SOURCE, s))
                     for s in INTAKE_SOURCES[i:i + 2]] for i in range(0, len(INTAKE_SOURCES), 2)]
        elif step == IntakeStep.BUILDING:
            rows = [[button(f"{u.name} ({u.code})", press_data(IntakePress.BUILDING, u.code))]
                    for u in (await self.access.scope_units(actor, Action.HANDLE_TICKET))
                    if u.kind == "building"][:MAX_BUILDING_BUTTONS]
        elif step == IntakeStep.DOMAIN:
            codes: list[str | None] = [*DOMAINS, None]
            rows = [[button(views.domain_label(locale, c),
                            press_data(IntakePress.DOMAIN, c or views.UNSURE))
                     for c in codes[i:i + 2]] for i in range(0, len(codes), 2)]
        elif step == IntakeStep.URGENCY:
            rows = [[button(views.urgency_label(locale, u), press_data(IntakePress.URGENCY, u))
                     for u in Urgency]]
        elif step == IntakeStep.PHOTOS:
            rows = [[button(t(locale, "intake.btn_photos_done", count=len(data["photos"])),
                            press_data(IntakePress.PHOTOS_DONE))]]
        elif step == IntakeStep.CALLER:
            rows = [[button(t(locale, "intake.btn_skip_caller"),
                            press_data(IntakePress.SKIP_CALLER))]]
        return IntakeView(t(locale, ASK_KEYS[step]), rows + [cancel])

    async def _preview(self, locale: str, data: dict[str, Any]) -> str:
        building = await self.store.map.get(data["building"])
        source = t(locale, labels.SOURCE[data["source"]])
        caller = " ".join(p for p in (data.get("caller_name"), data.get("caller_phone")) if p)
        return t(locale, "intake.preview",
                 source=f"{source} #{data['ref']}" if data.get("ref") else source,
                 building=f"{building.name} ({building.code})" if building else data["building"],
                 domain=views.domain_label(locale, data.get("domain")),
                 urgency=views.urgency_label(locale, Urgency(data["urgency"])),
                 photos=len(data.get("photos") or []),
                 caller=caller or t(locale, "intake.no_caller")) + \
            "\n\n" + escape(data["text"])

    async def _create(self, actor: Actor, data: dict[str, Any]) -> Ticket:
        """Ticket #N on the Submit path, the flow ended, in one transaction; checked again
        first (roles and the map may have changed since the step)."""
        self._require_staff(actor)
        building = await self._checked_building(actor, data["building"])
        source, ref = TicketSource(data["source"]), data.get("ref")
        if source in SOURCES_WITH_REF and not ref:
            raise Refused("intake.ref_required")
        if ref:
            await self._check_unused(source, ref)
        chain = await self.store.map.ancestors(building)
        grid = next((u for u in chain if u.kind == "grid"), None)
        community = next((u for u in chain if u.kind == "community"), None)
        if grid is None or community is None:
            raise Refused("intake.unknown_building", code=building)
        locale = await self.people.locale_for(actor.user_id)
        async with self.store.transaction():
            if not await self.store.flows.clear(actor.user_id):  # a second Create
                raise Refused("intake.flow_gone")
            ticket = await self._open_ticket(
                reporter_id=actor.user_id, building_code=building, grid_code=grid.code,
                community_code=community.code, domain=data.get("domain"), text=data["text"],
                photos=list(data.get("photos") or []), urgency=Urgency(data["urgency"]),
                receipt="intake.created", locale=locale, source=source, source_ref=ref,
                caller_name=data.get("caller_name"), caller_phone=data.get("caller_phone"))
            if ticket is None:  # the store refused it: the reference came in meanwhile
                if ref:
                    await self._check_unused(source, ref)
                raise Refused("intake.flow_gone")
        self.changed(ticket.remind_at)
        return ticket

    async def meeting_ticket(self, *, organiser_id: int, building_code: str, level: str,
                             text: str, domain: str | None, due_at: float,
                             locale: str) -> Ticket | None:
        """Inside a transaction: a meeting's decision (SPEC §12) as ticket #N on the Submit
        path, source `meeting`, its organiser the reporter; decided, so acknowledged, at the
        meeting's level, due to be resolved by `due_at` (its assignee asked by the caller, as
        Assign asks). None on a replay."""
        chain = await self.store.map.ancestors(building_code)
        grid = next((u for u in chain if u.kind == "grid"), None)
        community = next((u for u in chain if u.kind == "community"), None)
        if grid is None or community is None:
            raise Refused("intake.unknown_building", code=building_code)
        ticket = await self._open_ticket(
            "meeting.decision_receipt", reporter_id=organiser_id, building_code=building_code,
            grid_code=grid.code, community_code=community.code, domain=domain, text=text,
            photos=[], urgency=Urgency.ROUTINE, locale=locale, source=TicketSource.MEETING)
        if ticket is None:
            return None
        now = self.clock()
        await self.store.tickets.update(
            ticket.id, status=TicketStatus.ACKNOWLEDGED, level=level,
            **self._due_fields(DueKind.RESOLVE, now, max(due_at - now, 60.0)))
        await self.store.tickets.add_event(ticket.id, organiser_id,
                                           TimelineEvent.ACKNOWLEDGED)
        return await self.store.tickets.get(ticket.id)

    async def _check_unused(self, source: str, ref: str) -> None:
        existing = await self.store.tickets.by_source_ref(source, ref)
        if existing is not None:
            raise Refused("intake.duplicate", id=existing.id, ref=ref,
                          source=Key(labels.SOURCE[source]))

    async def _is_building(self, code: str) -> bool:
        unit = await self.store.map.get(code.upper())
        return unit is not None and unit.kind == "building"

    async def _checked_building(self, actor: Actor, code: str) -> str:
        """A building of the map, within the actor's scope."""
        unit = await self.store.map.get(code) or await self.store.map.get(code.upper())
        if unit is None or unit.kind != "building":
            raise Refused("intake.unknown_building", code=code[:30])
        if not await self.access.can(actor, Action.HANDLE_TICKET, unit.code):
            raise Refused("intake.building_not_allowed", code=unit.code)
        return unit.code

    async def _require_flow(self, user_id: int) -> Flow:
        flow = await self.intake_flow(user_id)
        if flow is None:
            raise Refused("intake.flow_gone")
        return flow

    async def _save(self, user_id: int, step: IntakeStep, data: dict[str, Any]) -> Flow:
        async with self.store.transaction():
            await self.store.flows.set(user_id, FLOW, step, data)
        return Flow(user_id=user_id, name=FLOW, step=step, data=data)


def sources_text(locale: str) -> str:
    """The sources as a list of their codes and names (the usage text)."""
    return join_list(locale, (f"{s} {t(locale, labels.SOURCE[s])}" for s in INTAKE_SOURCES))
