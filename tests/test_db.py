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
            await asyncio.sleep(0)  # reads never suspend: let the writer's turn come

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


async def test_a_migrated_chat_takes_everything_with_it(store):
    from tests.support.harness import seed_map

    await seed_map(store)
    async with store.transaction():
        await store.people.ensure(7)
        await store.map.bind("G0101", -100, 0, None)
        ticket_id = (await store.tickets.create(
            reporter_id=7, anonymous=False, building_code="B01010101", grid_code="G0101",
            community_code="C01", domain=None, text="t", photo_file_id=None,
            source_update_id=None, due_kind="ack", due_from=0, due_at=1, remind_at=1)).id
        await store.tickets.add_card(ticket_id, -100, 5, "staff")
        await store.outbox.enqueue(-100, "sendMessage", {"text": "x"}, 20)
    await store.migrate_chat(-100, -1009)
    assert (await store.map.binding("G0101")).chat_id == -1009
    assert [c.chat_id for c in await store.tickets.cards(ticket_id)] == [-1009]
    assert [i.chat_id for i in await store.outbox.pending()] == [-1009]


async def test_another_process_holding_the_write_lock_does_not_block_the_loop(tmp_path):
    """The write connection does not sleep in SQLite's busy handler (that would stop every
    other task): it waits on the loop and goes on when the other writer commits."""
    import sqlite3

    from storage.store import Store

    path = str(tmp_path / "g.db")
    store = await Store.open_sqlite(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with store.transaction():
                await store.map.upsert(Unit(code="C01", kind="community", name="c"))

        task = asyncio.create_task(write())
        await asyncio.sleep(0.05)  # the loop runs on while the task waits for the lock
        assert not task.done()
        other.execute("COMMIT")
        await asyncio.wait_for(task, 5)
        assert await store.map.get("C01") is not None
    finally:
        other.close()
        await store.close()


async def test_long_reads_see_the_last_commit_and_a_transaction_its_own_changes(store):
    async with store.transaction():
        await store.map.upsert(Unit(code="C01", kind="community", name="c"))
    rows = await store.db.fetchall_long("SELECT code FROM units")
    assert [r["code"] for r in rows] == ["C01"]
    async with store.transaction():
        await store.map.upsert(Unit(code="C02", kind="community", name="d"))
        rows = await store.db.fetchall_long("SELECT code FROM units ORDER BY code")
        assert [r["code"] for r in rows] == ["C01", "C02"]


async def test_the_write_ahead_log_stays_small_under_a_stream_of_commits(tmp_path):
    """Regression: PASSIVE checkpoints on another thread while commits went on never let the
    log restart; under a burst it grew to 165 MB and every read slowed down."""
    import os

    from storage.store import Store

    path = str(tmp_path / "g.db")
    store = await Store.open_sqlite(path)
    try:
        blob = "资料" * 1000  # ~6 KB per row: 3,000 commits write ~45 MB of pages
        for n in range(3000):
            async with store.transaction():
                await store.flows.set(n, "draft", "editing", {"text": blob, "n": n})
            assert (await store.flows.get(n)).data["n"] == n
            await asyncio.sleep(0)  # a bot yields between updates
        # (the file keeps the largest size the log ever reached; a restarted log is reused)
        assert os.path.getsize(path + "-wal") < 16 * 1024 * 1024
    finally:
        await store.close()


async def test_drafts_kept_in_flows_before_migration_5_move_to_their_own_table(tmp_path):
    import sqlite3

    from storage.db import _migrations, _split_sql
    from storage.store import Store

    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path, isolation_level=None)
    for number, _, sql in _migrations():
        if number <= 4:
            for statement in _split_sql(sql):
                conn.execute(statement)
    conn.execute("INSERT INTO flows VALUES (7, 'draft', 'editing', '{\"text\": \"灯坏了\"}', 'x')")
    conn.execute("INSERT INTO flows VALUES (8, 'horn', 'level', '{}', 'x')")
    conn.execute("PRAGMA user_version=4")
    conn.close()
    store = await Store.open_sqlite(path)
    try:
        assert (await store.drafts.get(7)).data == {"text": "灯坏了"}
        assert await store.flows.get(7) is None
        assert (await store.flows.get(8)).name == "horn"
    finally:
        await store.close()


async def write_unit(store, code: str, hold: asyncio.Event | None = None,
                     inside: asyncio.Event | None = None) -> None:
    """One transaction writing community `code`; with `hold`, it stays in its body (signalling
    `inside`) until `hold` is set."""
    async with store.transaction():
        await store.map.upsert(Unit(code=code, kind="community", name=code))
        if inside is not None:
            inside.set()
        if hold is not None:
            await hold.wait()


def committed_codes(path) -> set[str]:
    """What another connection sees: only what is committed."""
    import contextlib
    import sqlite3
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {row[0] for row in conn.execute("SELECT code FROM units")}


@pytest.mark.sqlite_only  # group commit
async def test_transactions_of_one_turn_commit_together_and_each_waits_for_it(store):
    """Group commit: a block is left only once its changes are committed; a member that
    fails rolls back alone; callbacks run after the commit, never for a failed member."""
    db = store.db
    commits = []
    db._write.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    ran: list[str] = []

    async def member(code: str, fail: bool = False) -> set[str]:
        async with store.transaction():
            await store.map.upsert(Unit(code=code, kind="community", name=code))
            db.after_commit(lambda: ran.append(code))
            if fail:
                raise RuntimeError("boom")
        return committed_codes(db.path)

    results = await asyncio.gather(member("C01"), member("C02", fail=True), member("C03"),
                                   return_exceptions=True)
    assert {"C01", "C03"} <= results[0] and {"C01", "C03"} <= results[2]
    assert isinstance(results[1], RuntimeError)
    assert committed_codes(db.path) == {"C01", "C03"}
    assert commits == ["COMMIT"] and sorted(ran) == ["C01", "C03"]


@pytest.mark.sqlite_only  # group commit
async def test_a_failed_group_commit_fails_every_member(store):
    db = store.db

    async def good() -> None:
        async with store.transaction():
            await store.map.upsert(Unit(code="C01", kind="community", name="c"))

    async def bad() -> None:  # a deferred constraint fails only at COMMIT
        async with store.transaction():
            await db.execute("PRAGMA defer_foreign_keys=ON")
            await store.map.upsert(Unit(code="G01", kind="grid", name="g", parent_code="C99"))

    results = await asyncio.gather(good(), bad(), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert committed_codes(db.path) == set()
    await good()  # the next group starts clean
    assert committed_codes(db.path) == {"C01"}


@pytest.mark.sqlite_only  # group commit
async def test_a_member_holding_the_lock_past_the_turn_commits_the_group_as_it_leaves(store):
    db = store.db
    holding, release = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(write_unit(store, "C01"))
    second = asyncio.create_task(write_unit(store, "C02", hold=release, inside=holding))
    await holding.wait()
    for _ in range(5):
        await asyncio.sleep(0)  # the turn ends: the lock is held, the group stays open
    assert not first.done() and committed_codes(db.path) == set()
    release.set()
    await asyncio.gather(first, second)
    assert committed_codes(db.path) == {"C01", "C02"}


@pytest.mark.sqlite_only  # group commit
async def test_a_member_cancelled_while_its_group_commits_is_still_committed(store):
    db = store.db
    ran: list[str] = []

    async def member() -> None:
        async with store.transaction():
            await store.map.upsert(Unit(code="C01", kind="community", name="c"))
            db.after_commit(lambda: ran.append("C01"))

    task = asyncio.create_task(member())
    await asyncio.sleep(0)  # the member has left its block's body and waits for the commit
    assert committed_codes(db.path) == set()
    task.cancel()
    results = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert committed_codes(db.path) == {"C01"} and ran == ["C01"]


@pytest.mark.sqlite_only  # group commit
async def test_a_waiter_cancelled_as_the_lock_reaches_it_still_lets_the_group_commit(store):
    """The turn ends while the lock is on its way to a waiter, which is then cancelled: the
    group must not stay open (a found bug: the writer behind it waited forever)."""
    gate = asyncio.Event()
    a = asyncio.create_task(write_unit(store, "C01", hold=gate))
    await asyncio.sleep(0)
    b = asyncio.create_task(write_unit(store, "C02"))
    await asyncio.sleep(0)
    gate.set()
    asyncio.get_running_loop().call_soon(b.cancel)  # after a's step, before b's
    await asyncio.gather(b, return_exceptions=True)
    done, _ = await asyncio.wait({a}, timeout=2.0)
    assert a in done and committed_codes(store.db.path) == {"C01"}


async def test_closing_the_store_undoes_a_block_still_in_its_body(tmp_path):
    from storage.store import Store
    store = await Store.open_sqlite(str(tmp_path / "g.db"))
    inside = asyncio.Event()
    first = asyncio.create_task(write_unit(store, "C01"))
    second = asyncio.create_task(write_unit(store, "C02", hold=asyncio.Event(), inside=inside))
    await inside.wait()
    await store.close()
    await asyncio.gather(first, return_exceptions=True)
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    assert committed_codes(tmp_path / "g.db") == {"C01"}
