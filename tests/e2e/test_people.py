"""People administration (SPEC §11) end to end: a revoke and its refusals, the person told,
a revoked building head's open card passing to the grid, the audit log, /joinlink CODE."""

from __future__ import annotations

import pytest

from bot.i18n import t
from tests.support.harness import consent, grant, seed_map
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio
BUILDING = "1栋 (B01010101)"


def message_in(harness, chat_id, message_id):
    return next(m for m in harness.emu.messages(chat_id) if m.message_id == message_id)


async def test_a_revoke_and_its_refusals(harness):
    h, emu = harness, harness.emu
    await h.start_bot()
    resident = emu.add_user(first_name="李", last_name="四", language_code="zh-hans")
    head = emu.add_user(first_name="Head", language_code="zh-TW")  # reads 繁體中文
    worker = emu.add_user(first_name="Worker", language_code="en")
    staff = emu.add_user(first_name="Staff", language_code="en")
    await seed_map(h.store)
    await grant(h.store, head.id, "building_head", "B01010101")
    await grant(h.store, worker.id, "grid_worker", "G0101")
    await grant(h.store, staff.id, "community_staff", "C01")
    async with h.store.transaction():
        await h.store.people.ensure(resident.id)
        await h.store.people.set_building(resident.id, "B01010101")
    await consent(h.store, resident.id)
    for user in (resident, head, worker, staff):
        await h.say(user, "/start")
    grid_chat = await h.bound_group("Grid staff", "G0101", worker, [worker])
    async with h.store.transaction():
        await h.store.map.set_chat_locale(grid_chat.id, "en")

    # a resident's opinion reaches the building head's private chat as a card
    draft = (await h.say(resident, "楼道灯坏了"))[-1]
    await (emu.press(resident, draft, "dr:submit")).wait_answered(timeout=5)
    await h.settle()
    head_card = [m for m in emu.messages(head.id) if m.buttons][-1]
    assert head_card.text.startswith("#1")

    # refusals: each answered, naming why, and nothing changes
    async def refused_with(user, text, key, chat=None, locale="en", **values):
        answer = (await h.say(user, text, chat=chat))[-1]
        assert answer.text == shown(locale, key, **values), answer.text

    await refused_with(head, f"/revoke building_head B01010101 {head.id}", "revoke.own_highest",
                       locale="zh-Hant", role=t("zh-Hant", "role.building_head"))
    await refused_with(worker, f"/revoke building_head G0101 {head.id}", "revoke.wrong_unit",
                       role=t("en", "role.building_head"), code="G0101")
    await refused_with(worker, f"/revoke community_staff C01 {staff.id}",
                       "revoke.superadmins_only", role=t("en", "role.community_staff"))
    await refused_with(worker, f"/revoke grid_worker G0101 {worker.id}", "revoke.own_highest",
                       role=t("en", "role.grid_worker"))
    await refused_with(worker, "/revoke building_head B01010101 someone", "revoke.usage")
    await refused_with(worker, "/people", "people.private_only", chat=grid_chat)
    # a forged press (callback data is client input): checked again
    forged = emu.inject_callback(head, head_card, f"pp:ok:bh:B01010101:{head.id}")
    answer = await forged.wait_answered(timeout=5)
    assert answer.show_alert and answer.text == shown(
        "zh-Hant", "revoke.own_highest", role=t("zh-Hant", "role.building_head"))
    await h.settle()
    assert any(g.role == "building_head" for g in await h.store.people.roles(head.id))
    assert (await h.store.tickets.get(1)).level == "building"
    assert await h.store.db.fetchval("SELECT COUNT(*) FROM audit_log") == 0

    # /people shows the head with a revoke button; pressing asks to confirm
    listing = (await h.say(worker, "/people"))[-1]
    assert f"Head (ID {head.id})" in listing.text
    await h.press(worker, listing, f"pp:rv:bh:B01010101:{head.id}")
    confirm = await h.last(worker.id)
    assert confirm.text == shown("en", "people.confirm", role=t("en", "role.building_head"),
                                 name="Head", user=head.id, unit=BUILDING)
    await h.press(worker, confirm, f"pp:ok:bh:B01010101:{head.id}")

    # done: the worker hears it, the head is told, the head's card passes to the grid
    done = [m.text for m in emu.messages(worker.id)][-1]
    assert shown("en", "revoke.done", role=t("en", "role.building_head"), name="Head",
                 unit=BUILDING) in done
    assert shown("en", "revoke.passed", tickets="#1") in done
    assert shown("zh-Hant", "revoke.told", role=t("zh-Hant", "role.building_head"),
                 unit=BUILDING, by="Worker") in h.texts(head.id)
    card = message_in(h, head.id, head_card.message_id)
    assert not card.buttons
    assert shown("zh-Hant", "handover.card_level", level=t("zh-Hant", "level.grid")) in card.text
    grid_texts = h.texts(grid_chat.id)
    assert shown("en", "staff.escalated", id=1) in grid_texts
    assert shown("en", "handover.grid", head="Head", building=BUILDING,
                 tickets="#1") in grid_texts
    ticket = await h.store.tickets.get(1)
    assert ticket.level == "grid" and ticket.status == "escalated"
    assert not any(g.role == "building_head" for g in await h.store.people.roles(head.id))

    # the confirm's buttons are gone; pressing it again is refused: no longer held
    assert not message_in(h, worker.id, confirm.message_id).buttons
    again = emu.inject_callback(worker, confirm, f"pp:ok:bh:B01010101:{head.id}")
    assert (await again.wait_answered(timeout=5)).text == shown(
        "en", "revoke.not_held", user=head.id, role=t("en", "role.building_head"),
        code="B01010101")
    await h.settle()

    # the audit log: community staff see it, a grid worker does not
    log = (await h.say(staff, "/audit C01"))[-1]
    assert shown("en", "audit.revoke", who="Worker", whom=f"Head ({head.id})",
                 detail=t("en", "role.building_head"), unit=BUILDING) in log.text
    await refused_with(worker, "/audit C01", "audit.not_allowed", code="C01")

    # /joinlink CODE privately: the building's join link to pass on
    link = (await h.say(worker, "/joinlink B01010101"))[-1]
    assert "https://t.me/gridhorn_bot?start=j-" in link.text
    await refused_with(worker, "/joinlink G0101", "joinlink.not_a_building", code="G0101")


async def test_people_pages_with_more(harness):
    h, emu = harness, harness.emu
    await h.start_bot()
    staff = emu.add_user(first_name="Staff", language_code="en")
    await seed_map(h.store)
    await grant(h.store, staff.id, "community_staff", "C01")
    for user_id in range(100, 112):
        await grant(h.store, user_id, "volunteer", "B01010102")
    await h.say(staff, "/start")
    listing = (await h.say(staff, "/people"))[-1]
    assert listing.text.splitlines()[0] == shown("en", "people.title", unit="欣山社区 (C01)",
                                                 total=13)
    assert "10. " in listing.text and "11. " not in listing.text
    await h.press(staff, listing, "pp:pg:C01:1")
    page = message_in(h, staff.id, listing.message_id)
    assert "11. " in page.text and "13. " in page.text and "10. " not in page.text
    labels = [b.text for row in page.buttons for b in row]
    assert t("en", "people.previous") in labels and t("en", "people.more") not in labels
    # volunteers on a building are the staff's to revoke: each has its button
    assert sum(label.startswith("✖") for label in labels) == 3
