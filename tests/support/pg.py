"""PostgreSQL for the store tests: a fresh database per test, copied from a migrated template.

The server: `GRIDHORN_TEST_POSTGRESQL` (a URL to its maintenance database), by default
`postgresql://postgres@127.0.0.1:5432/postgres`. Once per session the migrations run into
`gridhorn_tpl_<pid>`; a test takes a database `gridhorn_test_<pid>_<n>` made from it
(`CREATE DATABASE … TEMPLATE`, about half a second) or, much faster, one that a finished test
gave back, emptied to the template's state (every row deleted, the template's rows put back,
the ids restarted: milliseconds). All are this process's own, so parallel runs never meet;
all are dropped at the end, and those of a run that died are dropped by the next one.
Without a server the PostgreSQL tests skip saying how to run them; under CI=true they FAIL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("GRIDHORN_TEST_POSTGRESQL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
HOW = ("PostgreSQL store tests need a server: start one on 127.0.0.1:5432 (user postgres, "
       "trust auth) or set GRIDHORN_TEST_POSTGRESQL=postgresql://…/postgres")
_numbers = itertools.count(1)
_state: dict[str, Any] = {}


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the PostgreSQL tests (one line per reason in the summary), or fail them on CI."""
    if on_ci():
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(f"{HOW} ({reason})")


def skipped() -> str | None:
    """Why the PostgreSQL tests were skipped in this session (None: they ran)."""
    error = _state.get("error")
    return None if error is None or on_ci() else f"{HOW} ({error})"


def url_of(database: str) -> str:
    """The admin URL with another database."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + database))


def _admin() -> Any:
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)


def template() -> str:
    """The migrated template database of this session (made at first use)."""
    if "error" in _state:
        unavailable(_state["error"])
    if "template" in _state:
        return str(_state["template"])
    name = f"gridhorn_tpl_{os.getpid()}"
    try:
        with _admin() as conn:
            _drop_stale(conn)
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    except Exception as exc:  # no psycopg, no server, no rights: one reason
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        _state["error"] = f"no PostgreSQL at {urlsplit(ADMIN_URL).hostname}: {first}"
        unavailable(_state["error"])
    # a fresh loop in a thread: the test's own loop is running
    import concurrent.futures

    from storage.pg import PgDatabase

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, PgDatabase(url_of(name)).migrate()).result()
    _state["template"] = name
    return name


def _drop_stale(conn: Any) -> None:
    """The databases of earlier runs on this machine whose process is gone (killed)."""
    for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^gridhorn_(tpl|test)_[0-9]+'"
            ).fetchall():
        pid = int(name.split("_")[2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except PermissionError:
            pass  # alive, someone else's


def drop_template() -> None:
    """At the end of the session: the template and every database given back."""
    names = [*_free, *([_state.pop("template")] if "template" in _state else [])]
    _free.clear()
    if names:
        with _admin() as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_free: list[str] = []  # databases given back by finished tests


def create_database() -> str:
    """A new database copied from the template; its name."""
    source = template()
    name = f"gridhorn_test_{os.getpid()}_{next(_numbers)}"
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {source}")
    if "reset" not in _state:
        _state["reset"] = _reset_plan(name)
    return name


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _reset_plan(name: str) -> tuple[str, list[tuple[str, list[Any]]]] | None:
    """How to bring a used database back to the template's state: a script that deletes
    every row (foreign keys and triggers off: `session_replication_role`, a superuser's) and
    restarts the ids, and the template's own rows to put back. None: not allowed here."""
    import psycopg

    with psycopg.connect(url_of(name), autocommit=True, connect_timeout=3) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                           ).fetchone()
        if row is None or not row[0]:
            return None
        tables = [r[0] for r in conn.execute(
            """SELECT table_name FROM information_schema.tables
               WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                 AND table_name != 'schema_version'""")]
        identity = [r[0] for r in conn.execute(
            """SELECT table_name FROM information_schema.columns
               WHERE table_schema = current_schema() AND column_name = 'id'
                 AND is_identity = 'YES'""")]
        seeds = []
        for table in tables:
            cur = conn.execute(f"SELECT * FROM {table}")
            rows = cur.fetchall()
            if rows:
                columns = [c.name for c in cur.description or ()]
                seeds.append((f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                              f"({', '.join(['%s'] * len(columns))})", rows))
    script = ("SET LOCAL lock_timeout = '2s'; SET LOCAL session_replication_role = replica;"
              + "".join(f"DELETE FROM {t};" for t in tables)
              + "".join(f"ALTER TABLE {t} ALTER COLUMN id RESTART;" for t in identity))
    return script, seeds


def _reset(name: str) -> bool:
    """Empty a given-back database to the template's state; False: it could not be."""
    plan = _state.get("reset")
    if plan is None:
        return False
    script, seeds = plan
    import psycopg

    try:
        with psycopg.connect(url_of(name), autocommit=True, connect_timeout=3) as conn:
            # a session a test left behind (a replica's process, a leadership or lane-lock
            # connection closing late) would hold its advisory locks into the next test
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            with conn.transaction():
                conn.execute(script.encode())
                for insert, rows in seeds:
                    conn.cursor().executemany(insert, rows)
    except psycopg.Error:
        return False
    return True


def acquire() -> str:
    """A database in the template's state, this test's own: its name."""
    template()
    while _free:
        name = _free.pop()
        if _reset(name):
            return name
        drop_database(name)  # a test left it locked, or no superuser: a new one instead
    return create_database()


@asynccontextmanager
async def empty_url() -> AsyncIterator[str]:
    """The URL of a new database with no table at all (migrations to run), dropped after."""
    template()  # the server answers (or the test skips)
    name = f"gridhorn_test_{os.getpid()}_{next(_numbers)}"
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield url_of(name)
    finally:
        drop_database(name)


@asynccontextmanager
async def fresh_url() -> AsyncIterator[str]:
    """The URL of a migrated database in its first state, given back at the end."""
    name = acquire()
    try:
        yield url_of(name)
    finally:
        _free.append(name)
