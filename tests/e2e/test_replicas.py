"""Several replicas on one PostgreSQL (SPEC §16), as real processes behind a load balancer,
the emulator delivering by webhook: nothing lost, nothing handled or posted twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from storage.store import Store
from tests.support.harness import seed_map
from tests.support.replicas import HOOK_PATH, SECRET_HEADER, Replicas
from tests.support.texts import before

pytestmark = pytest.mark.asyncio

#: residents who submit at the same moment (issue 16: 1,000)
BURST = 1000


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database with the county's map."""
    from tests.support import pg

    async with pg.fresh_url() as url:
        store = await Store.open(url)
        try:
            await seed_map(store)
        finally:
            await store.close()
        yield url


async def residents_of_building_one(emu, url: str, n: int) -> list:
    """`n` residents who live in 1栋 (as a join link would have recorded them)."""
    users = [emu.add_user(first_name=f"居民{i}", language_code="zh-hans") for i in range(n)]
    store = await Store.open(url)
    try:
        async with store.transaction():
            for user in users:
                await store.people.ensure(user.id)
                await store.people.set_building(user.id, "B01010101")
    finally:
        await store.close()
    return users


@pytest.fixture
def webhook_emulator(harness):
    harness.emu.webhook_retry_delay = 0.05
    harness.emu.webhook_retry_cap = 0.5
    return harness


async def count(url: str, sql: str) -> int:
    store = await Store.open(url)
    try:
        return int(await store.db.fetchval(sql))
    finally:
        await store.close()


async def submit(emu, user, text: str) -> None:
    """A resident writes, picks a category and submits, as fast as a phone allows."""
    emu.send_text(user, text)
    draft = await emu.wait_for_message(user.id, timeout=120)
    for data in ("dr:dom:orange", "dr:submit"):
        query = emu.press(user, draft, data)
        await query.wait_answered(timeout=120)


async def test_a_burst_through_two_replicas_makes_each_ticket_and_receipt_once(
        webhook_emulator, pg_url, tmp_path) -> None:
    h = webhook_emulator
    emu = h.emu
    residents = await residents_of_building_one(emu, pg_url, BURST)
    async with Replicas(emu.base_url, pg_url, tmp_path, count=2) as replicas:
        await asyncio.gather(*(submit(emu, user, f"第{n}号意见：楼道灯坏了")
                               for n, user in enumerate(residents)))
        receipt = before("zh-Hans", "ticket.receipt", "id")

        def receipts_of(user) -> int:
            return sum(receipt in m.text for m in emu.messages(user.id))

        await emu.wait_until(lambda: all(receipts_of(u) >= 1 for u in residents), timeout=180)
        assert await count(pg_url, "SELECT COUNT(*) FROM tickets") == BURST, replicas.logs()
        assert [receipts_of(u) for u in residents] == [1] * BURST
        # both replicas took deliveries
        assert replicas.balancer is not None
        assert all(passed > 0 for passed in replicas.balancer.passed.values())


async def test_a_replayed_delivery_to_two_replicas_is_handled_once(
        webhook_emulator, pg_url, tmp_path) -> None:
    emu = webhook_emulator.emu
    user = emu.add_user(first_name="Li", language_code="en")
    async with Replicas(emu.base_url, pg_url, tmp_path, count=2) as replicas:
        await emu.wait_until(lambda: emu.webhook is not None, timeout=30)
        emu.send_text(user, "/start")
        update_id = emu.pending_updates()[-1]["update_id"]
        emu.deliver_twice(update_id)  # as Telegram does when it did not see the first 200
        await emu.wait_until(lambda: emu.stats.webhook_attempts >= 2, timeout=30)
        await emu.wait_for_message(user.id, timeout=30)
        assert replicas.balancer is not None
        assert sorted(replicas.balancer.passed.values()) == [1, 1]  # one to each replica
        processed = (f"SELECT COUNT(*) FROM inbox WHERE update_id = {update_id} "
                     "AND processed_at IS NOT NULL")
        await wait_for(lambda: count(pg_url, processed), 1)
        assert [m.text for m in emu.messages(user.id)] == [emu.messages(user.id)[0].text]


async def wait_for(read, expected: int, timeout: float = 30) -> None:
    """Poll a count in the store until it reads `expected` (the store sends no events)."""
    async with asyncio.timeout(timeout):
        while await read() != expected:
            await asyncio.sleep(0.05)


async def test_a_wrong_secret_is_refused_by_every_replica_and_nothing_is_stored(
        webhook_emulator, pg_url, tmp_path) -> None:
    emu = webhook_emulator.emu
    async with Replicas(emu.base_url, pg_url, tmp_path, count=2) as replicas, \
            aiohttp.ClientSession() as http:
        stored = await count(pg_url, "SELECT COUNT(*) FROM inbox")
        update = {"update_id": 987654, "message": {
            "message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"},
            "from": {"id": 5, "is_bot": False, "first_name": "X"}, "text": "/start"}}
        for replica in replicas.replicas:
            for secret in ("wrong", None):
                headers = {SECRET_HEADER: secret} if secret else {}
                async with http.post(f"http://{replica.listen}{HOOK_PATH}", json=update,
                                     headers=headers) as answer:
                    assert answer.status == 401
        assert await count(pg_url, "SELECT COUNT(*) FROM inbox") == stored
