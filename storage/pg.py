"""The PostgreSQL store (SPEC §16): the same `Database` interface as SQLite's, on psycopg 3.

Statements outside a transaction run on a pooled autocommit connection; a transaction holds
one pooled connection for its whole block, carried in a context variable so that every
statement of the block (reads included) runs in it. Nested `transaction()` blocks join the
outermost one, as with SQLite.

The transactions of this process run side by side, each on its own pooled connection, as
those of several replicas do: the server overlaps their round trips and flushes their commits
together (a transaction waiting for the one before it made a Submit wait for some twenty
commits, docs/benchmarks.md). Where a read decides a write, the store decides the race: a
compare-and-set (`UPDATE … WHERE status IN …`), a unique key, or the row locked first
(`lock_row`: a horn's seats). A transaction the server undid for a deadlock or a
serialization failure raises `Conflict`; the intake handles its update again `alone()`:
its transactions then take turns with the other lone ones.

The repositories' SQL is written with `?` and `:name`; each string is translated once to
psycopg's `%s` / `%(name)s` (a literal `%` doubled). An INSERT into a table whose `id` is an
identity column gets `RETURNING id`, so `execute` returns the new id as sqlite3's lastrowid
does. Python bools are sent as integers (the schema stores flags as 0/1 integers, as SQLite
does) and `numeric` results (`SUM` of integers) come back as int, or float if fractional.
Text sorts as SQLite sorts it (byte order) in a database created with a C collation (e.g.
`CREATE DATABASE gridhorn LOCALE 'C.UTF-8'`); the unit codes sort alike either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from functools import lru_cache
from importlib import resources
from typing import Any

import psycopg
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg_pool import AsyncConnectionPool

from storage.dbapi import DatabaseUnavailable, Dialect, Params, Row
from storage.groupcommit import WriteLock, is_alone
from storage.groupcommit import alone as _alone
from storage.models import Conflict

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10  # an unreachable server fails start-up after this, not never
POOL_MAX = 24  # connections of one replica at the same time (the server allows 100 in all)
#: the server undid the transaction; done again it succeeds (deadlock, serialization failure)
_CONFLICTS = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
#: statements run this often on a connection are prepared on the server (parsed and planned
#: once: a fifth of the server's CPU in a burst of Submits, docs/benchmarks.md)
PREPARE_THRESHOLD = 5
MIGRATION_LOCK = 0x6772_6964  # pg_advisory_lock key while migrating ("grid")


class PgRow:
    """A row by name and by position, like sqlite3.Row (the names are shared per result)."""

    __slots__ = ("_values", "_names")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str, /) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._names, self._values, strict=False))!r})"


def stale_plan(exc: BaseException) -> bool:
    """A prepared `SELECT *` after another replica's migration added a column: the server
    refuses it on every connection that prepared it, until prepared again. psycopg would
    keep it, so the pool's connections are replaced and the work is done again."""
    return isinstance(exc, psycopg.errors.FeatureNotSupported) and \
        "cached plan must not change result type" in str(exc)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], PgRow]:
    names: dict[str, int] = {}
    for i, column in enumerate(cursor.description or ()):
        names.setdefault(column.name, i)  # a repeated name: the first wins, as in sqlite3.Row

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(values, names)

    return make


class _BoolAsInt(Dumper):
    """Flags are 0/1 integer columns on both engines: a Python bool goes as 1 or 0."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: Any) -> Buffer:
        return b"1" if obj else b"0"


class _Numeric(Loader):
    """`numeric` (SUM of integers, AVG) as SQLite gives it: int, or float if fractional."""

    def load(self, data: Buffer) -> Any:
        text = bytes(data).decode()
        if "." in text or "e" in text or "N" in text:
            return float(text)
        return int(text)


def _configure_adapters(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.adapters.register_loader("numeric", _Numeric)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@lru_cache(maxsize=4096)
def translate(sql: str) -> tuple[str, bool]:
    """`?` → `%s`, `:name` → `%(name)s`, `%` → `%%`, outside quotes and comments; also
    whether the statement has placeholders (without, it goes as it is: psycopg does no `%`
    processing when there are no parameters)."""
    out: list[str] = []
    i, n, found = 0, len(sql), False
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            end = sql.find(c, i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == c:  # '' inside a literal
                end = sql.find(c, end + 2)
            end = n if end == -1 else end + 1
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        if c == "?":
            out.append("%s")
            found = True
        elif c == ":" and i + 1 < n and sql[i + 1] == ":":
            out.append("::")  # a cast
            i += 2
            continue
        elif c == ":" and (match := _NAME.match(sql, i + 1)) and (i == 0 or sql[i - 1] != ":"):
            out.append(f"%({match.group()})s")
            found = True
            i = match.end()
            continue
        elif c == "%":
            out.append("%%")
        else:
            out.append(c)
        i += 1
    return ("".join(out), True) if found else (sql, False)


_INSERT = re.compile(r"\s*INSERT\s+(?:INTO\s+)?(\w+)", re.IGNORECASE)


def _migrations() -> list[tuple[int, str, str]]:
    """The numbered migrations for PostgreSQL: `storage/migrations/NNN_*.sql`, where one in
    `storage/migrations/postgresql/` with the same number replaces it (a schema SQLite and
    PostgreSQL cannot share: types, identity columns, triggers)."""
    chosen: dict[int, tuple[str, str]] = {}
    base = resources.files("storage.migrations")
    for folder in (base, base / "postgresql"):
        for entry in folder.iterdir():
            name = entry.name
            if name.endswith(".sql") and name[:3].isdigit():
                chosen[int(name[:3])] = (name, entry.read_text(encoding="utf-8"))
    return sorted((number, name, sql) for number, (name, sql) in chosen.items())


class _Tx:
    __slots__ = ("conn", "callbacks", "channels")

    def __init__(self, conn: psycopg.AsyncConnection[PgRow]) -> None:
        self.conn = conn
        self.callbacks: list[Callable[[], None]] = []
        self.channels: set[str] = set()  # NOTIFY as the transaction ends (sent on commit)


_background: set[asyncio.Task[Any]] = set()  # notifications outside a transaction
_current: contextvars.ContextVar[_Tx | None] = contextvars.ContextVar("pg_tx", default=None)


class PgDatabase:
    """An open PostgreSQL store (see the module's text)."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, *, pool_max: int = POOL_MAX) -> None:
        self.url = url
        self._pool_max = pool_max
        #: updates handled at once (bot.intake): half the pool's connections (a handler may
        #: read outside its transaction on a second one), so that storing what arrives and
        #: the leader's sending always find one
        self.handler_slots = max(1, pool_max // 2)
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[PgRow]] | None = None
        self._lock = WriteLock()
        self._returning: dict[str, tuple[str, bool, bool]] = {}
        self._identity: frozenset[str] = frozenset()
        self._replaced_at = -1.0  # when the pool's connections were last replaced

    async def _connect(self) -> psycopg.AsyncConnection[PgRow]:
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, row_factory=_row_factory,
            connect_timeout=CONNECT_TIMEOUT_S, prepare_threshold=None)
        _configure_adapters(conn)
        return conn

    async def open(self) -> None:
        try:
            await self._open()
        except psycopg.Error as exc:
            # libpq's words, first line ("connection failed: … Connection refused")
            reason = next((line.strip() for line in str(exc).splitlines() if line.strip()),
                          type(exc).__name__)
            raise DatabaseUnavailable(reason) from exc

    async def _open(self) -> None:
        # A first connection of its own: an unreachable server fails here with libpq's own
        # words (the pool would only time out), and the schema is brought up to date.
        conn = await self._connect()
        try:
            await self._migrate(conn)
            cur = await conn.execute(
                """SELECT table_name FROM information_schema.columns
                   WHERE table_schema = current_schema() AND column_name = 'id'
                     AND is_identity = 'YES'""")
            self._identity = frozenset(r[0] for r in await cur.fetchall())
        finally:
            await conn.close()

        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            _configure_adapters(conn)

        pool: AsyncConnectionPool[psycopg.AsyncConnection[PgRow]] = AsyncConnectionPool(
            self.url, min_size=1, max_size=self._pool_max, open=False, configure=configure,
            kwargs={"autocommit": True, "row_factory": _row_factory,
                    "prepare_threshold": PREPARE_THRESHOLD, "connect_timeout": CONNECT_TIMEOUT_S})
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def migrate(self) -> int:
        """Apply every migration newer than the `schema_version` table says."""
        conn = await self._connect()
        try:
            return await self._migrate(conn)
        finally:
            await conn.close()

    async def _migrate(self, conn: psycopg.AsyncConnection[PgRow]) -> int:
        # Two replicas starting together: one migrates, the other waits and finds it done.
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_version (
                       version    INTEGER PRIMARY KEY,
                       applied_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            row = await cur.fetchone()
            version = int(row[0]) if row is not None else 0
            for number, name, sql in _migrations():
                if number <= version:
                    continue
                logger.info("applying migration %s", name)
                async with conn.transaction():
                    await conn.execute(sql.encode())  # a script: several statements
                    await conn.execute("INSERT INTO schema_version (version) VALUES (%s)",
                                       (number,))
                version = number
            return version
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    @property
    def in_transaction(self) -> bool:
        return _current.get() is not None

    def transaction(self, urgent: bool = False) -> AbstractAsyncContextManager[None]:
        """One transaction on one pooled connection; nested use joins the outer one.
        `urgent` ones take the next turn (short bookkeeping only)."""
        if self._pool is None:
            raise RuntimeError("the database is not open")
        return self._transaction(self._pool, urgent)

    @asynccontextmanager
    async def _transaction(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[PgRow]],
                           urgent: bool) -> AsyncIterator[None]:
        if _current.get() is not None:
            yield
            return
        lone = is_alone()
        if lone:  # a redo after a conflict: not beside the other redos
            await self._lock.acquire(urgent)
        try:
            async with pool.connection() as conn:
                tx = _Tx(conn)
                token = _current.set(tx)
                try:
                    await conn.execute(b"BEGIN", prepare=False)
                    try:
                        yield
                    except BaseException:
                        if not conn.closed:
                            await conn.rollback()
                        raise
                    # the notifications (delivered only on commit) and the COMMIT in one
                    # round trip
                    await conn.execute("".join(f"NOTIFY {c}; " for c in sorted(tx.channels))
                                       .encode() + b"COMMIT", prepare=False)
                except _CONFLICTS as exc:
                    raise Conflict(str(exc).partition("\n")[0]) from exc
                except psycopg.errors.FeatureNotSupported as exc:
                    if stale_plan(exc):  # the update is handled again (bot.intake)
                        await self._replace_connections(conn)
                        raise Conflict(str(exc).partition("\n")[0]) from exc
                    raise
                except psycopg.OperationalError as exc:
                    if conn.broken or conn.closed:
                        # the server or the way to it failed: nothing of the body was
                        # committed; the update is handled again rather than marked done
                        raise Conflict(str(exc).partition("\n")[0]) from exc
                    raise
                finally:
                    _current.reset(token)
        finally:
            if lone:
                self._lock.release()
        for callback in tx.callbacks:
            try:
                callback()
            except Exception:
                logger.exception("an after-commit callback failed")

    def alone(self) -> AbstractContextManager[None]:
        """Every transaction commits by itself already (no group commit); those opened inside
        take turns with each other (the redo of a conflict does not meet another redo)."""
        return _alone()

    async def lock_row(self, table: str, row_id: int) -> None:
        """Inside a transaction: hold the row until the commit (`SELECT … FOR UPDATE`), so
        that a read which decides a write is not raced by another replica's or task's."""
        if not _NAME.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        await self.fetchall(f"SELECT 1 FROM {table} WHERE id = ? FOR UPDATE", (row_id,))

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current transaction commits (at once outside one)."""
        tx = _current.get()
        if tx is None:
            callback()
        else:
            tx.callbacks.append(callback)

    def notify(self, channel: str) -> None:
        """NOTIFY `channel` once the current transaction commits (once per transaction);
        outside one, at once."""
        if not _NAME.fullmatch(channel):
            raise ValueError(f"not a channel name: {channel!r}")
        tx = _current.get()
        if tx is not None:
            tx.channels.add(channel)
            return
        task = asyncio.get_running_loop().create_task(self.execute(f"NOTIFY {channel}"))
        _background.add(task)
        task.add_done_callback(_background.discard)

    def _write_sql(self, sql: str) -> tuple[str, bool, bool]:
        """The statement as psycopg takes it, whether it has placeholders, and whether it
        returns the new row's id (an INSERT into a table with an identity `id`)."""
        known = self._returning.get(sql)
        if known is None:
            query, placeholders = translate(sql)
            match = _INSERT.match(sql)
            returns_id = (match is not None and match.group(1).lower() in self._identity
                          and "returning" not in sql.lower())
            if returns_id:
                query = query.rstrip().rstrip(";") + " RETURNING id"
            known = self._returning[sql] = (query, placeholders, returns_id)
        return known

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement; an INSERT returns the new row's id — joins or opens a
        transaction."""
        tx = _current.get()
        if tx is None:
            async with self.transaction():
                return await self.execute(sql, params)
        query, placeholders, returns_id = self._write_sql(sql)
        cur = await tx.conn.execute(query, params if placeholders else None)
        if returns_id:
            row = await cur.fetchone()
            return int(row[0]) if row is not None else 0
        return 0

    async def execute_rowcount(self, sql: str, params: Params = ()) -> int:
        tx = _current.get()
        if tx is None:
            async with self.transaction():
                return await self.execute_rowcount(sql, params)
        query, placeholders = translate(sql)
        cur = await tx.conn.execute(query, params if placeholders else None)
        return cur.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        tx = _current.get()
        if tx is None:
            async with self.transaction():
                return await self.executemany(sql, rows)
        batch = list(rows)
        if not batch:
            return
        query, _ = translate(sql)
        async with tx.conn.cursor() as cur:
            await cur.executemany(query, batch)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        query, placeholders = translate(sql)
        args = params if placeholders else None
        tx = _current.get()
        if tx is not None:
            cur = await tx.conn.execute(query, args)
            return list(await cur.fetchall())
        if self._pool is None:
            raise RuntimeError("the database is not open")
        for again in (True, False):
            async with self._pool.connection() as conn:
                try:
                    cur = await conn.execute(query, args)
                    return list(await cur.fetchall())
                except psycopg.errors.FeatureNotSupported as exc:
                    if not (again and stale_plan(exc)):
                        raise
                    await self._replace_connections(conn)
        raise AssertionError("unreachable")

    async def _replace_connections(self, conn: psycopg.AsyncConnection[PgRow]) -> None:
        """A plan gone stale (`stale_plan`): every pooled connection may hold it, so all are
        replaced by new ones (those in use as they come back), at most once a second;
        `conn`, the one that met it, is closed now."""
        await conn.close()
        now = time.monotonic()
        if self._pool is not None and now - self._replaced_at >= 1.0:
            self._replaced_at = now
            await self._pool.drain()

    async def fetchall_long(self, sql: str, params: Params = ()) -> list[Row]:
        """A long read: the loop goes on answering meanwhile anyway (the server does it)."""
        return await self.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


# --- Session-level advisory locks on a dedicated connection (the inbox's lane locks) ---

#: TCP keepalives of a dedicated lock connection, on both sides: a replica that vanished
#: (power cut, cable) loses its locks in ~11 s instead of the hours the defaults would take
LOCK_KEEPALIVE_IDLE_S, LOCK_KEEPALIVE_INTERVAL_S, LOCK_KEEPALIVE_COUNT = 5, 2, 3


def advisory_key(name: str) -> int:
    """A signed 64-bit advisory lock key for a name (`lane:<chat id>`): the same on every
    replica, and apart from the other keys of the database (the migration's, the leader's)
    but by a 2⁻⁶⁴ chance."""
    digest = hashlib.blake2b(f"gridhorn:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SessionLocks:
    """Session-level advisory locks held on one connection of their own (never a pooled one:
    a session lock survives the transactions of the connection it was taken on, and a pooled
    connection would carry it to its next user). The server frees them all when the
    connection ends, so a replica that dies (or whose connection is cut) gives up its locks.
    After a connection error every lock taken on it counts as lost: `generation` changes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._connecting = asyncio.Lock()
        #: incremented whenever the connection is replaced (its locks are gone)
        self.generation = 0

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                    prepare_threshold=None, keepalives=1,
                    keepalives_idle=LOCK_KEEPALIVE_IDLE_S,
                    keepalives_interval=LOCK_KEEPALIVE_INTERVAL_S,
                    keepalives_count=LOCK_KEEPALIVE_COUNT)
                # the server's side: end our session (freeing its locks) soon after we vanish
                await conn.execute(
                    f"SET tcp_keepalives_idle = {LOCK_KEEPALIVE_IDLE_S}; "
                    f"SET tcp_keepalives_interval = {LOCK_KEEPALIVE_INTERVAL_S}; "
                    f"SET tcp_keepalives_count = {LOCK_KEEPALIVE_COUNT}; "
                    "SET application_name = 'gridhorn lanes'")
                self._conn = conn
                self.generation += 1
            return self._conn

    async def _value(self, sql: str, key: int) -> bool:
        conn = await self._connection()
        try:
            cur = await conn.execute(sql, (key,))
            row = await cur.fetchone()
        except psycopg.OperationalError:
            await self._drop(conn)
            raise
        return bool(row is not None and row[0])

    async def try_lock(self, key: int) -> bool:
        """Take the lock if no other session holds it (this session may hold it already:
        session locks are re-entrant; each take needs its `unlock`)."""
        return await self._value("SELECT pg_try_advisory_lock(%s)", key)

    async def unlock(self, key: int) -> None:
        """Give one take of the lock back (after a lost connection: nothing to give back)."""
        conn = self._conn
        if conn is None or conn.closed:
            return
        await self._value("SELECT pg_advisory_unlock(%s)", key)

    async def _drop(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._conn is conn:
            self._conn = None
        with contextlib.suppress(Exception):
            await conn.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
