"""Processing on any replica (SPEC §16): several intakes ("replicas", each with its own store
and connections) on one PostgreSQL database handle the updates each of them stored: one
chat's in update_id order, each exactly once, none lost when a replica stops. And, on both
engines, an update handled before is not handled again when it is delivered once more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest

from bot.intake import Intake
from storage.store import Store

pytestmark = pytest.mark.asyncio
Handle = Callable[[int], Awaitable[None]]


def update(update_id: int, chat: int) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 0, "text": f"u{update_id}",
        "chat": {"id": chat, "type": "private"}}}


class _App:
    """The part of python-telegram-bot's Application the intake uses."""

    bot = None

    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    async def process_update(self, update) -> None:
        await self.handle(update.update_id)

    def add_error_handler(self, callback) -> None:
        """The intake counts the updates whose handler raised (none do here)."""


class Replica:
    """An intake on a store of its own, as one process of a deployment; its handler records
    what it handled (in the order all replicas handled it: `seen`) and queues a reply in
    the handler's transaction, which marks the update processed."""

    def __init__(self, name: str, store: Store, seen: list[tuple[str, int]]) -> None:
        self.name = name
        self.store = store
        self.seen = seen
        self.hold: dict[int, asyncio.Event] = {}  # update → released when set
        self.started: dict[int, asyncio.Event] = {}
        self.intake = Intake(_App(self.handle), store)
        self.intake.SWEEP_S = 0.05  # the sweeper looks often: the tests wait less

    async def handle(self, update_id: int) -> None:
        self.started.setdefault(update_id, asyncio.Event()).set()
        if update_id in self.hold:
            await self.hold[update_id].wait()
        async with self.store.transaction():
            await self.store.outbox.enqueue(1, "sendMessage", {"text": f"r{update_id}"}, 20)
        self.seen.append((self.name, update_id))  # committed


@pytest.fixture
async def replicas() -> AsyncIterator[Callable[[str], Awaitable[Replica]]]:
    from tests.support import pg

    seen: list[tuple[str, int]] = []
    async with pg.fresh_url() as url, AsyncExitStack() as stack:
        async def start(name: str) -> Replica:
            store = await Store.open(url)
            stack.push_async_callback(store.close)
            replica = Replica(name, store, seen)
            await replica.intake.start(poll=False)
            stack.push_async_callback(replica.intake.stop)
            return replica

        yield start


async def replies(store: Store) -> list[str]:
    rows = await store.db.fetchall("SELECT payload FROM outbox ORDER BY id")
    from storage import codec
    return [codec.loads(r["payload"])["text"] for r in rows]


async def unprocessed(store: Store) -> list[int]:
    return [update_id for update_id, _ in await store.inbox.pending()]


async def all_handled(*replicas: Replica, count: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while len(replicas[0].seen) < count or any(
                r.intake.busy() for r in replicas) or await unprocessed(replicas[0].store):
            await asyncio.gather(*(r.intake.drain() for r in replicas))
            await asyncio.sleep(0.01)  # the sweeper's next look (polled: no event to wait on)


async def test_a_chats_next_update_received_elsewhere_waits_for_the_one_being_handled(
        replicas):
    """Update 10 of a chat is being handled on replica A when 11 lands on B: B does not
    handle 11 beside it; A, done with 10, takes 11 too (the lowest unprocessed first)."""
    a, b = await replicas("A"), await replicas("B")
    a.hold[10] = asyncio.Event()
    a.started[10] = asyncio.Event()
    await a.intake.accept([update(10, 501)])
    await a.started[10].wait()
    await b.intake.accept([update(11, 501)])
    await b.intake.drain()  # B's lane worker found the lane locked and left it
    assert a.seen == [] and await unprocessed(b.store) == [10, 11]
    a.hold[10].set()
    await all_handled(a, b, count=2)
    assert a.seen == [("A", 10), ("A", 11)]
    assert await replies(a.store) == ["r10", "r11"]


async def test_a_chats_updates_fed_to_two_replicas_alternately_are_handled_once_in_order(
        replicas):
    a, b = await replicas("A"), await replicas("B")
    chats = (601, 602, 603)
    n = 0
    for _ in range(15):
        for chat in chats:
            n += 1
            await (a if n % 2 else b).intake.accept([update(n, chat)])
    await all_handled(a, b, count=n)
    handled = [update_id for _, update_id in a.seen]
    assert sorted(handled) == list(range(1, n + 1))  # each once
    for i, chat in enumerate(chats):  # each chat's in update_id order
        own = [u for u in handled if (u - 1) % len(chats) == i]
        assert own == sorted(own), chat
    assert len(await replies(a.store)) == n and await unprocessed(a.store) == []


async def test_an_update_a_replica_stored_and_never_handled_is_handled_by_another(replicas):
    """A replica answered 200 (the update committed) and died before handling it."""
    a, b = await replicas("A"), await replicas("B")
    await a.intake.stop()
    await a.store.inbox.store([update(20, 701)])  # stored by A, which handles nothing more
    await all_handled(b, count=1)
    assert b.seen == [("B", 20)] and await replies(b.store) == ["r20"]


async def test_a_replica_stopped_while_handling_leaves_its_update_to_another(replicas,
                                                                            monkeypatch):
    monkeypatch.setattr(Intake, "STOP_GRACE_S", 0.05)
    a, b = await replicas("A"), await replicas("B")
    a.hold[30] = asyncio.Event()  # never set: A is stopped in the middle
    a.started[30] = asyncio.Event()
    await a.intake.accept([update(30, 801), update(31, 801)])
    await a.started[30].wait()
    await a.intake.stop()  # its work rolled back, its lane lock freed
    await all_handled(b, count=2)
    assert b.seen == [("B", 30), ("B", 31)] and await replies(b.store) == ["r30", "r31"]


async def test_a_replica_that_lost_its_lane_lock_does_not_commit_the_update_again(replicas):
    """A's lock connection is cut while it handles update 40 (the server freed its lane
    lock): B takes the lane and handles 40; A's work for 40, committed later, is undone."""
    a, b = await replicas("A"), await replicas("B")
    a.hold[40] = asyncio.Event()
    a.started[40] = asyncio.Event()
    await a.intake.accept([update(40, 901)])
    await a.started[40].wait()
    assert a.intake._locks is not None
    await a.intake._locks._locks.close()  # as if the server ended that session
    await all_handled(b, count=1)
    a.hold[40].set()
    await a.intake.drain()
    assert a.seen == [("B", 40)] and await replies(a.store) == ["r40"]


async def test_the_same_update_accepted_by_both_replicas_is_handled_once(replicas):
    a, b = await replicas("A"), await replicas("B")
    raws = [update(n, 950 + n % 4) for n in range(50, 70)]
    await asyncio.gather(*(r.intake.accept([raw]) for raw in raws for r in (a, b)))
    await all_handled(a, b, count=len(raws))
    assert sorted(u for _, u in a.seen) == list(range(50, 70))
    assert len(await replies(a.store)) == len(raws)


async def test_an_update_handled_before_a_restart_is_not_handled_again_when_redelivered(
        database_url):
    """Telegram posts an update again when our 200 was lost; the process that handled it
    restarted meanwhile (its memory of handled updates is gone): the store knows."""
    seen: list[tuple[str, int]] = []
    for name in ("first", "restarted"):
        store = await Store.open(database_url)
        replica = Replica(name, store, seen)
        try:
            await replica.intake.start(poll=False)
            await replica.intake.accept([update(80, 1001)])
            async with asyncio.timeout(10):
                await replica.intake.drain()
            assert await replies(store) == ["r80"]
        finally:
            await replica.intake.stop()
            await store.close()
    assert seen == [("first", 80)]


async def test_a_busy_replica_leaves_anothers_fresh_updates_and_takes_old_ones(replicas):
    """A replica with updates of its own waiting for a slot does not take the lanes another
    replica is about to handle (that would cost both a claim and add nothing); an update
    left longer than `ORPHAN_S` (its replica died after answering 200) it takes all the
    same."""
    from storage.groupcommit import Slots

    a, b = await replicas("A"), await replicas("B")
    b.intake._slots = Slots(1)
    b.hold[50] = asyncio.Event()
    b.started[50] = asyncio.Event()
    await b.intake.accept([update(50, 901), update(51, 902)])  # 51 waits for the slot
    await b.started[50].wait()
    await a.intake.stop()
    await a.store.inbox.store([update(60, 903)])  # stored by A, which handles nothing more

    asked: list[str | None] = []
    looks = asyncio.Queue()
    pending_lanes = b.store.inbox.pending_lanes

    async def counting(limit: int = 10_000, received_before: str | None = None) -> list[int]:
        asked.append(received_before)
        lanes = await pending_lanes(limit, received_before)
        looks.put_nowait(lanes)
        return lanes

    b.store.inbox.pending_lanes = counting
    for _ in range(3):
        assert 903 not in await asyncio.wait_for(looks.get(), 5)
    assert all(before is not None for before in asked)  # busy: only old updates
    assert 903 not in b.intake._active and ("B", 60) not in b.seen

    b.intake.ORPHAN_S = 0.0  # now 60 counts as left behind: taken while still busy
    while 903 not in await asyncio.wait_for(looks.get(), 5):
        pass
    assert 903 in b.intake._active  # its worker waits for the slot behind 51
    b.hold[50].set()
    await all_handled(b, count=3)
    assert sorted(u for _, u in b.seen) == [50, 51, 60]
