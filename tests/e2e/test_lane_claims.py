"""Processing on any replica (SPEC §16) with the real bot: two runtimes in webhook mode on one
PostgreSQL database, the emulator as Telegram; and, on both engines, a redelivery after a
restart."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from typing import Any

import pytest

from bot.app import Runtime, build_runtime
from storage.store import Store
from tests.e2e.test_webhook import SECRET, free_port, json_bytes, post
from tests.support.harness import EmulatorOnlyRequest
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio
_ids = itertools.count(5_000)


def command(user: Any, text: str) -> dict[str, Any]:
    """An update as Telegram posts it: `user` sends the command `text` to the bot."""
    update_id = next(_ids)
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 0, "text": text,
        "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
        "from": {"id": user.id, "is_bot": False, "first_name": user.first_name,
                 "language_code": "en"},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}]}}


class Replica:
    def __init__(self, runtime: Runtime, url: str) -> None:
        self.runtime = runtime
        self.url = url

    async def deliver(self, raw: dict[str, Any]) -> None:
        assert await post(self.url, json_bytes(raw), SECRET) == 200


async def start_replica(h: Any, database_url: str, stack: AsyncExitStack) -> Replica:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    settings = h.settings(database_url=database_url, webhook_url=url, webhook_secret=SECRET,
                          listen=f"127.0.0.1:{port}")
    prefix = h.emu.base_url.rsplit("/bot", 1)[0]
    runtime = await build_runtime(
        settings, request=EmulatorOnlyRequest(prefix, connection_pool_size=64, read_timeout=20),
        get_updates_request=EmulatorOnlyRequest(prefix, connection_pool_size=2), webhook=True)
    runtime.intake.SWEEP_S = 0.05  # the tests wait less for the sweeper
    await runtime.start()
    stack.push_async_callback(runtime.stop)
    return Replica(runtime, url)


async def settled(*replicas: Replica, timeout: float = 15) -> None:
    """Every stored update handled (by whichever replica) and every reply sent."""
    store = replicas[0].runtime.store
    async with asyncio.timeout(timeout):
        while True:
            for r in replicas:
                await r.runtime.intake.drain()
                await r.runtime.sender.drain(timeout)
            if not await store.inbox.pending() and not any(
                    r.runtime.intake.busy() for r in replicas):
                return
            await asyncio.sleep(0.02)  # the sweeper's next look


@pytest.fixture
async def pg_url():
    from tests.support import pg

    async with pg.fresh_url() as url:
        yield url


async def test_two_replicas_handle_a_chats_updates_once_each_and_in_order(harness, pg_url):
    """Each resident's commands go to the two replicas alternately (every third to both, as
    a replayed delivery): every command is answered once, in the order it was sent."""
    h = harness
    async with AsyncExitStack() as stack:
        a = await start_replica(h, pg_url, stack)
        b = await start_replica(h, pg_url, stack)
        users = [h.emu.add_user(first_name=f"R{i}", language_code="en") for i in range(4)]
        for user in users:
            user.started = True  # they write to the bot (by updates we post ourselves)

        async def converse(user: Any) -> None:
            for k in range(6):
                raw = command(user, "/start" if k % 2 == 0 else "/help")
                targets = [a, b] if k % 3 == 2 else [(a, b)[k % 2]]
                await asyncio.gather(*(r.deliver(raw) for r in targets))

        await asyncio.gather(*(converse(u) for u in users))
        await settled(a, b)
        for user in users:
            texts = [m.text for m in h.emu.messages(user.id)]
            greeting = shown("en", "start.greeting", name=user.first_name)
            assert len(texts) == 6, texts
            assert texts[0::2] == [greeting] * 3  # /start, /help, /start…: in that order
            assert len(set(texts[1::2])) == 1 and texts[1] != greeting


async def test_an_update_stored_by_a_replica_that_stopped_is_handled_by_the_other(harness,
                                                                                  pg_url):
    """Replica A answered 200 (the update committed) and stopped before handling it."""
    h = harness
    async with AsyncExitStack() as stack:
        a = await start_replica(h, pg_url, stack)
        b = await start_replica(h, pg_url, stack)
        await a.runtime.stop()
        user = h.emu.add_user(first_name="Zhao", language_code="en")
        user.started = True
        left = await Store.open(pg_url)  # what A wrote before it went
        try:
            await left.inbox.store([command(user, "/start")])
        finally:
            await left.close()
        await settled(b)
        assert [m.text for m in h.emu.messages(user.id)] == [
            shown("en", "start.greeting", name="Zhao")]


async def test_a_handled_update_redelivered_after_a_restart_is_not_handled_again(harness,
                                                                                database_url):
    """Telegram posts an update again when it did not see our answer; meanwhile the bot
    restarted (nothing in memory): the store says it was handled."""
    h = harness
    await h.start_bot(database_url=database_url)
    user = h.emu.add_user(first_name="Li", language_code="en")
    h.emu.send_text(user, "/start")
    await h.settle()
    [(payload,)] = await h.store.db.fetchall("SELECT payload FROM inbox")
    await h.stop_bot()
    runtime = await h.start_bot(database_url=database_url)
    from storage import codec
    await runtime.intake.accept([codec.loads(payload)])  # as the webhook server does
    await h.settle()
    assert [m.text for m in h.emu.messages(user.id)] == [
        shown("en", "start.greeting", name="Li")]
