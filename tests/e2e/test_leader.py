"""One leader among replicas (SPEC §16) end to end: two real runtimes (`build_runtime`, webhook
mode) on one PostgreSQL database and the emulator. Only the leader sets the webhook and sends
the outbox, whichever replica wrote it; its lock connection cut, it stops and the other
replica takes over (a new epoch, the webhook set again by the new leader)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Runtime, build_runtime
from bot.leader import Role
from bot.services.outbox import Priority
from tests.e2e.test_webhook import SECRET, free_port
from tests.support import pg
from tests.support.harness import EmulatorOnlyRequest
from tests.test_leader import TAKEOVER_S, terminate

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with pg.fresh_url() as fresh:
        yield fresh


async def replica(harness, url: str) -> tuple[Runtime, str]:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram/hook"
    settings = harness.settings(database_url=url, webhook_url=hook, webhook_secret=SECRET,
                                listen=f"127.0.0.1:{port}")
    prefix = harness.emu.base_url.rsplit("/bot", 1)[0]
    runtime = await build_runtime(
        settings, webhook=True, poll_timeout=1,
        request=EmulatorOnlyRequest(prefix, connection_pool_size=64, read_timeout=20),
        get_updates_request=EmulatorOnlyRequest(prefix, connection_pool_size=2))
    # the protocol's intervals lowered for the test (production: 2 s and 1 s)
    runtime.leadership.retry_interval = runtime.leadership.check_interval = 0.05
    await runtime.start()
    return runtime, hook


async def test_only_the_leader_sends_and_sets_the_webhook_and_another_takes_over(harness, url):
    emu = harness.emu
    a, hook_a = await replica(harness, url)
    b, hook_b = await replica(harness, url)
    a.leadership.retry_interval = 1.0  # fenced, A tries again later than B: B wins
    try:
        assert (a.role, a.epoch, b.role) == ("leader", 1, "follower")
        assert emu.webhook is not None and emu.webhook.url == hook_a
        assert emu.stats.by_method["setWebhook"] == 1
        li = emu.add_user(first_name="Li", language_code="zh-hans")
        emu.user(li).started = True

        # written by the follower, sent by the leader (woken by the notification)
        async with b.store.transaction():
            await b.outbox.send(li.id, "one", priority=Priority.PERSONAL)
        await emu.wait_for_message(li.id, lambda m: m.text == "one")

        pid = a.leadership.lock_pid
        assert pid is not None
        await terminate(url, pid)
        await a.leadership.wait_for(Role.FOLLOWER, timeout=5)
        assert await b.leadership.wait_for(Role.LEADER, timeout=TAKEOVER_S) == 2
        assert (a.role, b.role, b.epoch) == ("follower", "leader", 2)
        await emu.wait_until(lambda: emu.webhook is not None and emu.webhook.url == hook_b)

        # written by the former leader, sent by the new one
        async with a.store.transaction():
            await a.outbox.send(li.id, "two", priority=Priority.PERSONAL)
        await emu.wait_for_message(li.id, lambda m: m.text == "two")
        await b.sender.drain(5)
        texts = harness.texts(li.id)
        assert texts.count("one") == 1 and texts.count("two") == 1
        assert emu.stats.by_method["setWebhook"] == 2
    finally:
        await a.stop()
        await b.stop()


async def test_sqlite_runs_as_the_single_leader(harness):
    runtime = await harness.start_bot()
    assert (runtime.role, runtime.epoch) == ("single", 1)
