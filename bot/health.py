"""`/healthz` (SPEC §15): what an operator, a load balancer or a replica's supervisor asks to
know whether this replica is well — served on GRIDHORN_METRICS_HOST:GRIDHORN_METRICS_PORT
(off unless the port is set; 127.0.0.1 by default), beside `/metrics` (`bot.metrics`: the
runtime's counters in Prometheus' text format).

JSON `{"status", "role", "epoch", "store", "last_update_at", "outbox", "scheduler"}`: the role
is `single` on SQLite, `leader` or `follower` on PostgreSQL with the leader's epoch (SPEC §16);
HTTP 503 when the store does not answer or getUpdates has failed for 60 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics
from bot.settings import SettingsError
from storage.store import Store

logger = logging.getLogger(__name__)

#: getUpdates failing this long makes the replica unhealthy
POLLING_DOWN_S = 60.0
#: the store's answer to a ping must come within this
STORE_TIMEOUT_S = 2.0


class HealthServer:
    def __init__(self, store: Store, *, host: str, port: int, role: Callable[[], str],
                 epoch: Callable[[], int | None],
                 polling_failed_for: Callable[[], float] = lambda: 0.0,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.host = host
        self.port = port
        self.role = role
        self.epoch = epoch
        self.polling_failed_for = polling_failed_for
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        if self.metrics is not None:
            app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise SettingsError(f"GRIDHORN_METRICS_PORT: cannot listen on {self.host}:"
                                f"{self.port}: {exc.strerror or exc}") from None
        self._runner = runner
        logger.info("health on http://%s:%s/healthz%s", self.host, self.port,
                    " and /metrics" if self.metrics is not None else "")

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def report(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and the JSON body of `/healthz`."""
        health = self.store.health
        body: dict[str, Any] = {"status": "ok", "role": self.role(), "epoch": self.epoch(),
                                "store": "ok", "last_update_at": None, "outbox": None,
                                "scheduler": None}
        try:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                await health.ping()
                body["last_update_at"] = await health.last_update_at()
                depth = await health.outbox_depth()
                body["outbox"] = {"pending": sum(depth.values()),
                                  "by_priority": {str(p): n for p, n in sorted(depth.items())}}
                body["scheduler"] = {
                    job: {"period": period,
                          "ran_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")}
                    for job, (period, at) in sorted((await health.last_runs()).items())}
        except Exception as exc:  # the store: what it said, in one line
            body["store"] = f"unreachable: {exc.__class__.__name__}: {exc}".splitlines()[0]
        failed_for = self.polling_failed_for()
        if failed_for >= POLLING_DOWN_S:
            body["polling"] = f"getUpdates failing for {failed_for:.0f} s"
        healthy = body["store"] == "ok" and failed_for < POLLING_DOWN_S
        body["status"] = "ok" if healthy else "failing"
        return (200 if healthy else 503), body

    async def _healthz(self, request: web.Request) -> web.Response:
        status, body = await self.report()
        return web.Response(status=status, text=json.dumps(body, ensure_ascii=False),
                            content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self.metrics is not None
        self.metrics.lead(self.role(), self.epoch())
        await self.metrics.refresh(self.store)
        # the content type carries its version and charset: given whole, as a header
        return web.Response(body=self.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE})
