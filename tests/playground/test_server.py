"""The page server over real HTTP: loopback only, the CSP on every answer, the JSON API, and
an event stream that resumes with Last-Event-ID without losing or doubling an event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from playground.server import CSP, PageServer, _guard
from playground.session import Playground

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def served() -> AsyncIterator[tuple[Playground, str, aiohttp.ClientSession]]:
    demo = Playground(lang="zh-Hant", flood=None)
    await demo.start()
    server = PageServer(demo)
    try:
        url = await server.start(0)
        async with aiohttp.ClientSession() as http:
            yield demo, url, http
    finally:
        await server.stop()
        await demo.stop()


async def read_events(http: aiohttp.ClientSession, url: str, *, after: int | None = None,
                      last_event_id: int | None = None, until: Any) -> list[dict[str, Any]]:
    """Read the stream until `until(events)` holds; each event as {id, type, data}."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    query = f"?after={after}" if after is not None else ""
    events: list[dict[str, Any]] = []
    async with http.get(f"{url}api/events{query}", headers=headers,
                        timeout=aiohttp.ClientTimeout(total=20)) as response:
        assert response.headers["Content-Security-Policy"] == CSP
        current: dict[str, Any] = {}
        async for raw in response.content:
            line = raw.decode("utf-8").rstrip("\n")
            if not line:
                if "id" in current:
                    events.append(current)
                    if until(events):
                        return events
                current = {}
            elif line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["type"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
    return events


async def test_the_page_and_its_api_carry_the_csp(served) -> None:
    demo, url, http = served
    for path in ("", "static/app.js", "api/world", "api/log"):
        async with http.get(url + path) as response:
            assert response.status == 200, path
            assert response.headers["Content-Security-Policy"] == CSP
    async with http.get(url + "static/../session.py") as response:
        assert response.status == 404
    async with http.get(url + "api/world?lang=en") as response:
        world = await response.json()
    assert world["strings"]["playground.title"] and world["lang"] == "en"
    assert world["columns"] == [p.user.id for p in
                                (demo.world.person(k) for k in
                                 ("resident", "head", "worker", "volunteer1"))]


async def test_other_addresses_are_refused() -> None:
    async def handler(request: Any) -> Any:
        raise AssertionError("must not be reached")

    request = make_mocked_request("GET", "/api/world",
                                  transport=_Transport(("192.168.1.20", 50000)))
    response = await _guard(request, handler)
    assert response.status == 403
    assert response.headers["Content-Security-Policy"] == CSP


class _Transport:
    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def is_closing(self) -> bool:
        return False


async def test_a_dropped_stream_resumes_without_loss_or_doubles(served) -> None:
    demo, url, http = served
    async with http.get(url + "api/world") as response:
        start = (await response.json())["last_event_id"]

    async def send(text: str) -> None:
        async with http.post(url + "api/send", json={
                "user_id": demo.world.person("resident").user.id,
                "chat_id": demo.world.person("resident").user.id, "text": text}) as response:
            assert response.status == 200, await response.text()

    await send("第一條意見：路燈壞了")
    first = await read_events(http, url, after=start,
                              until=lambda evs: any(e["type"] == "message"
                                                    and e["data"]["from"]["bot"] for e in evs))
    # the connection dropped after some events; meanwhile the resident writes again
    await send("第二條意見：垃圾沒有清運")
    seen = first[-1]["id"]
    rest = await read_events(http, url, last_event_id=seen,
                             until=lambda evs: evs[-1]["id"] == demo.feed.last_id)
    ids = [e["id"] for e in first + rest]
    assert ids == list(range(start + 1, demo.feed.last_id + 1))  # every one, once, in order
    texts = [e["data"]["text"] for e in first + rest if e["type"] == "message"]
    assert "第二條意見：垃圾沒有清運" in texts


async def test_a_step_with_bad_input_is_answered_in_words(served) -> None:
    demo, url, http = served
    async with http.post(url + "api/press", json={"user_id": 1, "chat_id": 1,
                                                   "message_id": 1, "data": "x"}) as response:
        assert response.status == 400
        assert "error" in await response.json()
    async with http.post(url + "api/send", data=b"not json") as response:
        assert response.status == 400
    assert demo.steps == []
