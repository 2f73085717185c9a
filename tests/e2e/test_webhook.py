"""Webhook intake (SPEC §16) end to end: the real bot (`build_runtime(..., webhook=True)`)
and the emulator posting updates to it, on the SQLite store."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from functools import partial
from typing import Any

import aiohttp
import pytest

import tests.support.harness as harness_module
from bot.app import build_runtime
from bot.intake import ALLOWED_UPDATES
from bot.settings import SettingsError
from bot.webhook import SECRET_HEADER
from emulator.balancer import free_port
from emulator.webhook import WebhookConfig
from tests.e2e.test_durability import ROOT
from tests.e2e.test_tickets import World
from tests.support.env import child_env
from tests.support.harness import TOKEN
from tests.support.texts import duration, shown

pytestmark = pytest.mark.asyncio
SECRET = "test_webhook-SECRET_0123"



@pytest.fixture
def hooked(harness, monkeypatch):
    """The harness, its bot started in webhook mode; the emulator retries fast."""
    monkeypatch.setattr(harness_module, "build_runtime", partial(build_runtime, webhook=True))
    harness.emu.webhook_retry_delay = 0.02
    harness.emu.webhook_retry_cap = 0.1
    port = free_port()
    harness.webhook = {"webhook_url": f"http://127.0.0.1:{port}/telegram/hook",
                       "webhook_secret": SECRET, "listen": f"127.0.0.1:{port}"}
    return harness


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


async def post(url: str, body: Any, secret: str | None) -> int:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with aiohttp.ClientSession() as session, \
            session.post(url, data=body, headers=headers) as response:
        return response.status


async def test_an_opinion_flows_through_webhook_delivery(hooked):
    h = hooked
    w = World(h)
    await w.setup(**h.webhook)
    await w.submit()
    day = duration("zh-Hans", 24 * 3600)
    receipt = shown("zh-Hans", "ticket.receipt", id=1, hours=day)
    assert [text for text in h.texts(w.resident.id) if "#1" in text][-1] == receipt
    assert w.card(w.grid_chat.id)  # routed to the grid's staff chat
    # every update came by webhook: none asked for, the webhook never deleted
    stats = h.emu.stats
    assert stats.by_method["getUpdates"] == 0 and stats.by_method["deleteWebhook"] == 0
    assert stats.webhook_delivered >= 10 and stats.webhook_failures == 0
    # set at start with the secret and the update types polling asks for, nothing dropped
    hook = h.emu.webhook
    assert hook is not None and hook.url == h.webhook["webhook_url"]
    assert hook.secret_token == SECRET
    assert hook.allowed_updates == list(ALLOWED_UPDATES)
    assert stats.by_method["setWebhook"] == 1


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_stored(hooked):
    h = hooked
    await h.start_bot(**h.webhook)
    url = h.webhook["webhook_url"]
    update = {"update_id": 777_000, "message": {
        "message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "Mallory"}, "text": "/start"}}
    body = json_bytes(update)
    assert await post(url, body, "wrong") == 401
    assert await post(url, body, SECRET + "x") == 401
    assert await post(url, body, None) == 401
    assert await post(url, b"{not json", SECRET) == 400
    assert await post(url, json_bytes({"message": {}}), SECRET) == 400  # no update_id
    assert await h.store.inbox.pending() == []
    assert (await h.store.inbox.next_offset() or 0) < 777_000  # never stored, even handled
    assert h.emu.all_messages() == []


async def test_the_same_update_delivered_twice_is_handled_once(hooked):
    h = hooked
    emu = h.emu
    await h.start_bot(**h.webhook)
    user = emu.add_user(first_name="Li", language_code="en")
    emu.send_text(user, "/start")
    update_id = emu.pending_updates()[-1]["update_id"]
    emu.deliver_twice(update_id)
    await emu.wait_until(lambda: emu.stats.webhook_attempts == 2, timeout=10)
    await h.settle()
    assert emu.stats.webhook_delivered == 1 and emu.stats.webhook_failures == 0
    assert [m.text for m in emu.messages(user.id)] == [
        shown("en", "start.greeting", name="Li")]
    assert await h.store.inbox.pending() == []


async def test_a_store_failure_answers_503_and_the_retried_update_is_handled_once(hooked):
    h = hooked
    emu = h.emu
    runtime = await h.start_bot(**h.webhook)
    inbox = runtime.store.inbox
    store_updates = inbox.store
    failing = True

    async def broken(raws: list[dict[str, Any]], **how: Any) -> set[int]:
        if failing:
            raise OSError("disk I/O error")
        return await store_updates(raws, **how)

    inbox.store = broken  # type: ignore[method-assign]
    user = emu.add_user(first_name="Li", language_code="en")
    emu.send_text(user, "/start")
    await emu.wait_until(lambda: emu.stats.webhook_failures >= 3, timeout=10)
    assert emu.webhook is not None
    assert emu.webhook.last_error_message == \
        "Wrong response from the webhook: 503 Service Unavailable"
    assert emu.messages(user.id) == [] and len(emu.pending_updates()) == 1
    failing = False  # the store is back: the next retry is taken and handled
    await emu.wait_until(lambda: emu.stats.webhook_delivered == 1, timeout=10)
    await h.settle()
    assert [m.text for m in emu.messages(user.id)] == [
        shown("en", "start.greeting", name="Li")]
    assert await h.store.inbox.pending() == []


async def test_polling_mode_deletes_a_webhook_left_set_and_keeps_its_updates(harness):
    h = harness
    emu = h.emu
    # a former `run --webhook` whose server is gone; an update waits for it
    emu.set_webhook(WebhookConfig(url=f"http://127.0.0.1:{free_port()}/gone"))
    user = emu.add_user(first_name="Li", language_code="en")
    emu.send_text(user, "/start")
    await h.start_bot()
    await emu.wait_for_message(user.id, timeout=10)
    await h.settle()
    assert emu.webhook is None and emu.stats.by_method["deleteWebhook"] == 1
    assert [m.text for m in emu.messages(user.id)] == [
        shown("en", "start.greeting", name="Li")]


async def test_a_listen_address_in_use_is_named_in_one_line(hooked):
    h = hooked
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError) as caught:
            await h.start_bot(**{**h.webhook, "listen": f"127.0.0.1:{port}"})
    assert str(caught.value).startswith(f"GRIDHORN_LISTEN: cannot listen on 127.0.0.1:{port}: ")
    assert h.emu.stats.by_method["setWebhook"] == 0  # Telegram is not sent to a dead address


async def test_updates_waiting_before_the_webhook_is_set_are_not_dropped(hooked):
    h = hooked
    emu = h.emu
    user = emu.add_user(first_name="Li", language_code="en")
    emu.send_text(user, "/start")  # queued while no bot ran
    await h.start_bot(**h.webhook)
    await emu.wait_for_message(user.id, timeout=10)
    await h.settle()
    assert [m.text for m in emu.messages(user.id)] == [
        shown("en", "start.greeting", name="Li")]


async def test_gridhorn_run_webhook_answers_and_stops_cleanly(hooked, tmp_path):
    """The command as an operator starts it: `gridhorn run --webhook`."""
    h = hooked
    env = child_env(
        GRIDHORN_BOT_TOKEN=TOKEN, GRIDHORN_API_BASE_URL=h.emu.base_url,
        GRIDHORN_DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}", GRIDHORN_QUIET_HOURS="",
        GRIDHORN_WEBHOOK_URL=h.webhook["webhook_url"],
        GRIDHORN_WEBHOOK_SECRET=SECRET, GRIDHORN_LISTEN=h.webhook["listen"])
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--webhook", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        user = h.emu.add_user(first_name="Li", language_code="en")
        h.emu.send_text(user, "/start")
        reply = await h.emu.wait_for_message(user.id, timeout=30)
        assert reply.text == shown("en", "start.greeting", name="Li")
        assert h.emu.webhook is not None and h.emu.stats.by_method["getUpdates"] == 0
    finally:
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0
