"""The browser stack works: a page served with the playground's Content-Security-Policy runs
its external script and refuses an inline one (the real playground tests build on this)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

CSP = "default-src 'self'"
FILES = {
    "/": ("text/html", """<!doctype html>
<html><head><meta charset="utf-8"><title>smoke</title>
<script src="/app.js" defer></script></head>
<body><button id="go">Go</button><p id="out">waiting</p></body></html>
"""),
    "/app.js": ("text/javascript", """
document.body.dataset.external = "ran";
document.getElementById("go").addEventListener("click", () => {
  document.getElementById("out").textContent = "clicked";
});
"""),
    "/inline": ("text/html", """<!doctype html>
<html><head><meta charset="utf-8"><title>inline</title></head>
<body><p id="out">waiting</p>
<button id="go">Go</button>
<script>document.getElementById("out").textContent = "inline ran";</script>
<script src="/app.js"></script></body></html>
"""),
}


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """A tiny static site on 127.0.0.1, every response with the CSP; its base URL."""

    async def serve(request: web.Request) -> web.Response:
        if request.path not in FILES:
            raise web.HTTPNotFound()
        content_type, body = FILES[request.path]
        return web.Response(text=body, content_type=content_type,
                            headers={"Content-Security-Policy": CSP})

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_a_click_runs_the_external_script(page: Page, site: str) -> None:
    await page.goto(f"{site}/")
    await expect(page.locator("#out")).to_have_text("waiting")
    await page.click("#go")
    await expect(page.locator("#out")).to_have_text("clicked")


async def test_the_csp_blocks_an_inline_script(page: Page, site: str) -> None:
    async with page.expect_console_message(
            lambda m: "Content Security Policy" in m.text) as violation:
        await page.goto(f"{site}/inline")
    assert "inline script" in (await violation.value).text
    # the external script after it ran (the page works), the inline one did not
    await expect(page.locator("body")).to_have_attribute("data-external", "ran")
    await expect(page.locator("#out")).to_have_text("waiting")
