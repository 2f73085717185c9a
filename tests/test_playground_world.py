"""The playground's sample world (SPEC §17): seeded before the bot starts, it works end to end
through the emulator as a county set up by hand would, the same every time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import build_runtime
from bot.labels import ROLE
from playground.world import World, build_world, load_world_file
from storage.models import PARTY_MEMBER
from storage.store import Store
from tests.support.county import card_head, submit
from tests.support.harness import EmulatorOnlyRequest, Harness
from tests.support.texts import duration, shown

pytestmark = pytest.mark.asyncio


async def start(h: Harness, lang: str) -> World:
    """What the playground's session does: the world built into an open store, then the real
    bot started on that store (its default language the world's)."""
    store = await Store.open_sqlite(str(h.tmp_path / "gridhorn.db"))
    world = await build_world(h.emu, store, lang)
    settings = h.settings(default_locale=world.lang)
    prefix = h.emu.base_url.rsplit("/bot", 1)[0]
    h.runtime = await build_runtime(
        settings, store=store, poll_timeout=1,
        request=EmulatorOnlyRequest(prefix, connection_pool_size=256, read_timeout=20),
        get_updates_request=EmulatorOnlyRequest(prefix, connection_pool_size=2,
                                                read_timeout=20))
    await h.runtime.start()
    await h.settle()
    return world


@pytest.fixture
async def playground(tmp_path: Path) -> AsyncIterator[Harness]:
    async with Harness(tmp_path) as h:
        yield h


def bot_messages(h: Harness) -> list[str]:
    return [f"{m.chat_id}: {m.text}" for m in h.emu.all_messages() if m.sender is None
            and m.kind != "service"]


@pytest.mark.parametrize("lang", ["zh-Hans", "en"])
async def test_an_opinion_reaches_the_grid_forum_and_the_building_head(playground, lang):
    h = playground
    world = await start(h, lang)
    # a clean world at start: no greeting, no "bind me", no report, no error
    assert bot_messages(h) == [], "\n".join(bot_messages(h))
    resident, head = world.person("resident").user, world.person("head").user
    forum = world.chats["staff:G0101"]

    await submit(h, resident, "楼道灯坏了一个星期了", domain="purple")

    ticket = await h.store.tickets.get(1)
    assert ticket is not None and ticket.building_code == "B01010101"
    assert ticket.staff_thread_id
    topic = h.emu.chat(forum.id).topics[ticket.staff_thread_id]
    assert topic.name.startswith("#1 🟣") and topic.created_by_bot
    cards = [m for m in h.emu.messages(forum.id, ticket.staff_thread_id)
             if m.text.startswith(card_head(1, lang))]
    assert len(cards) == 1 and cards[0].buttons
    # the building head gets the ticket's card privately, with its actions, in their language
    head_cards = [m for m in h.emu.messages(head.id) if m.text.startswith(card_head(1, lang))]
    assert len(head_cards) == 1 and "楼道灯坏了一个星期了" in head_cards[0].text
    data = {b.callback_data for row in head_cards[0].buttons for b in row}
    assert {"t:ack:1", "t:esc:1"} <= data
    # and the resident a receipt in their language; nobody else heard of it
    receipt = shown(lang, "ticket.receipt", id=1, hours=duration(lang, 24 * 3600))
    assert receipt in h.texts(resident.id)
    assert [m for m in bot_messages(h) if not m.startswith(
        (f"{resident.id}:", f"{head.id}:", f"{forum.id}:"))] == []

    # the head acknowledges it from their card: the resident is told
    await h.press(head, head_cards[0], "t:ack:1")
    assert (await h.store.tickets.get(1)).status == "acknowledged"
    assert shown(lang, "notice.acknowledged", id=1) in h.texts(resident.id)


async def test_the_world_is_the_same_every_time(tmp_path):
    seen = []
    for attempt in ("one", "two"):
        (tmp_path / attempt).mkdir()
        async with Harness(tmp_path / attempt) as h:
            store = await Store.open_sqlite(str(h.tmp_path / "gridhorn.db"))
            try:
                world = await build_world(h.emu, store, "zh-Hant")
                bindings = [(b.unit_code, b.chat_id, b.thread_id)
                            for b in await store.map.bindings()]
            finally:
                await store.close()
        seen.append((
            [(p.key, p.name, p.user.id, p.user.username, p.user.language_code, p.role_key,
              p.unit) for p in world.people],
            {key: (chat.id, chat.title, chat.is_forum) for key, chat in world.chats.items()},
            world.columns, bindings))
    assert seen[0] == seen[1]
    people, chats, columns, _ = seen[0]
    assert [p[2] for p in people] == list(range(1001, 1001 + len(people)))
    assert chats["building:B01010101"][0] == -1001000000001
    assert columns == [p[2] for p in people if p[0] in ("resident", "head", "worker",
                                                        "volunteer1")]


async def test_every_role_is_in_the_store(tmp_path):
    async with Harness(tmp_path) as h:
        store = await Store.open_sqlite(str(tmp_path / "gridhorn.db"))
        try:
            world = await build_world(h.emu, store, "en")
            held: dict[str, set[str]] = {}
            for person in world.people:
                stored = await store.people.get(person.user.id)
                assert stored is not None and stored.started and stored.first_name == person.name
                assert stored.language_code == "en" and person.user.started
                for grant in await store.people.roles(person.user.id):
                    held.setdefault(grant.role, set()).add(person.key)
                if stored.building_code:
                    held.setdefault("resident", set()).add(person.key)
                assert person.role_key in ROLE.values()
            assert set(held) >= {"resident", "building_head", "grid_worker", "grid_leader",
                                 "community_staff", "department_liaison", "volunteer",
                                 PARTY_MEMBER}
            assert len(held["volunteer"]) == 3
            assert held[PARTY_MEMBER] == {"volunteer1", "dual_reporter"}
            assert held["unit_contact"] == {"unit_contact"}  # member units (SPEC §10)
            # the partner shop's clerk (SPEC §13) takes codes at the shop of the world
            assert held["partner_clerk"] == {"clerk"}
            assert [p.code for p in await store.shop.clerk_of(
                world.person("clerk").user.id)] == ["P0101"]
            # the volunteer's 6 hours served before the bot came: 60 points to spend there,
            # as the opening line of her time bank's ledger (SPEC §13)
            volunteer = world.person("volunteer1").user.id
            served = await store.people.get(volunteer)
            assert served is not None and (served.hours, served.points) == (6.0, 60)
            assert await store.shop.balance(volunteer) == 60
            assert [(line.kind, line.delta) for line in await store.shop.ledger(volunteer, 20)
                    ] == [("opening", 60)]
            for key in ("volunteer2", "volunteer3"):
                assert await store.shop.balance(world.person(key).user.id) == 0
            resident = await store.people.get(world.person("resident").user.id)
            head = world.person("head").user.id
            assert resident is not None and resident.building_code == "B01010101"
            assert [g.user_id for g in await store.people.holders(
                ["building_head"], ["B01010101"])] == [head]
            # every chat bound and recorded as /bind records it, the bot an admin with rights
            spec = {c["key"]: c["unit"] for c in load_world_file()["chats"]}
            for key, chat in world.chats.items():
                binding = await store.map.binding(spec[key])
                assert binding is not None and (binding.chat_id, binding.thread_id) == (chat.id, 0)
                known = await store.map.chat(chat.id)
                assert known is not None and known.active and known.bot_is_admin
                assert known.can_pin and known.can_manage_topics
                assert known.is_forum == (key == "staff:G0101")
                assert {world.person(k).user.id for k in ("resident", "head")} <= set(
                    h.emu.chat(world.chats["building:B01010101"]).members)
            assert h.emu.pending_updates() == []
        finally:
            await store.close()


async def test_the_grid_whistles_to_the_department_chat(playground):
    """The tour's path past the head: escalated, whistled from the forum topic's card to the
    department's chat, accepted there by its liaison."""
    h = playground
    world = await start(h, "zh-Hans")
    resident, head = world.person("resident").user, world.person("head").user
    worker, liaison = world.person("worker").user, world.person("department").user
    forum, department = world.chats["staff:G0101"], world.chats["department:MZJ"]
    await submit(h, resident, "独居老人需要上门看看", domain="orange")
    head_card = next(m for m in h.emu.messages(head.id)
                     if m.text.startswith(card_head(1, "zh-Hans")))
    await h.press(head, head_card, "t:ack:1")
    await h.press(head, head_card, "t:esc:1")

    thread = (await h.store.tickets.get(1)).staff_thread_id
    card = next(m for m in h.emu.messages(forum.id, thread)
                if m.text.startswith(card_head(1, "zh-Hans")))
    await h.press(worker, card, "t:wh:1")
    picker = await h.last(forum.id)
    assert picker.thread_id == thread
    await h.press(worker, picker, "t:wh:1:MZJ")
    dept_card = next(m for m in h.emu.messages(department.id)
                     if m.text.startswith(card_head(1, "zh-Hans")))
    assert "王芳" not in dept_card.text
    await h.press(liaison, dept_card, "t:acc:1")
    assert (await h.store.tickets.get(1)).status == "accepted"
