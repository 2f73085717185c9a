"""Webhook delivery, like Telegram's: while a webhook is set, each queued update is POSTed to
its URL (JSON body, the secret in ``X-Telegram-Bot-Api-Secret-Token``) in ``update_id``
order, up to ``max_connections`` at a time but one chat's updates one after another. An update
leaves the queue when the bot answers 2xx; otherwise it is posted again after a delay that
doubles from ``retry_delay`` up to ``retry_cap`` (the chat's later updates wait behind it).

The emulator never connects beyond the loopback address: ``setWebhook`` accepts only URLs on
127.0.0.1 / ::1 / localhost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from .models import EmuStats

__all__ = ["SECRET_HEADER", "WebhookConfig", "WebhookDelivery", "delivery_lane"]

logger = logging.getLogger("emulator")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_sleep = asyncio.sleep  # the wait between retries (a test records the delays)
_CHAT_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post",
               "my_chat_member", "chat_member", "chat_join_request")


@dataclass
class WebhookConfig:
    """What ``setWebhook`` set, and what ``getWebhookInfo`` tells of the deliveries."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    #: as given to setWebhook (``None``: not given)
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    set_at: float = field(default_factory=time.time)


class _Signal(Protocol):
    def waiter(self) -> asyncio.Event: ...
    def fire(self) -> None: ...


class _Queue(Protocol):
    """What delivery reads and changes of `EmulatorState` (which imports this module)."""

    webhook: WebhookConfig | None
    webhook_retry_delay: float
    webhook_retry_cap: float
    webhook_timeout: float
    stats: EmuStats
    _updates: deque[tuple[int, str, dict[str, Any]]]
    _allowed_updates: frozenset[str]
    _closing: bool

    @property
    def _updates_signal(self) -> _Signal: ...

    def notify(self) -> None: ...


def delivery_lane(payload: dict[str, Any]) -> int | None:
    """The chat whose updates go one after another; ``None``: no order to keep."""
    for kind in _CHAT_KINDS:
        if kind in payload:
            return int(payload[kind]["chat"]["id"])
    query = payload.get("callback_query")
    if query is not None:
        message = query.get("message")
        return int(message["chat"]["id"]) if message else int(query["from"]["id"])
    for kind in ("inline_query", "chosen_inline_result", "shipping_query",
                 "pre_checkout_query", "poll_answer"):
        if kind in payload:
            return int(payload[kind].get("from", payload[kind].get("user", {})).get("id", 0))
    return None


class WebhookDelivery:
    """Posts the queued updates of one :class:`EmulatorState` to its webhook."""

    def __init__(self, state: _Queue) -> None:
        self.state = state
        self._task: asyncio.Task[None] | None = None
        self._sending: dict[int, asyncio.Task[None]] = {}  # update_id → its delivery
        self._busy_lanes: set[int] = set()
        #: update ids posted a second time after their first 2xx (a replayed delivery)
        self.replay: set[int] = set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="emulator:webhook")

    async def stop(self) -> None:
        """Stop posting; updates being posted stay queued (posted again once set again)."""
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._sending.values()) if t is not None]
        for pending in tasks:
            pending.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sending.clear()
        self._busy_lanes.clear()

    async def _run(self) -> None:
        state = self.state
        timeout = aiohttp.ClientTimeout(total=state.webhook_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while state.webhook is not None and not state._closing:
                event = state._updates_signal.waiter()
                self._start_deliveries(session, state.webhook)
                await event.wait()

    def _start_deliveries(self, session: aiohttp.ClientSession, config: WebhookConfig) -> None:
        blocked: set[int] = set()  # chats with an earlier update still queued or on its way
        allowed = self.state._allowed_updates
        for entry in list(self.state._updates):
            update_id, kind, payload = entry
            if kind not in allowed:
                continue
            lane = delivery_lane(payload)
            if update_id in self._sending or lane in blocked or lane in self._busy_lanes:
                if lane is not None:
                    blocked.add(lane)
                continue
            if len(self._sending) >= config.max_connections:
                return
            if lane is not None:
                blocked.add(lane)
                self._busy_lanes.add(lane)
            raw = {"update_id": update_id, **payload}
            self._sending[update_id] = asyncio.get_running_loop().create_task(
                self._deliver(session, config, entry, raw, lane),
                name=f"emulator:webhook:{update_id}")

    async def _deliver(self, session: aiohttp.ClientSession, config: WebhookConfig,
                       entry: tuple[int, str, dict[str, Any]], raw: dict[str, Any],
                       lane: int | None) -> None:
        state = self.state
        update_id = entry[0]
        body = json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if config.secret_token:
            headers[SECRET_HEADER] = config.secret_token
        delay = state.webhook_retry_delay
        try:
            while not await self._post(session, config, body, headers):
                await _sleep(delay)
                delay = min(delay * 2, state.webhook_retry_cap)
            state.stats.webhook_delivered += 1
            try:
                state._updates.remove(entry)
            except ValueError:  # dropped meanwhile (drop_pending_updates)
                pass
            if update_id in self.replay:  # Telegram posting an update it already had answered
                self.replay.discard(update_id)
                await self._post(session, config, body, headers)
        finally:
            self._sending.pop(update_id, None)
            if lane is not None:
                self._busy_lanes.discard(lane)
            state._updates_signal.fire()  # the chat's next update, or another's, may go
            state.notify()

    async def _post(self, session: aiohttp.ClientSession, config: WebhookConfig, body: bytes,
                    headers: dict[str, str]) -> bool:
        state = self.state
        state.stats.webhook_attempts += 1
        try:
            async with session.post(config.url, data=body, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return True
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"Connection failed: {exc.__class__.__name__}: {exc}".rstrip(": ")
        state.stats.webhook_failures += 1
        config.last_error_date = int(time.time())
        config.last_error_message = error
        state.notify()
        return False
