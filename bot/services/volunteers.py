"""Volunteer registration (志愿者, SPEC §5 last point): skills and availability.

`/volunteer` is a short guided flow (store.flows, name "volunteer"): skills by multi-select,
then availability by buttons or a few typed words. Finishing grants the `volunteer` role on
the person's building and keeps the profile; horns then call them by their skills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.i18n import t
from bot.services import horn_views as views
from bot.services.errors import Refused
from storage.models import SKILLS, Flow, Unit
from storage.store import Store

FLOW = "volunteer"
MAX_AVAILABILITY = 100


@dataclass(frozen=True)
class Registered:
    unit: Unit              # where they volunteer: their building, else where they were made one
    skills: tuple[str, ...]
    availability: str | None


class VolunteerService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def flow(self, user_id: int) -> Flow | None:
        flow = await self.store.flows.get(user_id)
        return flow if flow is not None and flow.name == FLOW else None

    async def start(self, user_id: int) -> Flow:
        """Begin (or redo) the registration, starting from what the person has now."""
        person = await self.store.people.get(user_id)
        if person is None or await self._home(user_id, person.building_code) is None:
            raise Refused("volunteer.join_first")
        keys = (person.availability or "").split(",")
        chosen = [k for k in keys if k in views.AVAILABILITY] \
            if all(k in views.AVAILABILITY for k in keys) else []
        return await self._save(user_id, "skills", {"skills": list(person.skills),
                                                    "availability": chosen})

    async def press(self, user_id: int, action: str, arg: str) -> Flow | Registered | None:
        """A button of the flow: `vf:sk:<skill>`, `vf:next`, `vf:av:<key>`, `vf:done`, `vf:x`."""
        flow = await self._require(user_id)
        data = dict(flow.data)
        if action == "x":
            async with self.store.transaction():
                await self.store.flows.clear(user_id)
            return None
        if action == "sk" and flow.step == "skills" and arg in SKILLS:
            chosen = set(data["skills"]) ^ {arg}
            data["skills"] = [s for s in SKILLS if s in chosen]
            return await self._save(user_id, "skills", data)
        if action == "next" and flow.step == "skills":
            return await self._save(user_id, "availability", data)
        if action == "av" and flow.step == "availability" and arg in views.AVAILABILITY:
            chosen = set(data["availability"]) ^ {arg}
            data["availability"] = [k for k in views.AVAILABILITY if k in chosen]
            return await self._save(user_id, "availability", data)
        if action == "done" and flow.step == "availability":
            return await self._finish(user_id, data["skills"],
                                      ",".join(data["availability"]) or None)
        raise Refused("button.stale")

    async def answer(self, user_id: int, text: str) -> Registered:
        """Typed availability ("Saturday mornings") finishes the registration."""
        flow = await self._require(user_id)
        if flow.step != "availability":
            raise Refused("horn.use_buttons")
        text = " ".join(text.split())
        if not text:
            raise Refused("horn.need_text")
        if len(text) > MAX_AVAILABILITY:
            raise Refused("horn.too_long", limit=MAX_AVAILABILITY)
        return await self._finish(user_id, flow.data["skills"], text)

    def view(self, locale: str, flow: Flow) -> views.View:
        data = flow.data
        cancel = [views.button(t(locale, "horn.btn_cancel"), "vf:x")]
        if flow.step == "skills":
            return views.View(t(locale, "volunteer.ask_skills"), views.skill_buttons(
                locale, data["skills"], "vf:sk", t(locale, "volunteer.btn_next"), "vf:next")
                + [cancel])
        rows = [[views.button(("✅ " if key in data["availability"] else "") +
                              t(locale, f"avail.{key}"), f"vf:av:{key}")
                 for key in views.AVAILABILITY[i:i + 2]] for i in (0, 2)]
        return views.View(t(locale, "volunteer.ask_availability"),
                          rows + [[views.button(t(locale, "horn.btn_done"), "vf:done")], cancel])

    async def _finish(self, user_id: int, skills: list[str], availability: str | None
                      ) -> Registered:
        person = await self.store.people.get(user_id)
        unit = await self._home(user_id, person.building_code if person else None)
        if unit is None:
            raise Refused("volunteer.join_first")
        async with self.store.transaction():
            if await self.flow(user_id) is None:
                raise Refused("button.stale")
            await self.store.people.grant(user_id, "volunteer", unit.code, user_id)
            await self.store.people.set_volunteer_profile(user_id, skills, availability)
            await self.store.flows.clear(user_id)
        return Registered(unit, tuple(skills), availability)

    async def _home(self, user_id: int, building_code: str | None) -> Unit | None:
        """Where a person volunteers: their building; without one, the unit they were made a
        volunteer on (an invite); None when neither (they are asked to join first)."""
        if building_code:
            return await self.store.map.get(building_code)
        for grant in await self.store.people.roles(user_id):
            if grant.role == "volunteer":
                return await self.store.map.get(grant.unit_code)
        return None

    async def _require(self, user_id: int) -> Flow:
        flow = await self.flow(user_id)
        if flow is None:
            raise Refused("volunteer.flow_gone")
        return flow

    async def _save(self, user_id: int, step: str, data: dict[str, Any]) -> Flow:
        async with self.store.transaction():
            await self.store.flows.set(user_id, FLOW, step, data)
        return Flow(user_id=user_id, name=FLOW, step=step, data=data)
