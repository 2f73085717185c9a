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
    sender = runtime.sender
    sender.backoff_base, sender.backoff_cap = 0.01, 0.05
    li = harness.emu.add_user(first_name="Li", language_code="zh-hans")
    await harness.say(li, "/start")
    harness.emu.faults = Faults(rate=1.0, kinds=("500", "502"), seed=1,
                                methods={"sendMessage"})
    async with harness.store.transaction():
        await runtime.outbox.send(li.id, "after the outage", priority=Priority.PERSONAL)
    await harness.emu.wait_until(lambda: harness.emu.stats.server_errors >= 12, timeout=10)
    assert harness.texts(li.id)[-1] != "after the outage"
    harness.emu.faults = None
    await harness.emu.wait_for_message(li.id, lambda m: m.text == "after the outage")
    await harness.settle()
    assert harness.texts(li.id).count("after the outage") == 1
    row = await harness.store.db.fetchone(
        "SELECT status, attempts FROM outbox WHERE payload LIKE '%after the outage%'")
    assert row["status"] == "sent" and row["attempts"] >= 13


async def test_a_person_who_blocked_the_bot_is_marked_blocked_by_the_403(harness):
    """Li blocked the bot while it was away longer than Telegram keeps updates: the bot
    learns it only from the 403 on its next message. Li is marked blocked, the rest of
    Li's queue dropped, nothing retried."""
    runtime = await harness.start_bot()
    li = harness.emu.add_user(first_name="Li", language_code="zh-hans")
    await harness.say(li, "/start")
    person = await harness.store.people.get(li.id)
    assert person is not None and not person.blocked
    harness.emu.user(li).blocked = True  # no my_chat_member update: only the 403 tells
    async with harness.store.transaction():
        for text in ("ticket step one", "ticket step two"):
            await runtime.outbox.send(li.id, text, priority=Priority.PERSONAL)
    await harness.settle()
    person = await harness.store.people.get(li.id)
    assert person is not None and person.blocked
    rows = await harness.store.db.fetchall(
        "SELECT status, last_error FROM outbox WHERE payload LIKE '%ticket step%'")
    assert [r["status"] for r in rows] == ["dropped", "dropped"]
    assert all("blocked" in r["last_error"] for r in rows)
    refused = [r for r in harness.emu.requests if r.chat_id == li.id and r.status_code == 403]
    assert len(refused) == 1
