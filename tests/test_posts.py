"""Posts to claim (认领岗位, SPEC §10) on a temporary store: publishing over a grid, claims by
a unit's contact and by volunteers until full, the waiting list, release, and the monthly
"Still serving?" with the release after seven days of silence."""

from __future__ import annotations

import pytest

from tests.support.harness import grant
from tests.support.services import (
    HEAD,
    PROPERTY_UNIT,
    RESIDENT,
    STAFF,
    VOLUNTEER,
    WORKER,
    bind,
    build_services,
    refused,
    staffed_map,
)

CONTACT, VOL2, VOL3, FAR = 60, 61, 62, 63


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def services(store):
    await staffed_map(store)
    async with store.transaction():
        await store.map.upsert(PROPERTY_UNIT)
    await grant(store, CONTACT, "unit_contact", "M01")
    await grant(store, VOL2, "volunteer", "B01010102")
    await grant(store, VOL3, "volunteer", "G0101")
    await grant(store, FAR, "volunteer", "B01020101")      # the other grid
    built = build_services(store)
    built.schedule.posts.clock = Clock()
    return built


async def test_a_post_is_claimed_to_full_then_waits_releases_and_moves_up(services, store):
    posts = services.schedule.posts
    await bind(store, "B01010101", -201)
    await refused(store, posts.create(await services.actor(HEAD), "G0101", "2", "消杀"),
                  "post.not_allowed")
    await refused(store, posts.create(await services.actor(WORKER), "B01010101", "2", "消杀"),
                  "post.bad_unit")
    await refused(store, posts.create(await services.actor(WORKER), "G0101", "0", "消杀"),
                  "post.bad_slots")
    post = await posts.create(await services.actor(WORKER), "G0101", "2", "周六楼道消杀")
    items = await store.outbox.pending()
    assert {i.chat_id for i in items} == {-201, CONTACT}   # the building chat, the contact
    assert (await posts.claim(await services.actor(CONTACT), post.id)).state == "holding"
    assert (await services.units.record(await services.actor(CONTACT))).posts == 1
    held = await store.units.holders(post.id, "holding")
    assert [(h.holder, h.unit_code) for h in held] == [("u:M01", "M01")]
    assert (await posts.claim(await services.actor(VOLUNTEER), post.id)).state == "holding"
    await refused(store, posts.claim(await services.actor(VOLUNTEER), post.id),
                  "post.already_holding")
    full = await posts.claim(await services.actor(VOL2), post.id)
    assert (full.state, full.position) == ("waiting", 1)
    await refused(store, posts.claim(await services.actor(FAR), post.id), "post.not_for_you")
    await refused(store, posts.claim(await services.actor(RESIDENT), post.id),
                  "post.not_for_you")
    await refused(store, posts.release(await services.actor(VOL3), post.id),
                  "post.not_holding")
    await posts.release(await services.actor(VOLUNTEER), post.id)
    held = await store.units.holders(post.id, "holding")
    assert [h.person_id for h in held] == [CONTACT, VOL2]
    told = [i for i in await store.outbox.pending() if i.chat_id == VOL2]
    assert told and f"#{post.id}" in told[-1].payload["text"]
    assert [p.title for p, _ in await posts.held(VOL2)] == ["周六楼道消杀"]
    # a released holder may claim again: to the end of the line
    assert (await posts.claim(await services.actor(VOLUNTEER), post.id)).state == "waiting"


async def test_still_serving_monthly_and_silence_releases(services, store):
    posts = services.schedule.posts
    clock = posts.clock
    post = await posts.create(await services.actor(STAFF), "C01", "1", "门岗值守")
    await posts.claim(await services.actor(VOLUNTEER), post.id)
    await posts.claim(await services.actor(VOL2), post.id)           # waiting
    async with store.transaction():
        assert await posts.ask_holders("2027-01") == 1
    async with store.transaction():
        assert await posts.ask_holders("2027-01") == 0                # once per period
    asked = [i for i in await store.outbox.pending() if i.chat_id == VOLUNTEER]
    assert [b["callback_data"] for b in asked[-1].payload["reply_markup"][
        "inline_keyboard"][0]] == [f"po:y:{post.id}", f"po:r:{post.id}"]
    await refused(store, posts.still_serving(await services.actor(VOL2), post.id),
                  "post.not_asked")
    clock.now += 6 * 86400
    async with store.transaction():
        assert await posts.release_silent() == 0
    clock.now += 2 * 86400
    async with store.transaction():
        assert await posts.release_silent() == 1
    assert [h.person_id for h in await store.units.holders(post.id, "holding")] == [VOL2]
    assert any(i.chat_id == STAFF and "门岗值守" in i.payload["text"]
               for i in await store.outbox.pending())
    # an answer keeps the slot
    async with store.transaction():
        await posts.ask_holders("2027-02")
    await posts.still_serving(await services.actor(VOL2), post.id)
    clock.now += 30 * 86400
    async with store.transaction():
        assert await posts.release_silent() == 0
