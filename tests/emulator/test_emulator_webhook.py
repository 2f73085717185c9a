"""The emulator's webhooks, like Telegram's: setWebhook / deleteWebhook / getWebhookInfo,
getUpdates refused while a webhook is set, and updates POSTed to the URL in order, one chat's
one after another, retried with a growing delay until the receiver answers 2xx."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, Conflict

import emulator.webhook as emu_webhook
from emulator import BotAPIEmulator

TOKEN = "123456:TEST"
SECRET = "s3cret_-token"


class Receiver:
    """A webhook endpoint: records each POST; answers with `statuses` first, then 200; a
    POST of a held chat waits until it is released."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.posts: list[tuple[dict[str, Any], str | None]] = []
        self.statuses: list[int] = []
        self.held: dict[int, asyncio.Event] = {}  # chat id → released
        self.inside: set[int] = set()  # update ids being answered
        self.most_inside = 0
        self.changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ids(self) -> list[int]:
        return [update["update_id"] for update, _ in self.posts]

    async def wait(self, condition: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    async def _receive(self, request: web.Request) -> web.Response:
        update = json.loads(await request.read())
        self.posts.append((update, request.headers.get(emu_webhook.SECRET_HEADER)))
        self.inside.add(update["update_id"])
        self.most_inside = max(self.most_inside, len(self.inside))
        self.changed.set()
        try:
            chat = (update.get("message") or {}).get("chat", {}).get("id")
            if chat in self.held:
                await self.held[chat].wait()
            status = self.statuses.pop(0) if self.statuses else 200
            return web.Response(status=status)
        finally:
            self.inside.discard(update["update_id"])
            self.changed.set()


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    emulator = BotAPIEmulator(token=TOKEN, flood=None)
    emulator.webhook_retry_delay = 0.01
    emulator.webhook_retry_cap = 0.04
    await emulator.start(host="127.0.0.1", port=0)
    try:
        yield emulator
    finally:
        await emulator.stop()
    assert not emulator.internal_errors


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=emu.base_url, base_file_url=emu.base_file_url) as telegram:
        yield telegram


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


async def test_set_webhook_is_told_by_get_webhook_info_and_refuses_get_updates(
        emu: BotAPIEmulator, bot: Bot, receiver: Receiver) -> None:
    info = await bot.get_webhook_info()
    assert info.url == "" and info.pending_update_count == 0
    assert await bot.set_webhook(receiver.url, secret_token=SECRET, max_connections=7,
                                 allowed_updates=["message", "callback_query"])
    info = await bot.get_webhook_info()
    assert (info.url, info.max_connections, info.allowed_updates) == (
        receiver.url, 7, ("message", "callback_query"))
    assert info.last_error_date is None
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active; "
                                       "use deleteWebhook to delete the webhook first"):
        await bot.get_updates(timeout=0)

    # deleted: the updates queue for getUpdates again, none posted
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    user = emu.add_user("Li")
    emu.send_text(user, "after")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates] == ["after"]
    assert receiver.posts == []


async def test_a_waiting_get_updates_ends_with_409_when_a_webhook_is_set(
        emu: BotAPIEmulator, bot: Bot, receiver: Receiver) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await emu.wait_until(lambda: emu.waiting_polls == 1)
    await bot.set_webhook(receiver.url)
    with pytest.raises(Conflict, match="webhook is active"):
        await poll


@pytest.mark.parametrize("url, secret, reason", [
    ("https://example.org/hook", None, "the emulator posts only to 127.0.0.1"),
    ("ftp://127.0.0.1/hook", None, "An HTTPS URL must be provided"),
    ("http://127.0.0.1:9/hook", "no spaces", "secret token contains unallowed characters"),
    ("http://127.0.0.1:9/hook", "x" * 257, "secret token contains unallowed characters"),
])
async def test_set_webhook_refuses_what_telegram_refuses(
        bot: Bot, url: str, secret: str | None, reason: str) -> None:
    with pytest.raises(BadRequest, match="(?i)" + reason):
        await bot.set_webhook(url, secret_token=secret)


async def test_updates_are_posted_in_order_with_the_secret(
        emu: BotAPIEmulator, bot: Bot, receiver: Receiver) -> None:
    user = emu.add_user("Li")
    first = emu.send_text(user, "queued before")
    await bot.set_webhook(receiver.url, secret_token=SECRET)
    emu.send_text(user, "one")
    emu.send_text(user, "two")
    await emu.wait_until(lambda: emu.stats.webhook_delivered == 3)
    assert [u["message"]["text"] for u, _ in receiver.posts] == ["queued before", "one", "two"]
    assert receiver.ids() == sorted(receiver.ids())
    assert receiver.posts[0][0]["message"]["message_id"] == first.message_id
    assert {secret for _, secret in receiver.posts} == {SECRET}
    assert emu.pending_updates() == []
    assert (await bot.get_webhook_info()).pending_update_count == 0
    assert (emu.stats.webhook_attempts, emu.stats.webhook_failures) == (3, 0)


async def test_a_failed_delivery_is_retried_with_a_growing_delay(
        emu: BotAPIEmulator, bot: Bot, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float) -> None:
        delays.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(emu_webhook, "_sleep", record)
    receiver.statuses = [503, 500, 502, 503]
    await bot.set_webhook(receiver.url)
    user = emu.add_user("Li")
    emu.send_text(user, "hello")
    await emu.wait_until(lambda: emu.stats.webhook_delivered == 1)
    assert [u["message"]["text"] for u, _ in receiver.posts] == ["hello"] * 5
    assert delays == [0.01, 0.02, 0.04, 0.04]  # doubled, up to the cap
    assert (emu.stats.webhook_attempts, emu.stats.webhook_failures) == (5, 4)
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"
    assert info.last_error_date is not None and info.pending_update_count == 0


async def test_an_unreachable_webhook_is_retried_until_it_listens(
        emu: BotAPIEmulator, bot: Bot) -> None:
    with socket.socket() as probe:  # a port nothing listens on (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late = Receiver(port)
    await bot.set_webhook(late.url)
    user = emu.add_user("Li")
    emu.send_text(user, "anyone there?")
    await emu.wait_until(lambda: emu.stats.webhook_failures >= 2)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message and info.last_error_message.startswith("Connection failed")
    await late.start()
    try:
        await emu.wait_until(lambda: emu.stats.webhook_delivered == 1)
        assert [u["message"]["text"] for u, _ in late.posts] == ["anyone there?"]
    finally:
        await late.stop()


async def test_chats_are_posted_concurrently_one_chats_updates_in_order(
        emu: BotAPIEmulator, bot: Bot, receiver: Receiver) -> None:
    li, wang = emu.add_user("Li"), emu.add_user("Wang")
    receiver.held[li.id] = asyncio.Event()
    await bot.set_webhook(receiver.url)
    emu.send_text(li, "li 1")
    emu.send_text(li, "li 2")
    emu.send_text(wang, "wang 1")
    emu.send_text(wang, "wang 2")
    # Li's first is held; Wang's pass it, Li's second waits behind Li's first
    await emu.wait_until(lambda: emu.stats.webhook_delivered == 2)
    assert [u["message"]["text"] for u, _ in receiver.posts] == ["li 1", "wang 1", "wang 2"]
    receiver.held[li.id].set()
    await emu.wait_until(lambda: emu.stats.webhook_delivered == 4)
    assert [u["message"]["text"] for u, _ in receiver.posts][-1] == "li 2"


async def test_max_connections_bounds_the_posts_at_a_time(
        emu: BotAPIEmulator, bot: Bot, receiver: Receiver) -> None:
    users = [emu.add_user(f"U{n}") for n in range(6)]
    for user in users:
        receiver.held[user.id] = asyncio.Event()
    await bot.set_webhook(receiver.url, max_connections=2)
    for user in users:
        emu.send_text(user, "hi")
    await receiver.wait(lambda: len(receiver.inside) == 2)
    for user in users:
        receiver.held[user.id].set()
    await emu.wait_until(lambda: emu.stats.webhook_delivered == 6)
    assert receiver.most_inside == 2
    assert receiver.ids() == sorted(receiver.ids())


async def test_a_replayed_delivery_posts_an_accepted_update_again(
        emu: BotAPIEmulator, bot: Bot, receiver: Receiver) -> None:
    await bot.set_webhook(receiver.url, allowed_updates=["message"])
    user = emu.add_user("Li")
    message = emu.send_text(user, "twice")
    update_id = emu.pending_updates()[-1]["update_id"]
    emu.deliver_twice(update_id)
    emu.inject_update({"callback_query": {"id": "1", "from": user.to_dict(),
                                          "chat_instance": "1", "data": "x"}})
    await receiver.wait(lambda: len(receiver.posts) == 2)
    assert receiver.ids() == [update_id, update_id]
    assert receiver.posts[1][0]["message"]["message_id"] == message.message_id
    assert emu.stats.webhook_delivered == 1 and emu.stats.webhook_attempts == 2
    # a type the webhook was not asked for is not posted
    assert [u["update_id"] for u in emu.pending_updates()] == [update_id + 1]
