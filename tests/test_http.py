"""python-telegram-bot's transport on aiohttp, in the bot's process or in its HTTP worker
process: bodies, files, timeouts and errors as PTB expects; the worker's life."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot import rawapi
from bot.http import AiohttpRequest
from bot.httpworker import WorkerRequest

TOKEN = "123456:TEST"


@pytest.fixture(params=[AiohttpRequest, WorkerRequest], ids=["in-process", "http-worker"])
def transport(request):
    """Makes the transport under test; with the worker, its calls must have been the child's
    (a silent fall-back to the bot's process would pass every test of the behaviour)."""
    made: list[AiohttpRequest] = []

    def make(**kwargs):
        made.append(request.param(**kwargs))
        return made[-1]

    yield make
    if request.param is WorkerRequest and "before_initialize" not in request.node.name:
        assert any(r.worker_calls for r in made), "no call was made by the HTTP worker"


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
            if request.content_type == "application/json":
                fields.update(await request.json())
            else:
                fields.update(await request.post())
        seen.append(fields)
        if name == "getMe":
            return web.json_response({"ok": True, "result": {
                "id": 123456, "is_bot": True, "first_name": "G", "username": "g_bot"}})
        if name == "sendChatAction":
            await release.wait()
        if name == "getChat":
            return web.Response(text="<html>502 Bad Gateway</html>", status=200)
        if name == "banChatMember":
            return web.json_response({"ok": False, "error_code": 429, "description":
                                      "Too Many Requests: retry after 7",
                                      "parameters": {"retry_after": 7}}, status=429)
        if name == "sendMessage" and fields.get("chat_id") in (404, "404"):
            return web.json_response({"ok": False, "error_code": 403,
                                      "description": "Forbidden: bot was blocked by the user"},
                                     status=403)
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


async def test_parameters_arrive_as_telegram_reads_them(server, transport):
    base, seen, _ = server
    async with Bot(TOKEN, base_url=base, request=transport()) as bot:
        await bot.set_my_description("网格 & <b>", language_code="zh")
    call = seen[-1]
    assert call["_method"] == "setMyDescription"
    assert call["_type"] == "application/x-www-form-urlencoded"
    assert call["description"] == "网格 & <b>" and call["language_code"] == "zh"


async def test_a_file_goes_as_multipart_with_the_other_parameters(server, transport):
    base, seen, _ = server
    async with Bot(TOKEN, base_url=base, request=transport()) as bot:
        await bot.set_chat_photo(-100123, photo=b"\x89PNG fake")
    call = seen[-1]
    assert call["_type"] == "multipart/form-data"
    assert call["chat_id"] == "-100123"
    filename, content = call["photo"]  # type: ignore[misc]
    assert content == b"\x89PNG fake" and filename


async def test_no_answer_in_time_is_timed_out(server, transport):
    base, _, _ = server
    request = transport(read_timeout=0.2, write_timeout=0.0)
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        with pytest.raises(TimedOut):
            async with asyncio.timeout(5):  # a timeout not honoured fails, not hangs
                await bot.send_chat_action(1, "typing")


async def test_nobody_listening_is_a_network_error(transport):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = transport()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
        assert not isinstance(caught.value, TimedOut)
    finally:
        await request.shutdown()


async def test_a_request_before_initialize_says_so(transport):
    with pytest.raises(RuntimeError, match="not initialized"):
        await transport().do_request("http://127.0.0.1:9/x", "POST")


async def test_a_proxy_from_the_environment_is_used(monkeypatch, transport):
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
                       request=transport()) as bot:
            assert bot.username == "g_bot"
    finally:
        await runner.cleanup()
    assert seen and seen[0].startswith("http://api.telegram.invalid/bot")


async def test_telegrams_refusals_and_json_bodies_come_back_as_ptb_raises_them(server, transport):
    base, seen, _ = server
    async with Bot(TOKEN, base_url=base, request=transport()) as bot:
        with pytest.raises(RetryAfter) as flood:
            await bot.ban_chat_member(-100123, 5)
        assert flood.value.retry_after == dt.timedelta(seconds=7)
        with pytest.raises(Forbidden, match="blocked"):
            await rawapi.call(bot, "sendMessage", {"chat_id": 404, "text": "回执"})
        assert await rawapi.call(bot, "sendMessage", {"chat_id": 5, "text": "回执 <b>#1</b>"})
    assert seen[-1]["_type"] == "application/json" and seen[-1]["chat_id"] == 5
    assert seen[-1]["text"] == "回执 <b>#1</b>"


async def test_an_answer_that_is_not_json_is_ptbs_invalid_server_response(server, transport):
    base, _, _ = server
    async with Bot(TOKEN, base_url=base, request=transport()) as bot:
        with pytest.raises(TelegramError, match="Invalid server response"):
            await bot.get_chat(1)


# ---- the HTTP worker's life -------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _until(condition, timeout: float = 10.0) -> None:
    """Wait for a condition of another process (no event to wait on), with a deadline."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_the_calls_are_made_by_the_child_and_a_dead_child_is_replaced(server):
    base, seen, release = server
    request = WorkerRequest()
    request.RESTART_AFTER_S = 0.0
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        first = request.worker_pid
        assert first is not None and first != os.getpid()
        stalled = asyncio.create_task(bot.send_chat_action(1, "typing"))
        await _until(lambda: seen and seen[-1]["_method"] == "sendChatAction")
        os.kill(first, signal.SIGKILL)
        with pytest.raises(NetworkError, match="worker exited"):
            await stalled  # it was on its way in the child: maybe delivered, not confirmed
        release.set()
        await _until(lambda: request.worker_pid is not None)  # started in the background
        await bot.set_my_description("again")  # the new child makes it
        second = request.worker_pid
        assert second is not None and second != first
        assert seen[-1]["description"] == "again"
        assert request.worker_calls == 3
    assert not _alive(second)  # shut down with the bot


async def test_a_child_that_cannot_start_leaves_the_calls_to_the_bot(server, caplog):
    base, seen, _ = server
    request = WorkerRequest()
    request.COMMAND = (sys.executable, "-c", "import sys; sys.exit(3)")
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        await bot.set_my_description("here")
        assert request.worker_pid is None and request.worker_calls == 0
    assert seen[-1]["description"] == "here"
    assert "the HTTP worker did not start" in caplog.text


async def test_the_child_ends_with_the_bot_even_when_the_bot_is_killed(tmp_path):
    script = tmp_path / "a_bot.py"
    script.write_text(
        "import asyncio, sys\n"
        "from bot.httpworker import WorkerRequest\n"
        "async def main():\n"
        "    request = WorkerRequest()\n"
        "    await request.initialize()\n"
        "    print(request.worker_pid, flush=True)\n"
        "    await asyncio.Event().wait()\n"
        "asyncio.run(main())\n")
    bot = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert bot.stdout is not None
    child = int((await asyncio.wait_for(bot.stdout.readline(), 30)).decode())
    assert _alive(child)
    bot.kill()
    await bot.wait()
    await _until(lambda: not _alive(child))


async def test_ctrl_c_to_the_process_group_leaves_the_child_to_finish_its_calls(server):
    base, seen, release = server
    request = WorkerRequest()
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        async with asyncio.timeout(30):  # the child starts in the background: wait till it serves
            while request.worker_calls == 0:
                await bot.get_me()
        served = request.worker_calls
        stalled = asyncio.create_task(bot.send_chat_action(1, "typing"))
        await _until(lambda: seen and seen[-1]["_method"] == "sendChatAction")
        assert request.worker_calls == served + 1  # the stalled call is the child's
        assert request.worker_pid is not None
        os.kill(request.worker_pid, signal.SIGINT)
        os.kill(request.worker_pid, signal.SIGTERM)
        release.set()
        assert await stalled is True


def _children() -> list[int]:
    """This process's live HTTP workers."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and stat[0] != "Z" and b"bot.httpworker" in command:
            found.append(int(entry))
    return found


async def test_a_child_that_stops_answering_times_out_and_is_replaced(server):
    base, seen, release = server
    request = WorkerRequest(read_timeout=0.2, write_timeout=0.0, connect_timeout=0.2,
                            pool_timeout=0.1)
    request.WORKER_MARGIN_S = 0.3
    request.RESTART_AFTER_S = 0.0
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        wedged = request.worker_pid
        os.kill(wedged, signal.SIGSTOP)  # alive, pipes open, answering nothing
        with pytest.raises(TimedOut, match="did not answer"):
            async with asyncio.timeout(5):
                await bot.set_my_description("lost")
        await _until(lambda: request.worker_pid not in (None, wedged))
        await bot.set_my_description("answered")
    assert seen[-1]["description"] == "answered" and not _alive(wedged)


async def test_no_call_waits_for_a_child_that_is_slow_to_start(server):
    base, seen, _ = server
    request = WorkerRequest()
    request.RESTART_AFTER_S = 0.0
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        request.COMMAND = (sys.executable, "-c", "import time; time.sleep(60)")  # never ready
        os.kill(request.worker_pid, signal.SIGKILL)
        await _until(lambda: request.worker_pid is None)
        async with asyncio.timeout(5):  # START_TIMEOUT_S is 15 s
            await asyncio.gather(*(bot.set_my_description(f"d{i}") for i in range(20)))
        assert request.worker_calls == 1  # getMe; the 20 were made here meanwhile
    assert len([c for c in seen if c["_method"] == "setMyDescription"]) == 20
    assert not _children()


async def test_a_start_cancelled_by_its_caller_leaves_no_child():
    request = WorkerRequest()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # the child takes longer to import
            await request.initialize()
    await request.shutdown()
    await _until(lambda: not _children())


async def test_shutdown_while_a_child_starts_or_a_call_comes_in_leaves_no_child(server):
    base, _, release = server
    request = WorkerRequest()
    request.RESTART_AFTER_S = 0.0
    async with Bot(TOKEN, base_url=base, request=request) as bot:
        stalled = asyncio.create_task(bot.send_chat_action(1, "typing"))  # on its way
        await _until(lambda: request.worker_calls == 2)
        os.kill(request.worker_pid, signal.SIGKILL)  # a restart begins with the next call
        with pytest.raises(NetworkError):
            await stalled
        restarting = asyncio.create_task(bot.set_my_description("during the restart"))
        await asyncio.sleep(0)  # the call has started the new child's start
        closing = asyncio.create_task(request.shutdown())
        late = asyncio.create_task(bot.set_my_description("while shutting down"))
        release.set()
        await closing
        await asyncio.gather(restarting, late, return_exceptions=True)
    assert not _children()


#: A child that takes calls like the real one but never answers sendChatAction, answers
#: setMyDescription after `sys.argv[1]` seconds and the rest at once (getMe's answer serves).
_SLOW_CHILD = """
import os, sys, threading
from bot.httpworker import _ANSWER, _CALL_HEAD, _OK, _READY, _Frames
out = os.fdopen(1, "wb", buffering=0)
lock = threading.Lock()
ME = b'{"ok": true, "result": {"id": 1, "is_bot": true, "first_name": "G", "username": "g"}}'
def answer(ident, body=b'{"ok": true, "result": true}'):
    with lock:
        out.write(_ANSWER.pack(_ANSWER.size - 4 + len(body), ident, _OK, 200) + body)
answer(_READY)
frames = _Frames()
while data := os.read(0, 65536):
    for frame in frames.feed(data):
        ident, *_, url_length = _CALL_HEAD.unpack_from(frame)
        url = frame[_CALL_HEAD.size:_CALL_HEAD.size + url_length]
        if b"setMyDescription" in url:
            threading.Timer(float(sys.argv[1]), answer, (ident,)).start()
        elif b"getMe" in url:
            answer(ident, ME)
"""


async def test_a_call_that_times_out_fails_alone_and_the_childs_other_calls_get_their_answers():
    """SPEC §4: only a call whose outcome is unknown may be sent twice. One call timing out in
    the child must not fail the calls that the child still answers (the outbox would resend
    them though Telegram had them); the wedged child is replaced once it holds none."""
    request = WorkerRequest(read_timeout=0.2, write_timeout=0.0, connect_timeout=0.2,
                            pool_timeout=0.1)
    request.WORKER_MARGIN_S = 0.3
    request.RESTART_AFTER_S = 0.0
    request.COMMAND = (sys.executable, "-c", _SLOW_CHILD, "0.9")
    async with Bot(TOKEN, base_url="http://127.0.0.1:9/bot", request=request) as bot:
        child = request.worker_pid
        lost = asyncio.create_task(bot.send_chat_action(1, "typing"))  # never answered
        await asyncio.sleep(0)
        answered = asyncio.create_task(bot.set_my_description("slow", read_timeout=5))
        with pytest.raises(TimedOut, match="did not answer"):
            await lost
        assert not answered.done()
        assert await answered is True
        await _until(lambda: not _alive(child))
        await _until(lambda: request.worker_pid not in (None, child))
    assert not _children()


def test_the_child_starts_on_uvloop_too():
    """GRIDHORN_EVENT_LOOP=uvloop: uvloop's subprocess_exec knows fewer options than
    asyncio's (a found bug: the child never started, every call fell back to the bot)."""
    from bot import eventloop

    async def main() -> tuple[int | None, int]:
        request = WorkerRequest()
        await request.initialize()
        try:
            return request.worker_pid, os.getpid()
        finally:
            await request.shutdown()

    child, parent = eventloop.run(main(), "uvloop")
    assert child is not None and child != parent
