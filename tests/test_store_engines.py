"""The store over both engines (SPEC §16): the same migrations, the same schema, and the
PostgreSQL database behaving as the SQLite one where the repositories rely on it."""

from __future__ import annotations

import asyncio
from importlib import resources

import pytest

from storage import db as sqlite_db
from storage import pg
from storage.models import Unit
from storage.store import Store

#: SQLite's declared types and what each is on PostgreSQL
TYPES = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text"}


def _numbers(folder) -> set[int]:
    return {int(e.name[:3]) for e in folder.iterdir()
            if e.name.endswith(".sql") and e.name[:3].isdigit()}


def test_every_postgresql_migration_has_its_sqlite_number_and_both_run_the_same_numbers():
    shared = resources.files("storage.migrations")
    assert _numbers(shared / "postgresql") <= _numbers(shared)
    assert [n for n, _, _ in pg._migrations()] == [n for n, _, _ in sqlite_db._migrations()]


async def _schema(store: Store) -> dict[str, dict[str, tuple[str, bool]]]:
    """Every table's columns: (type as PostgreSQL names it, NOT NULL)."""
    tables: dict[str, dict[str, tuple[str, bool]]] = {}
    if store.db.dialect == "sqlite":
        names = await store.db.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        for (name,) in names:
            columns = await store.db.fetchall(f'PRAGMA table_info("{name}")')
            tables[name] = {c["name"]: (TYPES[c["type"]], bool(c["notnull"] or c["pk"]))
                            for c in columns}
        return tables
    rows = await store.db.fetchall(
        """SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name != 'schema_version'
           ORDER BY table_name, ordinal_position""")
    for r in rows:
        tables.setdefault(r["table_name"], {})[r["column_name"]] = (
            r["data_type"], r["is_nullable"] == "NO")
    return tables


async def test_both_engines_migrate_to_the_same_tables_and_columns(tmp_path):
    from tests.support import pg as pg_support

    sqlite = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        expected = await _schema(sqlite)
    finally:
        await sqlite.close()
    async with pg_support.fresh_url() as url:
        postgresql = await Store.open(url)
        try:
            found = await _schema(postgresql)
            assert await postgresql.db.migrate() == max(n for n, _, _ in pg._migrations())
        finally:
            await postgresql.close()
    assert found == expected


@pytest.mark.parametrize("sql, translated", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("UPDATE t SET a = :a WHERE id = :id", "UPDATE t SET a = %(a)s WHERE id = %(id)s"),
    ("SELECT ? FROM t WHERE ref LIKE 'x%' AND s = '?:no' AND w = 5 % 2",
     "SELECT %s FROM t WHERE ref LIKE 'x%%' AND s = '?:no' AND w = 5 %% 2"),
    ("SELECT 'it''s ?', CAST(x AS TEXT)::text, ? -- a comment? 100%",
     "SELECT 'it''s ?', CAST(x AS TEXT)::text, %s -- a comment? 100%%"),
])
def test_placeholders_become_psycopgs_outside_quotes_and_comments(sql, translated):
    assert pg.translate(sql) == (translated, True)


def test_a_statement_without_placeholders_goes_as_it_is():
    assert pg.translate("SELECT 100 % 7 FROM t") == ("SELECT 100 % 7 FROM t", False)


async def test_rows_read_by_name_and_position_and_inserts_return_their_id(store):
    async with store.transaction():
        await store.people.ensure(7)
        await store.map.upsert(Unit(code="C01", kind="community", name="欣山社区"))
        await store.map.upsert(Unit(code="G01", kind="grid", name="一网格", parent_code="C01"))
        await store.map.upsert(Unit(code="B01", kind="building", name="1栋", parent_code="G01"))
        ids = [await store.db.execute(
            "INSERT INTO patrols (grid_code, user_id, at, note) VALUES (?, ?, ?, ?)",
            ("G01", 7, 100.0 + n, f"n{n}")) for n in range(2)]
    assert ids[1] == ids[0] + 1 and ids[0] > 0
    row = await store.db.fetchone("SELECT id, note, at FROM patrols WHERE id = ?", (ids[1],))
    assert row is not None
    assert (row["note"], row[1], row[0], len(row)) == ("n1", "n1", ids[1], 3)
    assert dict(row) == {"id": ids[1], "note": "n1", "at": 101.0}
    assert list(row.keys()) == ["id", "note", "at"]
    assert await store.db.fetchval("SELECT COUNT(*) FROM patrols WHERE user_id = :u",
                                   {"u": 7}) == 2
    assert await store.db.fetchval("SELECT SUM(user_id) FROM patrols") == 14  # int, not Decimal


async def test_a_nested_transaction_joins_the_outer_one_and_a_failure_undoes_both(store):
    committed: list[str] = []
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.people.ensure(1)
            async with store.transaction():
                await store.people.ensure(2)
                store.db.after_commit(lambda: committed.append("inner"))
            assert store.db.in_transaction
            raise RuntimeError("undo")
    assert committed == [] and not store.db.in_transaction
    assert await store.db.fetchval("SELECT COUNT(*) FROM people") == 0


async def test_a_held_row_makes_concurrent_read_then_write_take_turns(store):
    """The next seat on a waiting list is read then written: two tasks at once must not take
    the same one. SQLite: one writer at a time; PostgreSQL: the row held (`lock_row`)."""
    item = await store.outbox.enqueue(1, "sendMessage", {"text": "x"}, 1)
    assert item is not None

    async def add(n: int) -> None:
        async with store.transaction():
            await store.db.lock_row("outbox", item)
            seats = await store.db.fetchval("SELECT COUNT(*) FROM people")
            await asyncio.sleep(0.01)
            await store.db.execute(
                "INSERT INTO people (user_id, first_name, created_at) VALUES (?, ?, ?)",
                (100 + n, str(seats), "x"))

    await asyncio.gather(*(add(n) for n in range(5)))
    names = [r[0] for r in await store.db.fetchall(
        "SELECT first_name FROM people WHERE user_id >= 100 ORDER BY first_name")]
    assert names == ["0", "1", "2", "3", "4"]


async def test_postgresql_transactions_of_concurrent_tasks_run_side_by_side(store):
    """Each transaction on its own connection: the second begins while the first is open
    (a transaction waiting for the one before it made a burst wait for every commit)."""
    if store.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: its transactions take turns")
    first_in, second_in = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with store.transaction():
            await store.people.ensure(1)
            first_in.set()
            await asyncio.wait_for(second_in.wait(), 10)

    async def second() -> None:
        await first_in.wait()
        async with store.transaction():
            await store.people.ensure(2)
            second_in.set()

    await asyncio.gather(first(), second())
    assert await store.db.fetchval("SELECT COUNT(*) FROM people") == 2


async def test_a_deadlock_between_two_transactions_undoes_one_as_a_conflict(store):
    """PostgreSQL undoes one of two transactions that wait for each other; the store names it
    a Conflict (the intake then handles its update again, alone)."""
    if store.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: two transactions never wait for each other")
    from storage.models import Conflict

    a = await store.outbox.enqueue(1, "sendMessage", {"text": "a"}, 1)
    b = await store.outbox.enqueue(1, "sendMessage", {"text": "b"}, 1)
    assert a is not None and b is not None
    both_hold = asyncio.Barrier(2)

    async def hold(first: int, then: int) -> None:
        async with store.transaction():
            await store.db.lock_row("outbox", first)
            await both_hold.wait()
            await store.db.lock_row("outbox", then)

    results = await asyncio.gather(hold(a, b), hold(b, a), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"]
    assert any(isinstance(r, Conflict) for r in results)


async def test_open_chooses_the_engine_by_the_urls_scheme(tmp_path):
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        assert store.db.dialect == "sqlite" and (tmp_path / "g.db").exists()
    finally:
        await store.close()
    with pytest.raises(ValueError, match="unsupported database URL scheme 'mysql'"):
        await Store.open("mysql://db/gridhorn")


async def test_replicas_starting_together_migrate_a_new_database_once():
    """Two processes open one new PostgreSQL database at once: one applies the migrations
    (under an advisory lock), the other waits and finds them applied."""
    from tests.support import pg as pg_support

    latest = max(n for n, _, _ in pg._migrations())
    async with pg_support.empty_url() as url:
        stores = await asyncio.gather(Store.open(url), Store.open(url))
        try:
            applied = await stores[0].db.fetchall(
                "SELECT version FROM schema_version ORDER BY version")
            assert [r["version"] for r in applied] == sorted(n for n, _, _ in pg._migrations())
            assert await stores[1].db.migrate() == latest
            assert await stores[1].db.fetchval("SELECT version FROM map_version") == 0
        finally:
            for store in stores:
                await store.close()


async def test_a_column_added_by_another_replicas_migration_costs_one_redo_not_an_error(store):
    """Statements run often are prepared on the server; a `SELECT *` prepared before another
    replica's migration added a column is refused by the server on every connection that
    prepared it. The first refusal replaces the pool's connections: a read outside a
    transaction is read again, a transaction is undone once as a Conflict (its update is
    handled again) and every one after it succeeds."""
    if store.db.dialect != "postgresql":
        pytest.skip("SQLite prepares nothing on a server")
    import psycopg

    from storage.models import Conflict

    await store.people.ensure(7)

    async def warm() -> None:
        for _ in range(2 * pg.PREPARE_THRESHOLD):
            async with store.transaction():
                assert (await store.people.get(7)) is not None
                await asyncio.sleep(0)  # the others take connections of their own meanwhile

    await asyncio.gather(*(warm() for _ in range(4)))  # prepared on several connections
    async with await psycopg.AsyncConnection.connect(store.db.url, autocommit=True) as other:
        await other.execute("ALTER TABLE people ADD COLUMN note_of_a_newer_release TEXT")

    outcomes = []
    for _ in range(6):
        try:
            async with store.transaction():
                person = await store.people.get(7)
                await store.people.set_locale(7, "en")
            outcomes.append("done")
        except Conflict:
            outcomes.append("conflict")
    assert outcomes.count("conflict") <= 1 and outcomes[1:] == ["done"] * 5, outcomes
    for _ in range(6):
        person = await store.people.get(7)
        assert person is not None and person.locale == "en"


async def test_a_connection_lost_in_a_transaction_undoes_it_as_a_conflict(store):
    """The server (or the way to it) fails in the middle of a transaction: nothing of it was
    committed, and it is a Conflict (the intake handles its update again) rather than an
    error that would let the update be marked done without its work."""
    if store.db.dialect != "postgresql":
        pytest.skip("SQLite has no connection to lose")
    import psycopg

    from storage.models import Conflict

    await store.people.ensure(8)
    with pytest.raises(Conflict):
        async with store.transaction():
            await store.people.set_locale(8, "en")
            pid = await store.db.fetchval("SELECT pg_backend_pid()")
            async with await psycopg.AsyncConnection.connect(store.db.url,
                                                             autocommit=True) as other:
                await other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await store.people.set_locale(8, "zh-hans")
    assert (await store.people.get(8)).locale is None
