"""`/healthz` of a running bot (SPEC §15): the one process is `single` with epoch 1; the
last update handled shows once a person wrote."""

from __future__ import annotations

import asyncio

import aiohttp

from emulator.balancer import free_port
from tests.support.texts import shown


async def test_a_running_bot_answers_healthz(harness) -> None:
    port = free_port()
    await harness.start_bot(metrics_port=port)
    user = harness.emu.add_user(first_name="Li", language_code="en")
    await harness.say(user, "/start")
    assert harness.texts(user.id) == [shown("en", "start.greeting", name="Li")]
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/healthz") as answer:
        status, body = answer.status, await answer.json()
    assert status == 200
    assert (body["status"], body["role"], body["epoch"], body["store"]) == \
        ("ok", "single", 1, "ok")
    assert body["last_update_at"] is not None
    assert body["outbox"]["pending"] == 0


async def test_healthz_turns_503_while_getupdates_fails_and_metrics_count_it(
        harness, monkeypatch) -> None:
    """SPEC §15: 503 once getUpdates has failed for 60 s (here 1 s, the same rule), through
    the emulator's fault injection; 200 again once it answers. `/metrics` counts the
    failures by method and outcome."""
    from emulator import Faults
    from tests.e2e.test_metrics import scrape, value

    monkeypatch.setattr("bot.health.POLLING_DOWN_S", 1.0)
    port = free_port()
    await harness.start_bot(metrics_port=port)

    async def health() -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/healthz") as answer:
            return answer.status, await answer.json()

    assert (await health())[0] == 200
    harness.emu.faults = Faults(rate=1.0, kinds=("502",), methods={"getUpdates"})
    async with asyncio.timeout(15):
        while (answer := await health())[0] != 503:
            await asyncio.sleep(0.1)
    assert answer[1]["status"] == "failing" and answer[1]["polling"].startswith(
        "getUpdates failing for")
    failed = value(await scrape(port), "gridhorn_api_calls_total", method="getUpdates",
                   outcome="5xx")
    assert failed >= 2
    harness.emu.faults = None
    async with asyncio.timeout(15):
        while (answer := await health())[0] != 200:
            await asyncio.sleep(0.1)
    assert answer[1]["status"] == "ok" and "polling" not in answer[1]
