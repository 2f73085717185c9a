"""Shared fixtures: a store over each engine (a temporary SQLite file; a fresh PostgreSQL
database, tests/support/pg.py), and the emulated Telegram world.

`store` runs each test that asks for it once per engine (`[sqlite]`, `[postgresql]`); a test
of SQLite's own mechanics is marked `sqlite_only` and runs over SQLite alone.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from storage.store import Store

if TYPE_CHECKING:
    from tests.support.harness import Harness


# Settings must come from the tests alone, never from a developer's environment or .env
# (a production token there would start a real bot): no .env file is read.
_KEPT = {"GRIDHORN_CHROMIUM", "GRIDHORN_TEST_POSTGRESQL"}  # where the test tools are
for _name in [n for n in os.environ if n.startswith("GRIDHORN_") and n not in _KEPT]:
    del os.environ[_name]
os.environ["GRIDHORN_ENV_FILE"] = ""


ENGINES = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: a test of SQLite's own mechanics (not run over PostgreSQL)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if item.get_closest_marker("sqlite_only")
               and _engine_of(item) == "postgresql"]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in set(dropped)]


def _engine_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("engine") if callspec is not None else None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.support import pg

    reason = pg.skipped()
    if reason is not None:
        terminalreporter.write_line(f"PostgreSQL tests skipped: {reason}")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def _postgresql_template() -> Iterator[None]:
    yield
    from tests.support import pg

    pg.drop_template()


@pytest.fixture
async def database_url(engine: str, tmp_path) -> AsyncIterator[str]:
    """A fresh, migrated database of the engine: its GRIDHORN_DATABASE_URL."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'gridhorn.db'}"
        return
    from tests.support import pg

    async with pg.fresh_url() as url:
        yield url


@pytest.fixture
async def other_database_url(engine: str, tmp_path) -> AsyncIterator[str]:
    """A second fresh database of the same engine (an export imported elsewhere)."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    from tests.support import pg

    async with pg.fresh_url() as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def harness(tmp_path) -> AsyncIterator[Harness]:
    """An emulator on 127.0.0.1 and a helper to start the real bot against it."""
    from tests.support.harness import Harness

    async with Harness(tmp_path) as h:
        yield h
