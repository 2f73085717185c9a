"""Bot API calls with Telegram's own JSON in and out, for the hot paths (intake, outbox,
button answers).

python-telegram-bot's typed methods build objects from every parameter, serialise them again
and parse each answer into objects; on a burst that is a third of a call's CPU
(`bench.transport`). Here the parameters go out as one JSON body through the bot's own
`BaseRequest.post` (its transport, timeouts, and mapping of answers to `TelegramError`:
RetryAfter, Forbidden, ChatMigrated...). Skipped are only the layers above it, which rebuild the
parameters (a tenth of a Submit's CPU): defaults (Gridhorn sets none) and the rate limiter
hook, which lets the outbox's calls and the answers to taps through untouched anyway.
getUpdates and uploads take `Bot._post` (what `Bot.do_api_request` wraps; private API,
used here and nowhere else: re-run the end-to-end tests on an upgrade).
"""

from __future__ import annotations

from typing import Any

from telegram import Bot

from bot.http import AiohttpRequest, JsonBody, MeteredRequest
from storage import codec
from storage.inbox import current_update

#: through `Bot._post`: getUpdates has its own request object (its own connections)
_VIA_BOT = frozenset({"getUpdates"})


async def call(bot: Bot, method: str, data: dict[str, Any], *,
               read_timeout: float | None = None) -> Any:
    """Call `method` with `data` as the Bot API's parameters; Telegram's result as JSON."""
    body = _json_body(data) if method not in _VIA_BOT and \
        _speaks_json(getattr(bot, "request", None)) else None
    if body is None:
        if read_timeout is None:
            return await bot._post(method, data)
        return await bot._post(method, data, read_timeout=read_timeout)
    url = f"{bot.base_url}/{method}"
    if read_timeout is None:
        return await bot.request.post(url, JsonBody(body))
    return await bot.request.post(url, JsonBody(body), read_timeout=read_timeout)


def _speaks_json(request: object) -> bool:
    return isinstance(request, AiohttpRequest) or (isinstance(request, MeteredRequest)
                                                   and request.speaks_json)


def _json_body(data: dict[str, Any]) -> bytes | None:
    """The parameters as one JSON body; None when one is not JSON (an upload, an object:
    python-telegram-bot serialises those)."""
    try:
        return codec.dumps_bytes({k: v for k, v in data.items() if v is not None})
    except TypeError:
        return None


async def answer_callback(bot: Bot, query_id: str, text: str | None = None,
                          alert: bool = False) -> None:
    data: dict[str, Any] = {"callback_query_id": query_id}
    if text:
        data["text"] = text
    if alert:
        data["show_alert"] = True
    await call(bot, "answerCallbackQuery", data)
    mark = current_update.get()
    if mark is not None:
        mark.answered = True  # the intake's guard need not answer it (bot.intake)
