"""Several replicas on one PostgreSQL (SPEC §16), as real processes behind a load balancer,
the emulator delivering by webhook: nothing lost, nothing handled or posted twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from emulator import BotAPIEmulator, FloodLimits
from emulator.balancer import HOOK_PATH, SECRET_HEADER
from storage.store import Store
from tests.support.harness import TOKEN, consent, seed_map
from tests.support.replicas import (
    PRODUCTION_RATES,
    Replicas,
    bound_building_chats,
    leader,
    posts_per_chat,
)
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
        await consent(store, *(user.id for user in users))
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


# ------------------------------------------------------------------ the leader's faults

@pytest.fixture
async def telegram() -> AsyncIterator[BotAPIEmulator]:
    """An emulator that enforces Telegram's flood limits (30/s, 20/min per group, 1/s)."""
    emu = BotAPIEmulator(token=TOKEN, bot_username="gridhorn_bot", bot_first_name="Gridhorn",
                         flood=FloodLimits(overall_per_s=30, group_per_min=20, chat_per_s=1))
    emu.webhook_retry_delay = 0.05
    emu.webhook_retry_cap = 0.5
    await emu.start(host="127.0.0.1", port=0)
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def empty_pg_url() -> AsyncIterator[str]:
    from tests.support import pg

    async with pg.fresh_url() as url:
        yield url


async def county(emu: BotAPIEmulator, url: str, chats: int) -> list[int]:
    """`chats` bound building chats, and this period's scheduled jobs already run (a county
    that has run for months: the replicas' start posts no catch-up report)."""
    store = await Store.open(url)
    try:
        chat_ids = await bound_building_chats(emu, store, chats)
        await jobs_done(store, emu.base_url, url)
    finally:
        await store.close()
    return chat_ids


async def jobs_done(store: Store, api_base_url: str, url: str, keep: tuple[str, ...] = ()
                    ) -> None:
    """Record the current period of every scheduled job but `keep` as run."""
    from types import SimpleNamespace

    from bot.scheduler import Scheduler
    from bot.settings import load_settings

    settings = load_settings(bot_token=TOKEN, api_base_url=api_base_url, database_url=url)
    idle = SimpleNamespace(themes=None, reports=None, boards=None, patrols=None)
    scheduler = Scheduler(store, idle, settings)  # type: ignore[arg-type]
    now = scheduler.now()
    async with store.transaction():
        for job in scheduler.jobs:
            fired = scheduler.last_fire(job, now)
            if job.name not in keep and fired is not None:
                await store.schedules.record_run(job.name, job.period(fired), 0)


async def queue_posts(url: str, api_base_url: str, chat_ids: list[int], mark: str) -> None:
    """One emergency post per chat, queued as a horn's publish queues them."""
    from bot.services.outbox import Outbox, Priority
    from bot.settings import load_settings

    store = await Store.open(url)
    try:
        outbox = Outbox(store, load_settings(bot_token=TOKEN, api_base_url=api_base_url,
                                             database_url=url))
        async with store.transaction():
            for chat_id in chat_ids:
                await outbox.send(chat_id, f"{mark}：燃气泄漏，请立即撤离到小区广场",
                                  priority=Priority.EMERGENCY)
    finally:
        await store.close()


async def current_leader(url: str) -> tuple[int, int | None]:
    store = await Store.open(url)
    try:
        return await leader(store)
    finally:
        await store.close()


async def new_leader(url: str, after_epoch: int, timeout: float) -> tuple[int, int]:
    """Wait for a leader of an epoch above `after_epoch`; its epoch and pid."""
    async with asyncio.timeout(timeout):
        while True:
            epoch, pid = await current_leader(url)
            if epoch > after_epoch and pid is not None:
                return epoch, pid
            await asyncio.sleep(0.1)  # the store sends no event of a takeover


async def in_flight_at_takeover(url: str, emu: BotAPIEmulator, chat_ids: list[int],
                                mark: str) -> int:
    """The posts the former leader had in flight when it failed: delivered to Telegram
    before the new leader took over, but not recorded as sent by then (the new leader sends
    those again: SPEC §4's one allowed double). Read after the fact, on one clock: the
    takeover's time as the new leader recorded it, the posts' times as the emulator saw them
    (monotonic, turned into wall time here), the rows' sent times as the replicas recorded
    them."""
    store = await Store.open(url)
    try:
        takeover = float(await store.db.fetchval("SELECT since FROM leadership WHERE id = 1"))
        recorded = int(await store.db.fetchval(
            "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND method = 'sendMessage' "
            "AND sent_at < ? AND payload LIKE ?", (takeover, f"%{mark}%")))
    finally:
        await store.close()
    wall = time.time() - time.monotonic()
    delivered = sum(1 for chat_id in chat_ids for m in emu.chats[chat_id].messages.values()
                    if m.sender is None and mark in m.text and m.sent_at + wall < takeover)
    return delivered - recorded


async def test_kill_9_of_the_leader_mid_broadcast_another_leads_and_each_chat_gets_it_once(
        telegram, empty_pg_url, tmp_path) -> None:
    chats, mark = 600, "紧急集结号"
    chat_ids = await county(telegram, empty_pg_url, chats)
    await queue_posts(empty_pg_url, telegram.base_url, chat_ids, mark)
    async with Replicas(telegram.base_url, empty_pg_url, tmp_path, count=2,
                        extra=PRODUCTION_RATES) as replicas:
        epoch, pid = await new_leader(empty_pg_url, 0, timeout=30)
        first = next(r for r in replicas.replicas if r.pid == pid)
        await telegram.wait_until(
            lambda: sum(posts_per_chat(telegram, chat_ids, mark).values()) >= chats // 2,
            timeout=60)
        await replicas.kill(first)
        killed = asyncio.get_running_loop().time()
        new_epoch, new_pid = await new_leader(empty_pg_url, epoch, timeout=15)
        took_over = asyncio.get_running_loop().time() - killed
        assert new_pid != pid and took_over <= 15, replicas.logs()
        await telegram.wait_until(
            lambda: all(posts_per_chat(telegram, chat_ids, mark).values()), timeout=90)
    in_flight = await in_flight_at_takeover(empty_pg_url, telegram, chat_ids, mark)
    per_chat = posts_per_chat(telegram, chat_ids, mark)
    doubled = sum(1 for n in per_chat.values() if n > 1)
    assert min(per_chat.values()) >= 1
    assert doubled <= max(in_flight, 0), (doubled, in_flight)
    assert new_epoch == epoch + 1
    assert telegram.stats.flood_rejections == 0


async def test_the_monthly_theme_across_a_failover_is_posted_once_per_chat(
        telegram, empty_pg_url, tmp_path) -> None:
    chats = 300
    store = await Store.open(empty_pg_url)
    try:
        chat_ids = await bound_building_chats(telegram, store, chats)
        await jobs_done(store, telegram.base_url, empty_pg_url, keep=("theme",))
        month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
        await store.schedules.set_theme("C01", month, "邻里守望，关爱独居老人", 0)
    finally:
        await store.close()
    mark = "邻里守望，关爱独居老人"
    async with Replicas(telegram.base_url, empty_pg_url, tmp_path, count=2,
                        extra=PRODUCTION_RATES) as replicas:
        epoch, pid = await new_leader(empty_pg_url, 0, timeout=30)
        # the leader catches up on this month's theme at once: kill it while it posts
        await telegram.wait_until(
            lambda: sum(posts_per_chat(telegram, chat_ids, mark).values()) >= chats // 3,
            timeout=60)
        await replicas.kill(next(r for r in replicas.replicas if r.pid == pid))
        await new_leader(empty_pg_url, epoch, timeout=15)
        await telegram.wait_until(
            lambda: all(posts_per_chat(telegram, chat_ids, mark).values()), timeout=90)
        runs = await count(empty_pg_url, "SELECT COUNT(*) FROM schedule_runs "
                                         f"WHERE job = 'theme' AND period = '{month}'")
    in_flight = await in_flight_at_takeover(empty_pg_url, telegram, chat_ids, mark)
    per_chat = posts_per_chat(telegram, chat_ids, mark)
    assert runs == 1
    assert sum(1 for n in per_chat.values() if n > 1) <= max(in_flight, 0)


async def terminate_leader_backend(url: str) -> int:
    """Cut the leader's lock connection from the server's side (as a network partition or a
    DBA would): the backend that holds the leadership's advisory lock. Its pid."""
    from storage.leadership import LOCK_KEYS

    store = await Store.open(url)
    try:
        pid = await store.db.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = ? AND objid = ? AND objsubid = 2", LOCK_KEYS)
        assert pid is not None, "nobody holds the leadership's lock"
        assert await store.db.fetchval("SELECT pg_terminate_backend(?)", (pid,))
        return int(pid)
    finally:
        await store.close()


async def test_the_leader_whose_connection_is_cut_stops_sending_and_another_takes_over(
        telegram, empty_pg_url, tmp_path) -> None:
    chats, mark = 300, "紧急集结号"
    chat_ids = await county(telegram, empty_pg_url, chats)
    await queue_posts(empty_pg_url, telegram.base_url, chat_ids, mark)
    async with Replicas(telegram.base_url, empty_pg_url, tmp_path, count=2,
                        extra=PRODUCTION_RATES) as replicas:
        epoch, pid = await new_leader(empty_pg_url, 0, timeout=30)

        def delivered() -> int:
            return sum(posts_per_chat(telegram, chat_ids, mark).values())

        await telegram.wait_until(lambda: delivered() >= chats // 3, timeout=60)
        await terminate_leader_backend(empty_pg_url)
        at_cut = delivered()
        new_epoch, new_pid = await new_leader(empty_pg_url, epoch, timeout=15)
        # between the cut and the takeover (the follower tries every 2 s) the fenced leader
        # sent nothing new: at 30 posts/s it would have sent dozens
        assert delivered() - at_cut <= 30, (at_cut, delivered())
        await telegram.wait_until(
            lambda: all(posts_per_chat(telegram, chat_ids, mark).values()), timeout=90)
        # the fenced replica lives on, as a follower
        assert all(r.process is not None and r.process.returncode is None
                   for r in replicas.replicas)
    in_flight = await in_flight_at_takeover(empty_pg_url, telegram, chat_ids, mark)
    per_chat = posts_per_chat(telegram, chat_ids, mark)
    assert sum(1 for n in per_chat.values() if n > 1) <= max(in_flight, 0)
    assert new_pid != pid and new_epoch == epoch + 1
    assert telegram.stats.flood_rejections == 0
