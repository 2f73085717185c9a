"""The outbox against the emulator's real HTTP answers: server errors, a person who blocked
the bot (SPEC §7)."""

from __future__ import annotations

import pytest

from bot.services.outbox import Priority
from emulator import Faults

pytestmark = pytest.mark.asyncio


async def test_server_errors_are_retried_until_the_bot_api_answers(harness):
    """More 500/502 answers in a row than any fixed number of tries: the message waits
    and goes out, once, when the server answers again."""
    runtime = await harness.start_bot()
    sender = runtime.services.sender
    sender.backoff_base, sender.backoff_cap = 0.01, 0.05
    li = harness.emu.add_user(first_name="Li", language_code="zh-hans")
    await harness.say(li, "/start")
    harness.emu.faults = Faults(rate=1.0, kinds=("500", "502"), seed=1,
                                methods={"sendMessage"})
    async with harness.store.transaction():
        await runtime.services.outbox.send(li.id, "after the outage", priority=Priority.PERSONAL)
    await harness.emu.wait_until(lambda: harness.emu.stats.server_errors >= 12, timeout=10)
    assert harness.texts(li.id)[-1] != "after the outage"
    harness.emu.faults = None
    await harness.emu.wait_for_message(li.id, lambda m: m.text == "after the outage")
    await harness.settle()
    assert harness.texts(li.id).count("after the outage") == 1
    row = await harness.store.db.fetchone(
        "SELECT status, attempts FROM outbox WHERE payload LIKE '%after the outage%'")
    assert row["status"] == "sent" and row["attempts"] >= 13
