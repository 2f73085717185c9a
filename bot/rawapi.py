"""Bot API calls with Telegram's own JSON in and out, for the hot paths (intake, outbox,
button answers).

python-telegram-bot's typed methods build objects from every parameter, serialise them again
and parse each answer into objects; on a burst that is a third of a call's CPU
(`bench.transport`). `Bot._post` is what `Bot.do_api_request` wraps (that one warns for
known methods): the request, its timeouts and the mapping of errors to `TelegramError` stay
python-telegram-bot's. It is private API, used here and nowhere else: re-run the end-to-end
tests on an upgrade.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot


async def call(bot: Bot, method: str, data: dict[str, Any], *,
               read_timeout: float | None = None) -> Any:
    """Call `method` with `data` as the Bot API's parameters; Telegram's result as JSON."""
    if read_timeout is None:
        return await bot._post(method, data)
    return await bot._post(method, data, read_timeout=read_timeout)


async def answer_callback(bot: Bot, query_id: str, text: str | None = None,
                          alert: bool = False) -> None:
    data: dict[str, Any] = {"callback_query_id": query_id}
    if text:
        data["text"] = text
    if alert:
        data["show_alert"] = True
    await call(bot, "answerCallbackQuery", data)
