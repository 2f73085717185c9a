"""`/metrics` (SPEC §15): what the bot counts, in Prometheus' text format (prometheus-client).

One `Metrics` per runtime, on a `CollectorRegistry` of its own (never the library's global
one: the tests run many runtimes in one process, and two bots' counters must not mix). The
parts that do the work count as they go: the intake (updates received and handled, the
handlers' latency), the request objects (`bot.http.MeteredRequest`: every Bot API call by
method and outcome, the 429s and the seconds they asked us to wait), the outbox sender (its
items' outcomes) and the scheduler (runs and failures per job). What the store holds (the
outbox's depth by priority, the tickets by status) is read when `/metrics` is asked for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from storage import codec
from storage.models import TicketStatus
from storage.store import Store

logger = logging.getLogger(__name__)

#: the handlers' latency (seconds): a tap answered in milliseconds, a report drawn in seconds
HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: the store's figures must come within this (else the scrape shows the counters alone)
STORE_TIMEOUT_S = 2.0
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The counters of one runtime (see the module's docstring)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.updates_received = Counter(
            "gridhorn_updates_received", "Updates received from Telegram (polled or posted "
            "by webhook) and stored in the inbox", registry=registry)
        self.updates_handled = Counter(
            "gridhorn_updates_handled", "Updates handled, by outcome (ok; error: a handler "
            "raised; lost: its work could not be committed)", ["outcome"], registry=registry)
        self.handler_seconds = Histogram(
            "gridhorn_handler_seconds", "Time to handle one update (its handlers and their "
            "commit)", buckets=HANDLER_BUCKETS, registry=registry)
        self.api_calls = Counter(
            "gridhorn_api_calls", "Bot API calls, by method and outcome (ok, an HTTP status "
            "such as 400, 403 or 429, 5xx, timeout, network)", ["method", "outcome"],
            registry=registry)
        self.flood_waits = Counter(
            "gridhorn_api_429", "429 Too Many Requests answers", registry=registry)
        self.flood_wait_seconds = Counter(
            "gridhorn_api_429_wait_seconds", "The seconds the 429 answers asked to wait "
            "(retry_after), summed", registry=registry)
        self.outbox_items = Counter(
            "gridhorn_outbox_items", "Outbox items the sender dealt with, by outcome (sent, "
            "retried, migrated, chat_lost, dropped, failed)", ["outcome"], registry=registry)
        self.outbox_depth = Gauge(
            "gridhorn_outbox_pending", "Outbox items waiting to go out, by priority (lower "
            "goes first)", ["priority"], registry=registry)
        self.scheduler_runs = Counter(
            "gridhorn_scheduler_runs", "Scheduled jobs run, by job", ["job"], registry=registry)
        self.scheduler_failures = Counter(
            "gridhorn_scheduler_failures", "Scheduled jobs that failed, by job", ["job"],
            registry=registry)
        self.tickets = Gauge(
            "gridhorn_tickets", "Tickets (opinions) by status", ["status"], registry=registry)
        self.leading = Gauge(
            "gridhorn_leading", "1 while this replica leads (sends and schedules; SQLite's one "
            "process always), else 0", registry=registry)
        self.epoch = Gauge(
            "gridhorn_epoch", "The epoch of the lead this replica holds or last held",
            registry=registry)
        self.store_up = Gauge(
            "gridhorn_store_up", "1 when the store answered this scrape, else 0",
            registry=registry)
        self._priorities: set[int] = set()
        # the labelled children, looked up once (`labels()` costs more than the count)
        self._calls: dict[tuple[str, str], Any] = {}
        self._handled: dict[str, Any] = {}

    def call(self, method: str, outcome: str, body: bytes | None = None) -> None:
        """One Bot API call ended (`bot.http.MeteredRequest`); a 429's body says how long
        to wait."""
        child = self._calls.get((method, outcome))
        if child is None:
            child = self._calls[method, outcome] = self.api_calls.labels(method, outcome)
        child.inc()
        if outcome == "429":
            self.flood_waits.inc()
            wait = _retry_after(body)
            if wait:
                self.flood_wait_seconds.inc(wait)

    def handled(self, outcome: str, seconds: float) -> None:
        """One update handled (`bot.intake`): ok, error or lost, in `seconds`."""
        child = self._handled.get(outcome)
        if child is None:
            child = self._handled[outcome] = self.updates_handled.labels(outcome)
        child.inc()
        self.handler_seconds.observe(seconds)

    def lead(self, role: str, epoch: int | None) -> None:
        """Who leads, as `/healthz` says it (`single`, `leader`, `follower`)."""
        self.leading.set(1 if role in ("single", "leader") else 0)
        if epoch is not None:
            self.epoch.set(epoch)

    async def refresh(self, store: Store) -> None:
        """Read what the store holds: the outbox's depth by priority, tickets by status."""
        try:
            async with asyncio.timeout(STORE_TIMEOUT_S):
                depth = await store.health.outbox_depth()
                tickets = await store.health.tickets_by_status()
        except Exception as exc:  # the counters are still worth a scrape
            logger.warning("/metrics: the store did not answer (%s)", exc)
            self.store_up.set(0)
            return
        self.store_up.set(1)
        self._priorities |= set(depth)
        for priority in self._priorities:  # an emptied priority shows 0, not nothing
            self.outbox_depth.labels(str(priority)).set(depth.get(priority, 0))
        for status in TicketStatus:
            self.tickets.labels(status.value).set(tickets.get(status.value, 0))

    def exposition(self) -> bytes:
        """The text format of every metric of this runtime."""
        return generate_latest(self.registry)


def _retry_after(body: bytes | None) -> float:
    if not body:
        return 0.0
    try:
        answer: Any = codec.loads(body)
        return float(answer.get("parameters", {}).get("retry_after") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0.0
