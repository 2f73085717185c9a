"""Volunteer registration (志愿者, SPEC §5 last point): skills and availability.

`/volunteer` is a short guided flow (store.flows, name "volunteer"): skills by multi-select,
then availability by buttons or a few typed words. Finishing grants the `volunteer` role on
the person's building and keeps the profile; horns then call them by their skills, and only
for a time they said they can come (`available`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.i18n import t
from bot.services import horn_views as views
from bot.services.audit import AuditAction, AuditLog
from bot.services.errors import Refused
from bot.services.horn_codes import VolunteerPress, volunteer_data
from bot.services.ticket_views import button
from storage.models import SKILLS, Availability, Flow, Unit
from storage.store import Store

FLOW = "volunteer"
SKILLS_STEP = "skills"
AVAILABILITY_STEP = "availability"
MAX_AVAILABILITY = 100
EVENING_FROM = 18                     # evenings: from 18:00 to midnight
LONGEST_LOOK = timedelta(days=7)      # a horn this long meets every availability


def available(availability: str | None, start: float, end: float | None, tz: tzinfo) -> bool:
    """Whether a volunteer may be called to a horn held from `start` to `end` (None: at
    `start` only): some hour of it lies in a time they ticked (weekdays, weekends, evenings
    in `tz`). Their own typed words, or none, are not read: they are called, as before they
    said anything."""
    ticked = Availability.read(availability)
    if ticked is None or Availability.ANYTIME in ticked:
        return True
    moment = datetime.fromtimestamp(start, tz)
    last = datetime.fromtimestamp(start if end is None else max(start, end), tz)
    last = min(last, moment + LONGEST_LOOK)
    while True:
        if _fits(ticked, moment):
            return True
        moment = moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        if moment >= last:
            return False


def _fits(ticked: list[Availability], moment: datetime) -> bool:
    weekday = moment.weekday() < 5
    return (Availability.WEEKDAYS in ticked and weekday) or \
        (Availability.WEEKENDS in ticked and not weekday) or \
        (Availability.EVENINGS in ticked and moment.hour >= EVENING_FROM)


@dataclass(frozen=True)
class Registered:
    unit: Unit              # where they volunteer: their building, else where they were made one
    skills: tuple[str, ...]
    availability: str | None


class VolunteerService:
    def __init__(self, store: Store, audit: AuditLog | None = None) -> None:
        self.store = store
        #: a registration is a role granted: it goes in the audit log (SPEC §11)
        self.audit = audit or AuditLog(store)

    async def flow(self, user_id: int) -> Flow | None:
        flow = await self.store.flows.get(user_id)
        return flow if flow is not None and flow.name == FLOW else None

    async def start(self, user_id: int) -> Flow:
        """Begin (or redo) the registration, starting from what the person has now."""
        person = await self.store.people.get(user_id)
        if person is None or await self._home(user_id, person.building_code) is None:
            raise Refused("volunteer.join_first")
        return await self._save(user_id, SKILLS_STEP, {
            "skills": list(person.skills),
            "availability": Availability.read(person.availability) or []})

    async def press(self, user_id: int, action: VolunteerPress, arg: str
                    ) -> Flow | Registered | None:
        """A button of the flow; None: cancelled."""
        flow = await self._require(user_id)
        data = dict(flow.data)
        if action == VolunteerPress.CANCEL:
            async with self.store.transaction():
                await self.store.flows.clear(user_id)
            return None
        if action == VolunteerPress.SKILL and flow.step == SKILLS_STEP and arg in SKILLS:
            chosen = set(data["skills"]) ^ {arg}
            data["skills"] = [s for s in SKILLS if s in chosen]
            return await self._save(user_id, SKILLS_STEP, data)
        if action == VolunteerPress.NEXT and flow.step == SKILLS_STEP:
            return await self._save(user_id, AVAILABILITY_STEP, data)
        if action == VolunteerPress.AVAILABILITY and flow.step == AVAILABILITY_STEP and \
                arg in views.AVAILABILITY_KEYS:
            chosen = set(data["availability"]) ^ {arg}
            data["availability"] = [k for k in Availability if k in chosen]
            return await self._save(user_id, AVAILABILITY_STEP, data)
        if action == VolunteerPress.DONE and flow.step == AVAILABILITY_STEP:
            return await self._finish(user_id, data["skills"],
                                      ",".join(data["availability"]) or None)
        raise Refused("button.stale")

    async def answer(self, user_id: int, text: str) -> Registered:
        """Typed availability ("Saturday mornings") finishes the registration."""
        flow = await self._require(user_id)
        if flow.step != AVAILABILITY_STEP:
            raise Refused("horn.use_buttons")
        text = " ".join(text.split())
        if not text:
            raise Refused("horn.need_text")
        if len(text) > MAX_AVAILABILITY:
            raise Refused("horn.too_long", limit=MAX_AVAILABILITY)
        return await self._finish(user_id, flow.data["skills"], text)

    def view(self, locale: str, flow: Flow) -> views.View:
        data = flow.data
        cancel = [button(t(locale, "horn.btn_cancel"), volunteer_data(VolunteerPress.CANCEL))]
        if flow.step == SKILLS_STEP:
            return views.View(t(locale, "volunteer.ask_skills"), views.skill_buttons(
                locale, data["skills"],
                lambda skill: volunteer_data(VolunteerPress.SKILL, skill),
                t(locale, "volunteer.btn_next"), volunteer_data(VolunteerPress.NEXT)) + [cancel])
        choices = list(Availability)
        rows = [[button(("✅ " if choice in data["availability"] else "")
                        + t(locale, views.AVAILABILITY_KEYS[choice]),
                        volunteer_data(VolunteerPress.AVAILABILITY, choice))
                 for choice in choices[i:i + 2]] for i in range(0, len(choices), 2)]
        done = [button(t(locale, "horn.btn_done"), volunteer_data(VolunteerPress.DONE))]
        return views.View(t(locale, "volunteer.ask_availability"), rows + [done, cancel])

    async def _finish(self, user_id: int, skills: list[str], availability: str | None
                      ) -> Registered:
        person = await self.store.people.get(user_id)
        unit = await self._home(user_id, person.building_code if person else None)
        if unit is None:
            raise Refused("volunteer.join_first")
        async with self.store.transaction():
            if await self.flow(user_id) is None:
                raise Refused("button.stale")
            if await self.store.people.grant(user_id, "volunteer", unit.code, user_id):
                await self.audit.record(user_id, AuditAction.REGISTER, unit.code, user_id,
                                        "volunteer")
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
