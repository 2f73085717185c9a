"""`/healthz` (SPEC §15, §16): the replica's role and epoch, the store, the last update
handled, the outbox's depth by priority, the scheduler's last runs; 503 when the store does
not answer or getUpdates has failed for a minute. Over both engines, through real HTTP."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from bot.health import HealthServer
from emulator.balancer import free_port
from storage.store import Store

pytestmark = pytest.mark.asyncio



async def get(server: HealthServer) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{server.port}/healthz") as answer:
        return answer.status, await answer.json()


async def test_a_well_replica_says_what_it_holds(store: Store) -> None:
    async with store.transaction():
        await store.outbox.enqueue(-100, "sendMessage", {"text": "a"}, 0)
        await store.outbox.enqueue(-101, "sendMessage", {"text": "b"}, 0)
        await store.outbox.enqueue(-102, "sendMessage", {"text": "c"}, 3)
        await store.schedules.record_run("theme", "2026-12", 4)
    server = HealthServer(store, host="127.0.0.1", port=free_port(), role=lambda: "leader",
                          epoch=lambda: 7)
    await server.start()
    try:
        status, body = await get(server)
    finally:
        await server.stop()
    assert status == 200
    assert body["status"] == "ok" and body["store"] == "ok"
    assert (body["role"], body["epoch"]) == ("leader", 7)
    assert body["outbox"] == {"pending": 3, "by_priority": {"0": 2, "3": 1}}
    assert body["scheduler"]["theme"]["period"] == "2026-12"
    assert body["last_update_at"] is None  # nothing handled yet


async def test_polling_down_for_a_minute_or_a_store_that_does_not_answer_is_503(
        database_url: str) -> None:
    store = await Store.open(database_url)
    failing = [59.0]
    server = HealthServer(store, host="127.0.0.1", port=free_port(), role=lambda: "single",
                          epoch=lambda: 1, polling_failed_for=lambda: failing[0])
    await server.start()
    try:
        assert (await get(server))[0] == 200
        failing[0] = 61.0
        status, body = await get(server)
        assert status == 503 and body["status"] == "failing"
        assert body["polling"] == "getUpdates failing for 61 s"
        failing[0] = 0.0
        await store.close()  # the store is gone
        status, body = await get(server)
        assert status == 503 and body["store"].startswith("unreachable")
    finally:
        await server.stop()


async def test_a_busy_port_is_one_line_naming_the_setting(store: Store) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HealthServer(store, host="127.0.0.1", port=taken.getsockname()[1],
                              role=lambda: "single", epoch=lambda: 1)
        with pytest.raises(Exception, match="^GRIDHORN_METRICS_PORT: cannot listen on"):
            await server.start()


async def test_metrics_are_the_runtimes_own_and_read_the_store(store: Store) -> None:
    """`/metrics` beside `/healthz`: the outbox's depth by priority read from the store (an
    emptied priority stays, at 0); counters of one runtime never show in another's."""
    from bot.metrics import Metrics

    mine, other = Metrics(), Metrics()
    mine.call("sendMessage", "ok")
    mine.call("sendMessage", "429", b'{"ok":false,"error_code":429,"parameters":'
                                    b'{"retry_after":7}}')
    async with store.transaction():
        first = await store.outbox.enqueue(-100, "sendMessage", {"text": "a"}, 10)
        await store.outbox.enqueue(-101, "sendMessage", {"text": "b"}, 30)
    server = HealthServer(store, host="127.0.0.1", port=free_port(), role=lambda: "single",
                          epoch=lambda: 1, metrics=mine)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.port}/metrics") as answer:
                assert answer.status == 200
                text = await answer.text()
            assert first is not None
            await store.outbox.finish(first, "dropped", None)
            async with http.get(f"http://127.0.0.1:{server.port}/metrics") as answer:
                later = await answer.text()
    finally:
        await server.stop()
    assert 'gridhorn_api_calls_total{method="sendMessage",outcome="ok"} 1.0' in text
    assert "gridhorn_api_429_total 1.0" in text
    assert "gridhorn_api_429_wait_seconds_total 7.0" in text
    assert 'gridhorn_outbox_pending{priority="10"} 1.0' in text
    assert 'gridhorn_outbox_pending{priority="30"} 1.0' in text
    assert 'gridhorn_outbox_pending{priority="10"} 0.0' in later
    assert 'gridhorn_tickets{status="new"} 0.0' in text
    assert "gridhorn_store_up 1.0" in text
    assert "gridhorn_leading 1.0" in text and "gridhorn_epoch 1.0" in text
    assert b"sendMessage" not in other.exposition()
