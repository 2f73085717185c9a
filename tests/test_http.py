"""python-telegram-bot's transport on aiohttp: bodies, files, timeouts and errors as PTB expects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bot.http import AiohttpRequest

TOKEN = "123456:TEST"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict], asyncio.Event]]:
    """A tiny Bot API: records what each call carried; `/stall` never answers until told."""
    seen: list[dict] = []
    release = asyncio.Event()

    async def method(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        fields: dict[str, object] = {"_method": name, "_type": request.content_type}
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            async for part in reader:
                body = await part.read()
                fields[part.name] = (part.filename, bytes(body)) if part.filename \
                    else body.decode()
        else:
            fields.update(await request.post())
        seen.append(fields)
        if name == "getMe":
            return web.json_response({"ok": True, "result": {
                "id": 123456, "is_bot": True, "first_name": "G", "username": "g_bot"}})
        if name == "sendChatAction":
            await release.wait()
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", method)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/bot", seen, release
    finally:
        release.set()
        await runner.cleanup()


async def test_parameters_arrive_as_telegram_reads_them(server):
    base, seen, _ = server
    async with Bot(TOKEN, base_url=base, request=AiohttpRequest()) as bot:
        await bot.set_my_description("网格 & <b>", language_code="zh")
    call = seen[-1]
    assert call["_method"] == "setMyDescription"
    assert call["_type"] == "application/x-www-form-urlencoded"
    assert call["description"] == "网格 & <b>" and call["language_code"] == "zh"


async def test_a_file_goes_as_multipart_with_the_other_parameters(server):
    base, seen, _ = server
    async with Bot(TOKEN, base_url=base, request=AiohttpRequest()) as bot:
        await bot.set_chat_photo(-100123, photo=b"\x89PNG fake")
    call = seen[-1]
    assert call["_type"] == "multipart/form-data"
    assert call["chat_id"] == "-100123"
    filename, content = call["photo"]  # type: ignore[misc]
    assert content == b"\x89PNG fake" and filename


async def test_no_answer_in_time_is_timed_out(server):
    base, _, _ = server
    request = AiohttpRequest(read_timeout=0.2, write_timeout=0.0)
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        with pytest.raises(TimedOut):
            await bot.send_chat_action(1, "typing")


async def test_nobody_listening_is_a_network_error():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        assert not isinstance(caught.value, TimedOut)
    finally:
        await request.shutdown()


async def test_a_request_before_initialize_says_so():
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/x", "POST")


async def test_a_proxy_from_the_environment_is_used(monkeypatch):
    """Where Telegram is reached through a proxy (HTTPS_PROXY/HTTP_PROXY), as with httpx."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"ok": True, "result": {
            "id": 123456, "is_bot": True, "first_name": "G", "username": "g_bot"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        async with Bot(TOKEN, base_url="http://api.telegram.invalid/bot",
                       request=AiohttpRequest()) as bot:
            assert bot.username == "g_bot"
    finally:
        await runner.cleanup()
    assert seen and seen[0].startswith("http://api.telegram.invalid/bot")
