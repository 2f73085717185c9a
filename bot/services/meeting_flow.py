"""/meeting's guided flow (SPEC §12): kind, scope unit, title, place, start, end, agenda, then
the preview; or the short form `/meeting KIND UNIT_CODE YYYY-MM-DD HH:MM MINUTES TITLE…`
straight to the preview.

The flow lives in the store (store.flows, name "meeting"), so a restart keeps it, and has the
shape of the horn's and the intake's: typed answers are read by one parser per step, a bad
one is refused and the step stays; buttons are checked against the current step, so an old
prompt's button is stale. Publishing is `MeetingService.publish`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from bot.i18n import t
from bot.services import meeting_views as views
from bot.services.access import Action, Actor
from bot.services.base import Service
from bot.services.errors import Refused
from bot.services.horn_parse import parse_text, parse_time
from bot.services.meeting_views import Press, View, data
from bot.services.ticket_views import button, when
from storage.models import MEETING_KINDS, Flow, MeetingKind, Unit

FLOW = "meeting"
TITLE_MAX, PLACE_MAX, AGENDA_MAX = 100, 200, 2000
SIGNIN_BEFORE = 30 * 60        # the organiser may open sign-in this long before the start
MAX_SCOPE_BUTTONS = 12


class Step(StrEnum):
    KIND = "kind"
    SCOPE = "scope"
    TITLE = "title"
    PLACE = "place"
    START = "start"
    END = "end"
    AGENDA = "agenda"
    PREVIEW = "preview"


ORDER = tuple(Step)
ASK_KEYS: dict[Step, str] = {
    Step.KIND: "meeting.ask_kind", Step.SCOPE: "meeting.ask_scope",
    Step.TITLE: "meeting.ask_title", Step.PLACE: "meeting.ask_place",
    Step.START: "meeting.ask_start", Step.END: "meeting.ask_end",
    Step.AGENDA: "meeting.ask_agenda"}
PRESSED_AT: dict[Press, Step] = {Press.KIND: Step.KIND, Press.SCOPE: Step.SCOPE,
                                 Press.PUBLISH: Step.PREVIEW}


def next_step(step: Step) -> Step:
    return ORDER[ORDER.index(step) + 1]


class MeetingFlow(Service):
    async def flow(self, user_id: int) -> Flow | None:
        """The person's meeting flow, if that is what they are in."""
        flow = await self.store.flows.get(user_id)
        return flow if flow is not None and flow.name == FLOW else None

    def require_organiser(self, actor: Actor) -> None:
        if not self.access.can_somewhere(actor, Action.MEETING):
            raise Refused("meeting.not_staff")

    async def start(self, actor: Actor) -> Flow:
        """/meeting: the first step (the kind)."""
        self.require_organiser(actor)
        return await self._save(actor.user_id, Step.KIND, {})

    async def short_form(self, actor: Actor, text: str) -> Flow:
        """`/meeting KIND UNIT_CODE YYYY-MM-DD HH:MM MINUTES TITLE…` straight to the preview."""
        self.require_organiser(actor)
        parts = text.split(maxsplit=5)
        if len(parts) < 6:
            raise Refused("meeting.usage")
        kind = views.parse_kind(parts[0])
        scope = await self.checked_scope(actor, parts[1])
        start = self._start(f"{parts[2]} {parts[3]}")
        minutes = views.parse_minutes(parts[4])
        if minutes is None:
            raise Refused("meeting.bad_minutes", text=parts[4][:30])
        return await self._save(actor.user_id, Step.PREVIEW, {
            "kind": kind, "scope": scope, "title": parse_text(parts[5], TITLE_MAX),
            "place": "", "agenda": "", "start": start, "end": start + minutes * 60})

    async def answer(self, actor: Actor, text: str) -> Flow:
        """Typed input for the current step; a bad one is refused and the step stays."""
        flow = await self.require(actor.user_id)
        values = dict(flow.data)
        step = Step(flow.step)
        if step == Step.KIND:
            values["kind"] = views.parse_kind(text)
        elif step == Step.SCOPE:
            values["scope"] = await self.checked_scope(actor, text.strip())
        elif step == Step.TITLE:
            values["title"] = parse_text(text, TITLE_MAX)
        elif step == Step.PLACE:
            values["place"] = parse_text(text, PLACE_MAX)
        elif step == Step.START:
            values["start"] = self._start(text)
        elif step == Step.END:
            values["end"] = self._end(text, float(values["start"]))
        elif step == Step.AGENDA:
            values["agenda"] = "" if text.strip() in ("-", "—") else parse_text(text, AGENDA_MAX)
        else:
            raise Refused("meeting.use_buttons")
        return await self._save(actor.user_id, next_step(step), values)

    async def press(self, actor: Actor, press: Press, arg: str) -> Flow | None:
        """A button of the flow, checked against the current step; None: cancelled."""
        if press == Press.CANCEL:
            async with self.store.transaction():
                await self.require(actor.user_id)
                await self.store.flows.clear(actor.user_id)
            return None
        flow = await self.require(actor.user_id)
        values = dict(flow.data)
        step = Step(flow.step)
        if PRESSED_AT.get(press) is not step:
            raise Refused("button.stale")
        if press == Press.KIND:
            if arg not in MEETING_KINDS:
                raise Refused("button.stale")
            values["kind"] = arg
        elif press == Press.SCOPE:
            values["scope"] = await self.checked_scope(actor, arg)
        return await self._save(actor.user_id, next_step(step), values)

    async def prompt(self, actor: Actor, locale: str, flow: Flow) -> View:
        """What to show for the flow's current step."""
        values = flow.data
        step = Step(flow.step)
        cancel = [button(t(locale, "meeting.btn_cancel"), data(Press.CANCEL))]
        if step == Step.PREVIEW:
            unit = await self.store.map.get(values["scope"])
            scope = views.scope_label(unit.name if unit else "", values["scope"])
            tz = self.settings.tz
            return View(t(locale, "meeting.preview", kind=views.kind_label(locale, values["kind"]),
                          title=values["title"], scope=scope, start=when(values["start"], tz),
                          end=when(values["end"], tz),
                          place=values.get("place") or t(locale, "meeting.no_place"),
                          agenda=values.get("agenda") or "—"),
                        [[button(t(locale, "meeting.btn_publish"), data(Press.PUBLISH))], cancel])
        ask = ASK_KEYS[step]
        if step == Step.KIND:
            return View(t(locale, ask), [[button(views.kind_label(locale, kind),
                                                 data(Press.KIND, kind))]
                                         for kind in MEETING_KINDS] + [cancel])
        if step == Step.SCOPE:
            units = await self._scope_choices(actor)
            return View(t(locale, ask, example=units[0].code if units else "G0101"),
                        [[button(f"{u.name} ({u.code})", data(Press.SCOPE, u.code))]
                         for u in units] + [cancel])
        if step in (Step.START, Step.END):
            return View(t(locale, ask, example=self._example(values)), [cancel])
        return View(t(locale, ask), [cancel])

    async def require(self, user_id: int) -> Flow:
        flow = await self.flow(user_id)
        if flow is None:
            raise Refused("meeting.flow_gone")
        return flow

    async def checked_scope(self, actor: Actor, code: str) -> str:
        """A unit of the map (not a department) within the organiser's authority."""
        unit = await self.store.map.get(code) or await self.store.map.get(code.upper())
        if unit is None:
            raise Refused("map.unknown_code", code=code[:30])
        if unit.kind == "department":
            raise Refused("meeting.bad_scope", code=unit.code)
        if not await self.access.can(actor, Action.MEETING, unit.code):
            raise Refused("meeting.scope_not_allowed", code=unit.code)
        return unit.code

    def check_times(self, start: float, end: float) -> None:
        """An end after the start, and not in the past."""
        if end <= start:
            raise Refused("meeting.end_before_start", start=when(start, self.settings.tz))
        if end <= self.clock():
            raise Refused("meeting.time_past")

    def _start(self, text: str) -> float:
        moment = parse_time(text, self.settings.tz, self.clock())
        if moment is None:
            raise Refused("meeting.bad_time", text=text.strip()[:30],
                          example=self._example({}))
        if moment < self.clock():
            raise Refused("meeting.time_past")
        return moment

    def _end(self, text: str, start: float) -> float:
        """The end as a time, or the meeting's length in minutes."""
        minutes = views.parse_minutes(text)
        moment = start + minutes * 60 if minutes is not None else \
            parse_time(text, self.settings.tz, start)
        if moment is None:
            raise Refused("meeting.bad_time", text=text.strip()[:30],
                          example=self._example({"start": start}))
        self.check_times(start, moment)
        return moment

    def _example(self, values: dict[str, Any]) -> str:
        hour = 3600
        start = values.get("start")
        moment = float(start) + 2 * hour if start is not None \
            else (int(self.clock()) // hour + 24) * hour
        return when(moment, self.settings.tz)

    async def _scope_choices(self, actor: Actor) -> list[Unit]:
        """The units of the organiser's authority and one level below them."""
        tops = await self.store.map.children(None) if actor.superadmin else \
            await self.access.scope_units(actor, Action.MEETING)
        choices: list[Unit] = []
        for unit in tops:
            if unit.kind == "department" or unit in choices:
                continue
            choices.append(unit)
            if unit.kind in ("community", "grid"):
                choices += [c for c in await self.store.map.children(unit.code)
                            if c not in choices]
        return choices[:MAX_SCOPE_BUTTONS]

    async def _save(self, user_id: int, step: Step, values: dict[str, Any]) -> Flow:
        async with self.store.transaction():
            await self.store.flows.set(user_id, FLOW, step, values)
        return Flow(user_id=user_id, name=FLOW, step=step, data=values)


__all__ = ["FLOW", "MeetingFlow", "MeetingKind", "SIGNIN_BEFORE", "Step"]
