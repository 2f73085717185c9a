"""`/metrics` of a running bot (SPEC §15), scraped over HTTP during an end-to-end run: the
counters move as people write and the bot answers — updates received and handled, the
handlers' latency, calls by method and outcome, a 429 from the emulator's flood limits and
the wait it asked for, the outbox's items and depth by priority, scheduled runs, tickets by
status."""

from __future__ import annotations

import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from emulator import FloodLimits
from emulator.balancer import free_port
from tests.e2e.test_tickets import World


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, by name and labels."""
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/metrics") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = await answer.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_the_counters_move_as_the_bot_works(harness, monkeypatch) -> None:
    port = free_port()
    w = World(harness)
    await w.setup(metrics_port=port)
    emu = harness.emu
    before = await scrape(port)
    # the scheduler caught up on its jobs at start-up: each run counted
    assert sum(v for (name, _), v in before.items()
               if name == "gridhorn_scheduler_runs_total") >= 1
    assert value(before, "gridhorn_api_calls_total", method="getMe", outcome="ok") >= 1

    # one message a second to a chat, strictly: two answers at once earn a 429
    emu.flood = FloodLimits(overall_per_s=1000, group_per_min=1000, chat_per_s=1)
    rejected = emu.stats.flood_rejections
    emu.send_text(w.neighbour, "/help")
    emu.send_text(w.neighbour, "/help")
    await harness.settle(timeout=20)
    assert emu.stats.flood_rejections > rejected
    emu.flood = None
    await w.submit()  # a ticket: its receipt and cards go out through the outbox

    async def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    # a handler that raises: the person is told something went wrong; counted as an error
    with monkeypatch.context() as patch:
        patch.setattr(harness.runtime.services.tickets, "add_to_draft", broken)
        await harness.say(w.neighbour, "楼下有积水")

    async with harness.store.transaction():  # an item that waits an hour: the depth shows it
        await harness.store.outbox.enqueue(w.worker.id, "sendMessage", {"text": "later"}, 30,
                                           not_before=time.time() + 3600)
    after = await scrape(port)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("gridhorn_updates_received_total") >= 6  # /help ×2, the opinion's 3, the bug
    assert moved("gridhorn_updates_handled_total", outcome="ok") >= 5
    assert moved("gridhorn_updates_handled_total", outcome="error") == 1
    assert moved("gridhorn_handler_seconds_count") >= 6
    assert value(after, "gridhorn_handler_seconds_sum") > 0
    assert moved("gridhorn_api_calls_total", method="sendMessage", outcome="ok") >= 2
    assert moved("gridhorn_api_calls_total", method="sendMessage", outcome="429") >= 1
    assert moved("gridhorn_api_calls_total", method="answerCallbackQuery", outcome="ok") >= 2
    assert moved("gridhorn_api_calls_total", method="getUpdates", outcome="ok") >= 1
    assert moved("gridhorn_api_429_total") >= 1
    assert moved("gridhorn_api_429_wait_seconds_total") >= 1  # the emulator said: 1 s
    assert moved("gridhorn_outbox_items_total", outcome="sent") >= 1
    assert value(after, "gridhorn_outbox_pending", priority="30") == 1
    assert value(after, "gridhorn_tickets", status="new") == 1
    assert value(after, "gridhorn_tickets", status="resolved") == 0
    assert value(after, "gridhorn_store_up") == 1
