"""One leader among the replicas (SPEC §16), on the real PostgreSQL server.

Each "replica" here is a `Leadership` (and, where it matters, a store, a sender and a fake
Bot) of its own in this one process: the advisory lock is per connection, so two of them on
one database contend as two machines would. The protocol's intervals are lowered through the
constructors; the tests wait on its events (a role reached, a call made), not on sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from bot.leader import Leadership, Role
from bot.ratelimit import DirectReplyLimiter, FloodGate, SharedDirectSends
from bot.scheduler import Job
from bot.services import periods
from storage.store import Store
from tests.support import pg
from tests.support.schedules import Clock, at, build
from tests.test_outbox import FakeBot, make

pytestmark = pytest.mark.asyncio
FAST = {"retry_interval": 0.05, "check_interval": 0.05, "check_timeout": 2.0}
TAKEOVER_S = 15  # SPEC §16


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with pg.fresh_url() as fresh:
        yield fresh


@pytest.fixture
async def stores(url: str) -> AsyncIterator[list[Store]]:
    """Two replicas' stores on the one database."""
    opened = [await Store.open(url), await Store.open(url)]
    try:
        yield opened
    finally:
        for store in opened:
            await store.close()


class Replica:
    """A Leadership whose leader's parts are noted: (epoch, how they stopped)."""

    def __init__(self, url: str, name: str, **intervals: float) -> None:
        self.leadership = Leadership(url, replica=name, **{**FAST, **intervals})
        self.led: list[int | None] = []
        self.stops: list[tuple[int | None, bool]] = []

    async def lead(self, epoch: int | None, stack: AsyncExitStack) -> None:
        self.led.append(epoch)

        async def stopped() -> None:
            self.stops.append((epoch, self.leadership.abrupt))
        stack.push_async_callback(stopped)

    async def start(self) -> Replica:
        await self.leadership.start(self.lead)
        return self


async def terminate(url: str, pid: int) -> None:
    """Cut a session from a third connection, as a dead network or a DBA would."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_one_leader_and_a_takeover_when_its_lock_connection_is_cut(url, stores):
    # A, fenced, tries again only after a second: B's tries (every 0.05 s) win the lock
    a = await Replica(url, "a", retry_interval=1.0).start()
    b = await Replica(url, "b").start()
    try:
        assert (a.leadership.role, b.leadership.role) == (Role.LEADER, Role.FOLLOWER)
        first = a.leadership.epoch
        assert first is not None and a.led == [first] and b.led == []
        assert await stores[0].leadership.epoch() == first
        assert await stores[0].leadership.holder() == "a"

        pid = a.leadership.lock_pid
        assert pid is not None
        began = time.monotonic()
        await terminate(url, pid)
        # the leader fences itself at once: its parts stopped abruptly, no longer leader
        await a.leadership.wait_for(Role.FOLLOWER, timeout=5)
        assert a.stops == [(first, True)] and not a.leadership.is_leader()
        # the other takes over with the next epoch, well within SPEC §16's 15 s
        second = await b.leadership.wait_for(Role.LEADER, timeout=TAKEOVER_S)
        assert time.monotonic() - began < TAKEOVER_S
        assert second == first + 1 and b.led == [second]
        assert await stores[1].leadership.holder() == "b"

        # the leader steps down (stops): the first replica leads again, a new epoch
        await b.leadership.stop()
        assert b.stops == [(second, False)]
        third = await a.leadership.wait_for(Role.LEADER, timeout=TAKEOVER_S)
        assert third == second + 1 and a.led == [first, third]
        assert await stores[0].leadership.epoch() == third
    finally:
        await a.leadership.stop()
        await b.leadership.stop()


async def test_only_one_of_replicas_starting_together_leads(url):
    replicas = [Replica(url, f"r{i}") for i in range(3)]
    await asyncio.gather(*(r.start() for r in replicas))
    try:
        leaders = [r for r in replicas if r.leadership.role == Role.LEADER]
        assert len(leaders) == 1 and leaders[0].led == [1]
        assert all(r.led == [] for r in replicas if r is not leaders[0])
    finally:
        for r in replicas:
            await r.leadership.stop()


async def test_a_sender_of_a_former_epoch_sends_nothing_more_and_fences(url, stores):
    # replica A's sender claims as the leader of the current epoch
    bot_a, bot_b = FakeBot(), FakeBot()
    sender_a, outbox_a = make(stores[0], bot_a)
    sender_b, _ = make(stores[1], bot_b)
    fenced: list[str] = []
    await sender_a.start(await stores[0].leadership.epoch(), on_fenced=fenced.append)
    b = Leadership(url, replica="b", notified=sender_b.wake, poll=sender_b.poll, **FAST)

    async def lead_b(epoch: int | None, stack: AsyncExitStack) -> None:
        await sender_b.start(epoch, on_fenced=b.fence)
        stack.push_async_callback(sender_b.stop)

    try:
        await outbox_a.send(-1001, "before", priority=20)
        await bot_a.wait_calls(1)
        # B takes over (A never noticed: a zombie); what is queued now is B's to send
        await b.start(lead_b)
        assert b.role == Role.LEADER
        await outbox_a.send(-1001, "after", priority=20)
        await bot_b.wait_calls(1)
        async with asyncio.timeout(5):
            while not fenced:
                await asyncio.sleep(0.01)  # A's claim is being refused
        assert bot_a.texts() == ["before"] and bot_b.texts() == ["after"]
        assert "epoch" in fenced[0]
    finally:
        await sender_a.stop()
        await b.stop()


async def test_another_replicas_commit_wakes_the_leaders_sender_by_notification(url, stores):
    bot = FakeBot()
    sender, _ = make(stores[0], bot)
    # no poll within the test: only the notification can wake it
    a = Leadership(url, replica="a", retry_interval=0.05, check_interval=60.0,
                   notified=sender.wake, poll=sender.poll)

    async def lead(epoch: int | None, stack: AsyncExitStack) -> None:
        await sender.start(epoch, on_fenced=a.fence)
        stack.push_async_callback(sender.stop)

    await a.start(lead)
    try:
        _, other_outbox = make(stores[1], FakeBot())  # replica B's writer
        await other_outbox.send(-1001, "from another replica", priority=20)
        await bot.wait_calls(1, timeout=10)
        assert bot.texts() == ["from another replica"]
    finally:
        await a.stop()


async def test_a_scheduled_job_run_by_two_leaders_at_once_posts_once(stores):
    """Two leaders overlapping (a fenced one still finishing its run): the store decides."""
    clock = Clock(at(2026, 12, 1, 9))
    writing, release = asyncio.Event(), asyncio.Event()

    def job_of(built: Any, first: bool) -> Job:
        async def write(period: str, now: Any, _: Any) -> int:
            await built.outbox.send(-1001, f"theme of {period}", priority=30)
            if first:
                writing.set()
                await release.wait()  # its transaction stays open meanwhile
            return 1
        return Job("probe", "0 9 1 * *", periods.month_key, write)

    a, b = build(stores[0], clock), build(stores[1], clock)
    run_a = asyncio.create_task(a.scheduler._run(job_of(a, True), "2026-12", clock()))
    await writing.wait()
    run_b = asyncio.create_task(b.scheduler._run(job_of(b, False), "2026-12", clock()))
    await waits_on_a_lock(stores[0])  # B's claim waits for A's transaction
    release.set()
    ran_a, ran_b = await asyncio.gather(run_a, run_b)
    assert ran_a is not None and ran_a.posts == 1 and ran_b is None
    rows = await stores[0].db.fetchall("SELECT * FROM outbox")
    assert [r["payload"] for r in rows] and len(rows) == 1
    assert await stores[1].db.fetchval(
        "SELECT posts FROM schedule_runs WHERE job = 'probe' AND period = '2026-12'") == 1


async def waits_on_a_lock(store: Store) -> None:
    """Until a session of this database waits for a lock (the second claim)."""
    async with asyncio.timeout(10):
        while not await store.db.fetchval(
                """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND wait_event_type = 'Lock'"""):
            await asyncio.sleep(0.01)


async def test_direct_replies_of_another_replica_take_the_leaders_windows(stores):
    leader_gate = FloodGate(30, 1, 20)
    follower_gate = FloodGate(30, 1, 20)
    leader = SharedDirectSends(stores[0].leadership, leader_gate, "leader")
    follower = SharedDirectSends(stores[1].leadership, follower_gate, "follower")
    limiter = DirectReplyLimiter(follower_gate, shared=follower)

    async def call() -> dict[str, Any]:
        return {"message_id": 1}

    await limiter.process_request(call, (), {}, "sendMessage", {"chat_id": -1001}, None)
    now = leader_gate.clock()
    assert leader_gate.chat_next_free(-1001, now) <= now  # the leader knows nothing yet
    await follower.flush()  # every ~0.2 s on its own
    assert await leader.count() == 1  # every ~0.25 s on its own, while leading
    now = leader_gate.clock()
    assert leader_gate.chat_next_free(-1001, now) > now + 0.5  # the chat's 1/s is used
    assert await leader.count() == 0  # each reply counted once
    # the leader's own direct replies are already in its windows: not counted twice
    own = DirectReplyLimiter(leader_gate, shared=leader)
    await own.process_request(call, (), {}, "sendMessage", {"chat_id": -2002}, None)
    await leader.flush()
    assert await leader.count() == 0


async def test_the_counting_loop_reads_the_replies_as_the_leader(stores):
    gate = FloodGate(30, 1, 20)
    leader = SharedDirectSends(stores[0].leadership, gate, "leader", poll_every=0.02)
    follower = SharedDirectSends(stores[1].leadership, FloodGate(30, 1, 20), "follower",
                                 flush_every=0.02)
    await leader.start_counting()
    await follower.start()
    try:
        follower.note(-1001)
        async with asyncio.timeout(5):
            while leader.counted == 0:
                await asyncio.sleep(0.02)
        assert gate.chat_next_free(-1001) > gate.clock()
    finally:
        await follower.stop()
        await leader.stop_counting()


async def test_sqlite_is_a_single_leader_of_epoch_one(tmp_path):
    single = Leadership(None)
    led: list[int | None] = []

    async def lead(epoch: int | None, stack: AsyncExitStack) -> None:
        led.append(epoch)

    await single.start(lead)
    try:
        assert (single.role, single.epoch, single.is_leader(), led) == (Role.SINGLE, 1, True,
                                                                         [None])
    finally:
        await single.stop()


async def test_a_leader_told_by_its_sender_that_its_epoch_is_over_fences_and_campaigns_again(url):
    a = Replica(url, "a")
    roles: list[tuple[Role, int | None]] = []
    a.leadership.on_change(lambda role, epoch: roles.append((role, epoch)))
    await a.start()
    try:
        first = a.leadership.epoch
        assert a.leadership.role == Role.LEADER and first is not None
        a.leadership.fence("epoch over")  # what the sender does on StaleEpoch
        # its lock released with its connection: alone, it wins again, a new epoch
        assert await a.leadership.wait_for(Role.LEADER, TAKEOVER_S, after=first) == first + 1
        assert roles == [(Role.LEADER, first), (Role.FOLLOWER, first), (Role.LEADER, first + 1)]
        assert a.stops == [(first, True)] and a.led == [first, first + 1]
    finally:
        await a.leadership.stop()
