"""Shared fixtures: a store on a temporary SQLite file, and the emulated Telegram world."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from storage.store import Store

if TYPE_CHECKING:
    from tests.support.harness import Harness


# Settings must come from the tests alone, never from a developer's environment or .env
# (a production token there would start a real bot): no .env file is read.
for _name in [n for n in os.environ if n.startswith("GRIDHORN_") and n != "GRIDHORN_CHROMIUM"]:
    del os.environ[_name]
os.environ["GRIDHORN_ENV_FILE"] = ""


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    opened = await Store.open_sqlite(str(tmp_path / "gridhorn.db"))
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
