"""Browser tests: Playwright's async API driving Debian's chromium (never `playwright install`,
which downloads a browser of its own).

One headless chromium for the whole session (`browser`) and a fresh context and page for each
test (`page`). The browser lives in the session's event loop, so every test here runs in that
loop, and so do the async fixtures they use (tests/conftest.py's `harness` too): a server in
a test's own loop would sit idle while the test awaits the browser. Both are arranged below;
write tests and fixtures as anywhere else.

Chromium: `GRIDHORN_CHROMIUM`, else `chromium` on PATH (`apt-get install chromium`;
scripts/test.sh installs it when it is missing and it may). Without it, or without the Python
package playwright, the browser tests skip saying how to get them, but fail under CI=true.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
import pytest_asyncio
from pytest_asyncio import is_async_test

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

HERE = Path(__file__).resolve().parent
#: root runs chromium without its sandbox; /dev/shm is small in containers
ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]
_missing: list[str] = []


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}


def missing(reason: str) -> NoReturn:
    """Skip the browser tests, or fail them on CI, where they must run."""
    if on_ci():
        pytest.fail(f"{reason} (CI=true: browser tests must run)", pytrace=False)
    if not _missing:
        _missing.append(reason)
    pytest.skip(reason)


def _has_playwright() -> bool:
    try:
        importlib.import_module("playwright.async_api")
    except ImportError:
        return False
    return True


PLAYWRIGHT = _has_playwright()


class _Unrunnable(pytest.Module):
    """A test file here without playwright to import: skipped (failed on CI), one line."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        missing("browser tests need the Python package playwright: bash scripts/setup.sh test")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    if PLAYWRIGHT or HERE not in module_path.parents:
        return None
    return _Unrunnable.from_parent(parent, path=module_path)


def chromium_path() -> str | None:
    return os.environ.get("GRIDHORN_CHROMIUM") or shutil.which("chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests here run in the session's loop, where the browser is."""
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if is_async_test(item) and HERE in Path(str(item.path)).parents:
            item.add_marker(marker, append=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest
                         ) -> Generator[None, Any, Any]:
    """An async fixture set up for a test here runs in the session's loop, the browser's
    (unless it names a loop scope itself); the same fixture elsewhere keeps its own loop."""
    func = getattr(fixturedef.func, "__func__", fixturedef.func)
    if (HERE not in Path(str(request.node.path)).parents
            or not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func))
            or getattr(func, "_loop_scope", None)):
        return (yield)
    unset = object()
    before = getattr(func, "_loop_scope", unset)
    func._loop_scope = "session"  # read by pytest-asyncio's own pytest_fixture_setup
    try:
        return (yield)
    finally:
        if before is unset:
            del func._loop_scope
        else:
            func._loop_scope = before


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _missing:
        terminalreporter.write_line(f"browser tests skipped: {_missing[0]}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    if not executable:
        missing("browser tests need Debian's chromium: apt-get install chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True,
                                                    args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh context (no cookies, storage or cache shared with another test) and its page."""
    context = await browser.new_context()
    # a wait that fails should fail well inside the browser tests' two minutes
    context.set_default_timeout(10_000)
    try:
        yield await context.new_page()
    finally:
        await context.close()
