"""Webhook intake (`gridhorn run --webhook`, SPEC §16): Telegram posts each update to our own
HTTP server instead of the bot asking with getUpdates.

An update is answered 200 only once it is committed to the inbox: a lost process loses no
update (Telegram posts it again until it gets a 2xx, and a stored one is handled at the next
start). Then it is handled exactly like a polled one (`Intake.accept`: the same lanes, once).

- the secret header is compared in constant time; wrong or missing: 401, nothing stored
- a body that is not an update: 400 (Telegram would only resend it)
- a store that fails: 503, so that Telegram posts it again later
- an update_id stored before: stored once (the inbox ignores it), answered 200 again

`setWebhook` is called at start by the replica that is the leader (`leader`; with one replica,
always this one). Webhook mode never calls deleteWebhook: polling mode does, at its start.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest

from bot import rawapi
from bot.intake import ALLOWED_UPDATES, Intake
from bot.settings import SettingsError

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: an update is a few kilobytes; Telegram's largest are far below this
_MAX_BODY = 1024 * 1024


class WebhookServer:
    """The HTTP server Telegram posts updates to, and the one who tells Telegram where."""

    def __init__(self, intake: Intake, bot: Bot, *, url: str, secret: str, path: str,
                 host: str, port: int, leader: Callable[[], bool] = lambda: True) -> None:
        self.intake = intake
        self.bot = bot
        self.url = url
        self.path = path
        self.host = host
        self.port = port
        #: whether this replica tells Telegram the URL (the leader: `bot.leader`); a replica
        #: that wins the lead later sets it then (`Runtime._lead`)
        self.leader = leader
        self._secret = secret
        self._secret_bytes = secret.encode()
        self._runner: web.AppRunner | None = None
        self._failing = 0  # store failures in a row (logged when they start and end)

    async def start(self) -> None:
        """Listen first (Telegram may post at once), then, as the leader, set the webhook."""
        app = web.Application(client_max_size=_MAX_BODY)
        app.router.add_post(self.path, self._receive)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=1024)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SettingsError(f"GRIDHORN_LISTEN: cannot listen on {self.host}:{self.port}: "
                                f"{exc.strerror or exc}") from None
        self._runner = runner
        logger.info("receiving updates by webhook on %s:%s%s", self.host, self.port, self.path)
        if self.leader():
            await self.set_webhook()

    @property
    def listening(self) -> bool:
        return self._runner is not None

    async def stop(self) -> None:
        """Stop listening; requests being stored finish first (their 200 still goes out)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def set_webhook(self) -> None:
        """Tell Telegram where to post, with the secret and the update types polling asks
        for; updates it holds stay queued for us (never dropped)."""
        try:
            await rawapi.call(self.bot, "setWebhook", {
                "url": self.url, "secret_token": self._secret,
                "allowed_updates": list(ALLOWED_UPDATES), "drop_pending_updates": False})
        except BadRequest as exc:
            raise SettingsError(f"GRIDHORN_WEBHOOK_URL: Telegram refused {self.url}: "
                                f"{exc.message}") from None
        logger.info("webhook set: Telegram posts updates to %s", self.url)

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self._secret_bytes):
            return web.Response(status=401, text="wrong secret token")
        try:
            raw: Any = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="not JSON")
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return web.Response(status=400, text="not an update")
        try:
            await self.intake.accept([raw], polled=False)
        except Exception as exc:  # the store: Telegram posts it again later
            self._failing += 1
            if self._failing == 1:
                logger.warning("cannot store update %s (%s); answering 503 until the store "
                               "works again (Telegram retries)", update_id, exc, exc_info=True)
            return web.Response(status=503, text="store unavailable")
        if self._failing:
            logger.info("the store takes updates again after %d failures", self._failing)
            self._failing = 0
        return web.Response(status=200)
