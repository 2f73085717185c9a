"""/volunteer on a temporary store (skills, availability, where one volunteers), and when an
availability lets a volunteer be called up."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.services.errors import Refused
from bot.services.horn_codes import VolunteerPress
from bot.services.volunteers import Registered, VolunteerService, available
from tests.support.harness import grant, seed_map

RESIDENT = 7
TZ = ZoneInfo("Asia/Shanghai")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=TZ).timestamp()


FRIDAY_MORNING = at(2026, 5, 1, 9, 0)      # 2026-05-01 is a Friday
FRIDAY_EVENING = at(2026, 5, 1, 19, 0)
SATURDAY_NOON = at(2026, 5, 2, 12, 0)


@pytest.fixture
async def service(store):
    await seed_map(store)
    async with store.transaction():
        await store.people.ensure(RESIDENT)
        await store.people.set_building(RESIDENT, "B01010101")
    return VolunteerService(store)


async def test_registration_by_buttons_then_by_typed_words(service, store):
    with pytest.raises(Refused, match="volunteer.join_first"):
        await service.start(50)
    flow = await service.start(RESIDENT)
    assert flow.step == "skills"
    for skill in ("medical", "driving"):
        flow = await service.press(RESIDENT, VolunteerPress.SKILL, skill)
    with pytest.raises(Refused, match="button.stale"):
        await service.press(RESIDENT, VolunteerPress.AVAILABILITY, "weekends")  # not yet
    with pytest.raises(Refused, match="button.stale"):
        await service.press(RESIDENT, VolunteerPress.SKILL, "juggling")
    flow = await service.press(RESIDENT, VolunteerPress.NEXT, "")
    flow = await service.press(RESIDENT, VolunteerPress.AVAILABILITY, "evenings")
    flow = await service.press(RESIDENT, VolunteerPress.AVAILABILITY, "weekends")
    done = await service.press(RESIDENT, VolunteerPress.DONE, "")
    assert isinstance(done, Registered) and done.unit.code == "B01010101"
    person = await store.people.get(RESIDENT)
    assert person.skills == ("medical", "driving") and person.availability == "weekends,evenings"
    assert any(g.role == "volunteer" and g.unit_code == "B01010101"
               for g in await store.people.roles(RESIDENT))
    # again: the flow starts from what they have, and typed words finish it
    flow = await service.start(RESIDENT)
    assert flow.data == {"skills": ["medical", "driving"],
                         "availability": ["weekends", "evenings"]}
    await service.press(RESIDENT, VolunteerPress.NEXT, "")
    with pytest.raises(Refused, match="horn.too_long"):
        await service.answer(RESIDENT, "x" * 101)
    done = await service.answer(RESIDENT, "  Saturday   mornings ")
    assert done.availability == "Saturday mornings"
    assert (await store.people.get(RESIDENT)).skills == ("medical", "driving")
    assert (await service.start(RESIDENT)).data["availability"] == []   # their words stay theirs


async def test_cancel_and_a_finished_flow_is_gone(service, store):
    await service.start(RESIDENT)
    assert await service.press(RESIDENT, VolunteerPress.CANCEL, "") is None
    with pytest.raises(Refused, match="volunteer.flow_gone"):
        await service.press(RESIDENT, VolunteerPress.NEXT, "")
    assert not any(g.role == "volunteer" for g in await store.people.roles(RESIDENT))


async def test_typed_text_before_the_availability_step_is_refused(service):
    await service.start(RESIDENT)
    with pytest.raises(Refused, match="horn.use_buttons"):
        await service.answer(RESIDENT, "Saturdays")


async def test_a_volunteer_without_a_building_volunteers_where_they_were_made_one(service, store):
    await grant(store, 60, "volunteer", "G0101")
    await service.start(60)
    await service.press(60, VolunteerPress.NEXT, "")
    done = await service.press(60, VolunteerPress.DONE, "")
    assert done.unit.code == "G0101" and done.availability is None


def test_the_availability_step_shows_every_choice_ticked_as_chosen(service):
    from storage.models import Flow

    view = service.view("en", Flow(user_id=RESIDENT, name="volunteer", step="availability",
                                   data={"skills": [], "availability": ["weekends"]}))
    labels = [b["text"] for row in view.buttons for b in row]
    assert labels[:4] == ["Weekdays", "✅ Weekends", "Evenings", "Any time"]
    assert [b["callback_data"] for row in view.buttons for b in row][-2:] == ["vf:done", "vf:x"]


@pytest.mark.parametrize("availability, start, end, called", [
    (None, FRIDAY_MORNING, None, True),                      # said nothing: called
    ("", FRIDAY_MORNING, None, True),
    ("Saturday mornings", FRIDAY_MORNING, None, True),       # their own words: not read
    ("anytime", FRIDAY_MORNING, None, True),
    ("weekdays", FRIDAY_MORNING, None, True),
    ("weekends", FRIDAY_MORNING, None, False),
    ("weekends", SATURDAY_NOON, None, True),
    ("evenings", FRIDAY_MORNING, None, False),
    ("evenings", FRIDAY_EVENING, None, True),
    ("weekends,evenings", FRIDAY_EVENING, None, True),
    ("weekends,evenings", FRIDAY_MORNING, at(2026, 5, 1, 17, 0), False),  # ends at 17:00
    ("evenings", FRIDAY_MORNING, at(2026, 5, 1, 18, 0), False),           # ends as they begin
    ("evenings", FRIDAY_MORNING, at(2026, 5, 1, 18, 30), True),           # runs into the evening
    ("weekends", at(2026, 5, 1, 22, 0), at(2026, 5, 2, 2, 0), True),      # past midnight
    ("weekdays", SATURDAY_NOON, at(2026, 5, 3, 20, 0), False),            # a whole weekend
    ("weekdays", SATURDAY_NOON, at(2026, 5, 30, 12, 0), True),            # a long horn
])
def test_when_an_availability_lets_a_volunteer_be_called(availability, start, end, called):
    assert available(availability, start, end, TZ) is called


def test_evenings_are_the_volunteers_own_evenings():
    nine_pm_in_shanghai = at(2026, 5, 1, 21, 0)           # 13:00 in UTC
    assert available("evenings", nine_pm_in_shanghai, None, TZ)
    assert not available("evenings", nine_pm_in_shanghai, None, ZoneInfo("UTC"))
    kolkata = ZoneInfo("Asia/Kolkata")                     # a half-hour offset
    start = datetime(2026, 5, 1, 17, 30, tzinfo=kolkata).timestamp()
    end = datetime(2026, 5, 1, 18, 10, tzinfo=kolkata).timestamp()
    assert available("evenings", start, end, kolkata)
