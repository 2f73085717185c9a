"""`/healthz` of a running bot (SPEC §15): the one process is `single` with epoch 1; the
last update handled shows once a person wrote."""

from __future__ import annotations

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
