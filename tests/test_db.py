"""The store's connection pair: transactions, rollback, and reads that see every commit."""

import asyncio

import pytest

from storage.models import Unit


async def test_a_read_after_a_commit_sees_it_while_other_tasks_read(store):
    """Regression: an open cursor on the read connection once made another task's read miss
    a commit it had just made (a shared, stale snapshot)."""
    async with store.transaction():
        await store.map.upsert(Unit(code="C01", kind="community", name="c"))
    stop = asyncio.Event()

    async def busy_reader() -> None:
        while not stop.is_set():
            await store.map.get("C01")

    readers = [asyncio.create_task(busy_reader()) for _ in range(4)]
    try:
        for n in range(200):
            async with store.transaction():
                await store.flows.set(n, "draft", "editing", {"n": n})
            flow = await store.flows.get(n)
            assert flow is not None and flow.data == {"n": n}
    finally:
        stop.set()
        await asyncio.gather(*readers)


async def test_a_failed_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.map.upsert(Unit(code="C01", kind="community", name="c"))
            raise RuntimeError("boom")
    assert await store.map.get("C01") is None


async def test_after_commit_runs_only_after_a_commit(store):
    seen = []
    with pytest.raises(RuntimeError):
        async with store.transaction():
            store.db.after_commit(lambda: seen.append("rolled back"))
            raise RuntimeError("boom")
    async with store.transaction():
        store.db.after_commit(lambda: seen.append("committed"))
        assert seen == []
    assert seen == ["committed"]


async def test_migrations_are_applied_once(tmp_path):
    from storage.store import Store

    path = str(tmp_path / "g.db")
    first = await Store.open_sqlite(path)
    version = await first.db.fetchval("PRAGMA user_version")
    await first.close()
    again = await Store.open_sqlite(path)
    try:
        assert await again.db.fetchval("PRAGMA user_version") == version >= 2
    finally:
        await again.close()
