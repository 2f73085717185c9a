"""/horn's guided flow (SPEC §5): level, scope, title, details, place, start, end, people
needed, fill-by time, skills, preview; or the short form straight to the preview.

The flow lives in the store (store.flows, name "horn"), so a restart keeps it. Typed answers
are read by `horn_parse`; a bad one is refused and the step stays. Buttons are checked against
the current step, so an old prompt's button is stale. Publishing is `HornCopies.publish`.
"""

from __future__ import annotations

from typing import Any

from bot.i18n import t
from bot.services import horn_views as views
from bot.services.access import Action, Actor
from bot.services.errors import Key, Refused
from bot.services.horn_base import FLOW, HOURS_FLOW, HornPart, Step, action_for
from bot.services.horn_codes import FlowPress, flow_data
from bot.services.horn_parse import (
    PAST_TOLERANCE,
    example_time,
    example_values,
    parse_codes,
    parse_level,
    parse_needed,
    parse_text,
    parse_time,
)
from bot.services.horn_units import checked_units, units_in_reach
from bot.services.scopes import outermost
from bot.services.ticket_views import button, when
from storage.models import HORN_LEVELS, SKILLS, Flow, HornLevel, Unit

TEXT_LIMITS: dict[Step, int] = {Step.TITLE: 100, Step.DETAILS: 1000, Step.PLACE: 200}
TIME_STEPS = (Step.START, Step.END, Step.FILL_BY)
ASK_KEYS: dict[Step, str] = {
    Step.LEVEL: "horn.ask_level", Step.SCOPE: "horn.ask_scope", Step.TITLE: "horn.ask_title",
    Step.DETAILS: "horn.ask_details", Step.PLACE: "horn.ask_place",
    Step.START: "horn.ask_start", Step.END: "horn.ask_end", Step.NEEDED: "horn.ask_needed",
    Step.FILL_BY: "horn.ask_fill_by", Step.SKILLS: "horn.ask_skills"}
PRESSED_AT: dict[FlowPress, Step] = {
    FlowPress.LEVEL: Step.LEVEL, FlowPress.SCOPE: Step.SCOPE, FlowPress.SKIP: Step.FILL_BY,
    FlowPress.SKILL: Step.SKILLS, FlowPress.SKILLS_DONE: Step.SKILLS,
    FlowPress.UNIT: Step.PREVIEW}
MAX_UNIT_BUTTONS = 20         # "Also call" member units at the preview (SPEC §10)
MAX_SCOPE_BUTTONS = 12


class HornFlow(HornPart):
    async def flow(self, user_id: int) -> Flow | None:
        """The person's horn flow (or hours prompt), if that is what they are in."""
        flow = await self.store.flows.get(user_id)
        return flow if flow is not None and flow.name in (FLOW, HOURS_FLOW) else None

    def levels_for(self, actor: Actor) -> tuple[HornLevel, ...]:
        if self.access.can_somewhere(actor, Action.HORN_ANY):
            return HORN_LEVELS
        if self.access.can_somewhere(actor, Action.HORN_SERVICE):
            return (HornLevel.SERVICE,)
        return ()

    async def start(self, actor: Actor) -> Flow:
        """/horn: the first step (the level)."""
        if not self.levels_for(actor):
            raise Refused("horn.not_staff")
        return await self.save_flow(actor.user_id, FLOW, Step.LEVEL, {"skills": []})

    async def short_form(self, actor: Actor, text: str) -> Flow:
        """`/horn LEVEL UNIT_CODE NEEDED TITLE…` straight to the preview."""
        parts = text.split(maxsplit=3)
        if len(parts) < 4:
            raise Refused("horn.usage")
        if not self.levels_for(actor):
            raise Refused("horn.not_staff")
        level = self.allowed_level(actor, parse_level(parts[0]))
        scope = await self.checked_scope(actor, level, [parts[1]])
        needed = parse_needed(parts[2])
        # `+M01 +M02`: member units called too (SPEC §10)
        words = parts[3].split()
        called = [w[1:] for w in words if w.startswith("+") and len(w) > 1]
        title = parse_text(" ".join(w for w in words if not (w.startswith("+") and len(w) > 1)),
                           TEXT_LIMITS[Step.TITLE])
        units = await checked_units(self.store, scope, called)
        return await self.save_flow(actor.user_id, FLOW, Step.PREVIEW, {
            "level": level, "scope": scope, "title": title, "details": "", "place": "",
            "start": None, "end": None, "needed": needed, "fill_by": None, "skills": [],
            "short": True, "units": units})

    async def answer(self, actor: Actor, text: str) -> Flow:
        """Typed input for the current step; a bad one is refused and the step stays."""
        flow = await self.require(actor.user_id)
        data = dict(flow.data)
        step = Step(flow.step)
        if step == Step.LEVEL:
            data["level"] = self.allowed_level(actor, parse_level(text))
        elif step == Step.SCOPE:
            data["scope"] = await self.checked_scope(actor, HornLevel(data["level"]),
                                                     parse_codes(text))
        elif step in TEXT_LIMITS:
            data[step.value] = parse_text(text, TEXT_LIMITS[step])
        elif step in TIME_STEPS:
            data[step.value] = self._moment(step, text, data)
        elif step == Step.NEEDED:
            data["needed"] = parse_needed(text)
        else:
            raise Refused("horn.use_buttons")
        return await self.save_flow(actor.user_id, FLOW, step.next(), data)

    async def press(self, actor: Actor, action: FlowPress, arg: str) -> Flow | None:
        """A button of the flow, checked against the current step; None: cancelled."""
        if action == FlowPress.CANCEL:
            async with self.store.transaction():
                await self.require(actor.user_id)
                await self.store.flows.clear(actor.user_id)
            return None
        flow = await self.require(actor.user_id)
        data = dict(flow.data)
        step = Step(flow.step)
        if PRESSED_AT.get(action) is not step:
            raise Refused("button.stale")
        if action == FlowPress.LEVEL:
            data["level"] = self.allowed_level(actor, parse_level(arg))
        elif action == FlowPress.SCOPE:
            data["scope"] = await self.checked_scope(actor, HornLevel(data["level"]), [arg])
        elif action == FlowPress.SKIP:
            data["fill_by"] = None
        elif action == FlowPress.SKILL:
            if arg not in SKILLS:
                raise Refused("button.stale")
            chosen = set(data.get("skills") or []) ^ {arg}
            data["skills"] = [s for s in SKILLS if s in chosen]
            return await self.save_flow(actor.user_id, FLOW, step, data)
        elif action == FlowPress.UNIT:  # "Also call member units" (SPEC §10): a toggle
            code = (await checked_units(self.store, data["scope"], [arg]))[0]
            called: list[str] = list(data.get("units") or [])
            data["units"] = [c for c in called if c != code] if code in called \
                else [*called, code]
            return await self.save_flow(actor.user_id, FLOW, step, data)
        return await self.save_flow(actor.user_id, FLOW, step.next(), data)

    async def prompt(self, actor: Actor, locale: str, flow: Flow) -> views.View:
        """What to show for the flow's current step."""
        data = flow.data
        cancel = [button(t(locale, "horn.btn_cancel"), flow_data(FlowPress.CANCEL))]
        step = Step(flow.step)
        if step == Step.PREVIEW:
            view = views.preview(locale, data, await self.units(data["scope"]),
                                 self.settings.tz)
            # "Also call member units" (SPEC §10): those of the horn's communities
            chosen = set(data.get("units") or [])
            rows = [[button(t(locale, "unit.horn_also_call", mark="✅" if u.code in chosen
                              else "🏢", unit=f"{u.name} ({u.code})"),
                            flow_data(FlowPress.UNIT, u.code))]
                    for u in (await units_in_reach(self.store, data["scope"]))[
                        :MAX_UNIT_BUTTONS]]
            return views.View(view.text, rows + view.buttons)
        ask = ASK_KEYS[step]
        if step == Step.LEVEL:
            return views.View(t(locale, ask), [
                [button(views.level_label(locale, level),
                              flow_data(FlowPress.LEVEL, level))]
                for level in self.levels_for(actor)] + [cancel])
        if step == Step.SCOPE:
            units = await self._scope_choices(actor, HornLevel(data["level"]))
            rows = [[button(f"{u.name} ({u.code})", flow_data(FlowPress.SCOPE, u.code))]
                    for u in units]
            return views.View(t(locale, ask, example=units[0].code if units else "G0101"),
                              rows + [cancel])
        if step in TIME_STEPS:
            skip = [[button(t(locale, "horn.btn_skip"), flow_data(FlowPress.SKIP))]] \
                if step == Step.FILL_BY else []
            return views.View(t(locale, ask, **self.refusal_example(flow)), skip + [cancel])
        if step == Step.SKILLS:
            return views.View(t(locale, ask), views.skill_buttons(
                locale, data.get("skills") or [],
                lambda skill: flow_data(FlowPress.SKILL, skill), t(locale, "horn.btn_done"),
                flow_data(FlowPress.SKILLS_DONE)) + [cancel])
        return views.View(t(locale, ask), [cancel])

    def refusal_example(self, flow: Flow) -> dict[str, str]:
        """Values for a time prompt or refusal: the example of the current step."""
        data = flow.data
        moment = example_time(Step(flow.step), data.get("start"), data.get("end"), self.clock())
        return example_values(moment, self.settings.tz)

    async def require(self, user_id: int) -> Flow:
        flow = await self.store.flows.get(user_id)
        if flow is None or flow.name != FLOW:
            raise Refused("horn.flow_gone")
        return flow

    def allowed_level(self, actor: Actor, level: HornLevel) -> HornLevel:
        if level not in self.levels_for(actor):
            raise Refused("horn.level_not_allowed", level=Key(views.LEVEL_KEYS[level]))
        return level

    async def checked_scope(self, actor: Actor, level: HornLevel, codes: list[str]
                            ) -> list[str]:
        """Check each unit: on the map, not a department, within the actor's authority."""
        if not codes:
            raise Refused("horn.use_buttons")
        found = []
        for code in codes:
            unit = await self.store.map.get(code) or await self.store.map.get(code.upper())
            if unit is None:
                raise Refused("map.unknown_code", code=code[:30])
            if unit.kind in ("department", "member"):  # member units are called, not a scope
                raise Refused("horn.bad_scope", code=unit.code)
            if not await self.access.can(actor, action_for(level), unit.code):
                raise Refused("horn.scope_not_allowed", code=unit.code,
                              level=Key(views.LEVEL_KEYS[level]))
            found.append(unit.code)
        return await outermost(self.store, found)

    async def _scope_choices(self, actor: Actor, level: HornLevel) -> list[Unit]:
        """Buttons for the scope step: the units of the actor's authority and one level
        below them (more can be typed as codes)."""
        if actor.superadmin:
            tops = await self.store.map.children(None)
        else:
            tops = await self.access.scope_units(actor, action_for(level))
        choices: list[Unit] = []
        for unit in tops:
            if unit.kind in ("department", "member") or unit in choices:
                continue
            choices.append(unit)
            if unit.kind in ("community", "grid"):
                choices += [c for c in await self.store.map.children(unit.code)
                            if c not in choices and c.kind != "member"]
        return choices[:MAX_SCOPE_BUTTONS]

    def _moment(self, step: Step, text: str, data: dict[str, Any]) -> float:
        """A typed time, checked against the others: a start not long past, an end after the
        start, a fill-by time still ahead and before the end."""
        now = self.clock()
        tz = self.settings.tz
        moment = parse_time(text, tz, now)
        example = example_values(example_time(step, data.get("start"), data.get("end"), now),
                                 tz)
        if moment is None:
            raise Refused("horn.bad_time", text=text[:30], **example)
        if step == Step.START and moment < now - PAST_TOLERANCE:
            raise Refused("horn.time_past", **example)
        if step == Step.END and data.get("start") is not None and moment <= data["start"]:
            raise Refused("horn.end_before_start", start=when(data["start"], tz),
                          **example)
        if step == Step.FILL_BY:
            if moment <= now:
                raise Refused("horn.time_past", **example)
            if data.get("end") is not None and moment >= data["end"]:
                raise Refused("horn.fill_by_late", end=when(data["end"], tz), **example)
        return moment

