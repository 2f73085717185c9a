"""Resources (提供资源, SPEC §10) on a temporary store: a contact adds, staff in scope browse
and request one for a ticket or a horn, the contact accepts or declines with a reason, the
ticket's timeline and the requester are told, and the unit's record counts an acceptance."""

from __future__ import annotations

import pytest

from bot.services.errors import Refused
from bot.services.resources import (
    DECLINE_FLOW,
    ResourceService,
    domain_data,
    read_resource_press,
)
from storage.models import Unit
from tests.support.harness import grant
from tests.support.services import (
    PROPERTY_UNIT,
    RESIDENT,
    STAFF,
    WORKER,
    build_services,
    refused,
    staffed_map,
)

CONTACT, OTHER_STAFF = 60, 61


@pytest.fixture
async def services(store):
    await staffed_map(store)
    async with store.transaction():
        await store.map.upsert(PROPERTY_UNIT)
        await store.map.upsert(Unit(code="C02", kind="community", name="河东社区", position=1))
    await grant(store, CONTACT, "unit_contact", "M01")
    await grant(store, OTHER_STAFF, "community_staff", "C02")
    built = build_services(store)
    return built, ResourceService(store, built.access, built.people, built.outbox,
                                  built.settings)


async def _ticket(store) -> int:
    async with store.transaction():
        ticket = await store.tickets.create(
            reporter_id=RESIDENT, anonymous=False, building_code="B01010101",
            grid_code="G0101", community_code="C01", domain="green", text="垃圾",
            photo_file_id=None, source_update_id=None, due_kind="ack", due_from=0.0,
            due_at=1e10, remind_at=1e10)
    assert ticket is not None
    return ticket.id


async def test_request_accept_and_decline_with_reason(services, store):
    built, resources = services
    contact = await built.actor(CONTACT)
    await refused(store, resources.add(await built.actor(STAFF), "vehicle", "2", "面包车"),
                  "resource.not_contact")
    await refused(store, resources.add(contact, "rocket", "2", "火箭"), "resource.bad_kind")
    await refused(store, resources.add(contact, "vehicle", "0", "面包车"),
                  "resource.bad_quantity")
    van = await resources.add(contact, "vehicle", "2", "面包车")
    hall = await resources.add(contact, "venue", "1", "活动室")
    staff = await built.actor(STAFF)
    assert [r.resource.id for r in await resources.browse(staff, None)] == [van.id, hall.id]
    assert [r.resource.id for r in await resources.browse(staff, "venue")] == [hall.id]
    assert [r.may_request for r in await resources.browse(contact, None)] == [False, False]
    # outside the requester's scope: another community's staff, a grid worker of C01 is in
    await refused(store, resources.request(await built.actor(OTHER_STAFF), van.id, "#1"),
                  "resource.outside_scope")
    ticket_id = await _ticket(store)
    await refused(store, resources.request(staff, van.id, "#999"), "resource.bad_target")
    await refused(store, resources.request(staff, van.id, "soon"), "resource.bad_target")
    request = await resources.request(staff, van.id, f"#{ticket_id}")
    asked = [i for i in await store.outbox.pending() if i.chat_id == CONTACT]
    assert [b["callback_data"] for b in asked[-1].payload["reply_markup"]["inline_keyboard"][0]
            ] == [f"rs:a:{request.id}", f"rs:d:{request.id}"]
    await refused(store, resources.accept(staff, request.id), "resource.not_contact")
    await resources.accept(contact, request.id)
    await refused(store, resources.accept(contact, request.id), "resource.answered")
    assert await store.units.resources_provided("M01") == 1
    assert (await built.units.record(contact)).resources == 1

    await refused(store, resources.request(await built.actor(WORKER), hall.id, "#1"),
                  "resource.outside_scope")       # resources are the community staff's
    second = await resources.request(staff, hall.id, f"#{ticket_id}")
    await resources.ask_reason(contact, second.id)
    assert (await store.flows.get(CONTACT)).name == DECLINE_FLOW
    await refused(store, resources.decline(contact, "  "), "resource.need_reason")
    declined = await resources.decline(contact, "周末已借出")
    assert (declined.state, declined.reason) == ("declined", "周末已借出")
    assert await store.flows.get(CONTACT) is None
    told = [i for i in await store.outbox.pending() if i.chat_id == STAFF]
    assert "周末已借出" in told[-1].payload["text"]
    notes = [e.note for e in await store.tickets.events(ticket_id) if e.kind == "resource"]
    assert notes == ["面包车 ×2 ?", "面包车 ×2 ✓", "活动室 ×1 ?", "活动室 ×1 ✗ 周末已借出"]
    assert await store.units.resources_provided("M01") == 1


async def test_a_contact_says_the_domain_a_resource_serves_and_staff_browse_by_it(services,
                                                                                  store):
    built, resources = services
    contact, staff = await built.actor(CONTACT), await built.actor(STAFF)
    van = await resources.add(contact, "vehicle", "2", "面包车")
    hall = await resources.add(contact, "venue", "1", "活动室")
    assert van.domain is None
    await refused(store, resources.set_domain(staff, van.id, "purple"), "resource.not_contact")
    await refused(store, resources.set_domain(contact, 999, "purple"), "resource.unknown")
    await refused(store, resources.set_domain(contact, van.id, "pink"), "button.stale")
    assert (await resources.set_domain(contact, van.id, "purple")).domain == "purple"
    assert (await store.units.resource(van.id)).domain == "purple"
    assert [r.resource.id for r in await resources.browse(staff, "purple")] == [van.id]
    assert [r.resource.id for r in await resources.browse(staff, "vehicle")] == [van.id]
    assert [r.resource.id for r in await resources.browse(staff, "green")] == []
    assert [r.resource.id for r in await resources.browse(staff, None)] == [van.id, hall.id]
    await refused(store, resources.browse(staff, "rocket"), "resource.bad_kind")


def test_the_domain_press_is_read_and_forged_ones_are_stale():
    assert read_resource_press(domain_data(7, "green")) == ("m", 7, "green")
    assert read_resource_press("rs:q:3") == ("q", 3, "")
    for forged in ("rs:m:7", "rs:m:7:pink", "rs:q:3:green", "rs:m:x:green", "rs:z:1"):
        with pytest.raises(Refused):
            read_resource_press(forged)
