"""PostgreSQL for the store tests: a fresh database per test, copied from a migrated template.

The server: `GRIDHORN_TEST_POSTGRESQL` (a URL to its maintenance database), by default
`postgresql://postgres@127.0.0.1:5432/postgres`. Once per session the migrations run into
`gridhorn_tpl_<pid>`; each test then gets `CREATE DATABASE gridhorn_test_<pid>_<n> TEMPLATE
…` (milliseconds) and drops it after, so parallel runs never meet. Without a server the
PostgreSQL tests skip saying how to run them; under CI=true they fail instead.
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
    pytest.skip(HOW)


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
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    except Exception as exc:  # no psycopg, no server, no rights: one reason
        _state["error"] = f"no PostgreSQL at {urlsplit(ADMIN_URL).netloc}: {exc}".strip()
        unavailable(_state["error"])
    # a fresh loop in a thread: the test's own loop is running
    import concurrent.futures

    from storage.pg import PgDatabase

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, PgDatabase(url_of(name)).migrate()).result()
    _state["template"] = name
    return name


def drop_template() -> None:
    name = _state.pop("template", None)
    if name is not None:
        with _admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def create_database() -> str:
    """A new database copied from the template; its name."""
    source = template()
    name = f"gridhorn_test_{os.getpid()}_{next(_numbers)}"
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {source}")
    return name


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@asynccontextmanager
async def fresh_url() -> AsyncIterator[str]:
    """The URL of a fresh migrated database, dropped at the end."""
    name = create_database()
    try:
        yield url_of(name)
    finally:
        drop_database(name)
