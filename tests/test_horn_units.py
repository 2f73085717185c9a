"""Member units answering a horn (SPEC §10) on a temporary store: `+M01` in the short form,
the call to the unit's chat or its contacts, pledges counted toward the quota, the counter
`报到 n/m · 单位 k`, and the close crediting each unit's confirmed people-hours."""

from __future__ import annotations

import pytest

from bot.services.errors import Refused
from storage.models import Unit
from tests.support.harness import grant
from tests.support.services import PROPERTY_UNIT
from tests.test_horns import STAFF, WORKER, bind, deliver, sound, world  # noqa: F401

CONTACT1, CONTACT2, OUTSIDER = 71, 72, 73


@pytest.fixture
async def units_world(world, store):  # noqa: F811
    async with store.transaction():
        await store.map.upsert(PROPERTY_UNIT)
        await store.map.upsert(Unit(code="M02", kind="member", name="县税务局",
                                    parent_code="C01", member_type="dual_report"))
        await store.map.upsert(Unit(code="C02", kind="community", name="河东社区", position=1))
        await store.map.upsert(Unit(code="M03", kind="member", name="河东物业",
                                    parent_code="C02", member_type="property"))
    await grant(store, CONTACT1, "unit_contact", "M01")
    await grant(store, CONTACT2, "unit_contact", "M02")
    await grant(store, OUTSIDER, "unit_contact", "M03")
    await bind(store, "G0101", -101)
    await bind(store, "M01", -151)  # M02 has no chat: its contact is called privately
    return world


def texts(items, chat_id):
    return [i.payload["text"] for i in items if i.chat_id == chat_id
            and i.method in ("sendMessage", "editMessageText")]


async def test_a_horn_calls_units_and_pledges_count_toward_the_quota(units_world, store):
    horns, access, _ = units_world
    published = await sound(horns, access, WORKER, "major G0101 10 Sandbags +M01 +M02")
    horn = published.horn
    assert horn.title == "Sandbags" and horn.units_called == 2
    items = await store.outbox.pending()
    assert len(texts(items, -151)) == 1           # the unit's bound chat
    assert len(texts(items, CONTACT2)) == 1       # the contact of a unit without one
    assert texts(items, OUTSIDER) == []
    post = next(i for i in items if i.chat_id == -101)
    assert "报到 0/10 · 单位 0" in post.payload["text"]
    datas = [b["callback_data"] for row in post.payload["reply_markup"]["inline_keyboard"]
             for b in row]
    assert f"hu:p:{horn.id}" in datas
    await deliver(store, horns)

    c1, c2 = await access.actor(CONTACT1), await access.actor(CONTACT2)
    with pytest.raises(Refused, match="unit.horn_not_contact"):
        await horns.pledge_options(await access.actor(OUTSIDER), horn.id)
    with pytest.raises(Refused, match="unit.horn_not_contact"):
        await horns.pledge_options(await access.actor(STAFF), horn.id)
    assert (await horns.pledge(c1, horn.id, 3)).pledged == 3
    with pytest.raises(Refused, match="unit.horn_too_many"):
        await horns.pledge(c2, horn.id, 8)       # 7 still needed
    await horns.pledge(c2, horn.id, 2)
    for person in (31, 32, 33, 34, 35):
        assert (await horns.check_in(person, horn.id)).key == "horn.checked_in"
    assert (await horns.check_in(36, horn.id)).key == "horn.waiting"   # 10/10: full
    assert await store.horns.counts(horn.id) == (10, 1)
    await horns.refresh_counters(horn.id)
    edits = [i for i in await store.outbox.pending() if i.method == "editMessageText"]
    assert edits and all("报到 10/10 · 单位 2" in i.payload["text"] for i in edits)
    assert {i.chat_id for i in edits} >= {-101, -151, CONTACT2}
    # a smaller pledge frees a place: the first waiting moves up
    await horns.pledge(c1, horn.id, 2)
    assert await store.horns.counts(horn.id) == (10, 0)
    assert (await store.horns.checkin(horn.id, 36)).state == "in"

    owner = await access.actor(WORKER)
    await horns.close(owner, horn.id)
    with pytest.raises(Refused, match="horn.not_owner"):
        await horns.adjust_unit(c1, "en", horn.id, "M01", -1)
    view = await horns.adjust_unit(owner, "en", horn.id, "M02", -1)   # one did not come
    assert "县税务局 (M02): 1 of 2 pledged came" in view.text
    view = await horns.adjust_unit(owner, "en", horn.id, "M02", 5)    # never above the pledge
    assert "县税务局 (M02): 2 of 2 pledged came" in view.text
    await horns.adjust_unit(owner, "en", horn.id, "M02", -1)
    view = await horns.confirm(owner, "en", horn.id)
    assert "安居物业 (M01): 2 people, 4 people-hours" in view.text
    assert await store.units.people_hours("M01") == 4.0    # 2 people × 2 h (short form)
    assert await store.units.people_hours("M02") == 2.0


async def test_a_horn_calls_only_member_units_of_its_communities(units_world, store):
    horns, access, _ = units_world
    actor = await access.actor(WORKER)
    with pytest.raises(Refused, match="unit.horn_outside"):
        await horns.short_form(actor, "major G0101 5 Sandbags +M03")
    with pytest.raises(Refused, match="unit.not_member"):
        await horns.short_form(actor, "major G0101 5 Sandbags +B01010101")
    with pytest.raises(Refused, match="horn.bad_scope"):
        await horns.short_form(actor, "major M01 5 Sandbags")
    # a horn that calls no unit keeps its old counter, and member chats get nothing
    horn = (await sound(horns, access, STAFF, "major C01 5 Sandbags")).horn
    items = await store.outbox.pending()
    assert texts(items, -151) == [] and horn.units_called == 0
    assert all("单位" not in text for text in texts(items, -101))


async def test_the_preview_offers_to_call_the_units_of_the_horns_communities(units_world,
                                                                             store):
    from bot.services.horn_codes import FlowPress

    horns, access, _ = units_world
    actor = await access.actor(WORKER)
    flow = await horns.short_form(actor, "major G0101 4 Sandbags")
    view = await horns.prompt(actor, "en", flow)
    datas = [b["callback_data"] for row in view.buttons for b in row]
    assert datas[:2] == ["hf:un:M01", "hf:un:M02"]     # C02's M03 is not offered
    flow = await horns.press(actor, FlowPress.UNIT, "M02")
    assert flow.data["units"] == ["M02"]
    view = await horns.prompt(actor, "en", flow)
    assert "✅ Also call 县税务局 (M02)" in [b["text"] for row in view.buttons for b in row]
    assert "Member units called: M02" in view.text
    with pytest.raises(Refused, match="unit.horn_outside"):
        await horns.press(actor, FlowPress.UNIT, "M03")
    flow = await horns.press(actor, FlowPress.UNIT, "M01")
    flow = await horns.press(actor, FlowPress.UNIT, "M02")   # a second tap: not called
    assert flow.data["units"] == ["M01"]
    published = await horns.publish(actor)
    assert published.horn.units_called == 1
    assert [u.unit_code for u in await store.units.horn_units(published.horn.id)] == ["M01"]
