"""An in-process Telegram Bot API emulator.

:class:`BotAPIEmulator` is a real HTTP server that behaves like
api.telegram.org for the subset of the Bot API a bot uses, plus a Python
control API with which tests (or the offline sandbox) play users, groups and
button taps and read what the bot sent::

    from emulator import BotAPIEmulator

    async with BotAPIEmulator(token="123456:TEST", bot_username="gridhorn_bot") as emu:
        bot = telegram.Bot(emu.token, base_url=emu.base_url, base_file_url=emu.base_file_url)
        ...

Run it standalone with ``python -m emulator --port 8081 --token 123:ABC``.
"""

from .errors import ApiError
from .html import HtmlParseError, parse_html
from .limits import DEFAULT_FLOOD_LIMITS, FloodLimiter, FloodLimits
from .models import (
    ANY_THREAD,
    Button,
    CallbackAnswer,
    CallRecord,
    EmuCallbackQuery,
    EmuChat,
    EmuFile,
    EmuMessage,
    EmuStats,
    EmuTopic,
    EmuUser,
    Faults,
    RequestLog,
)
from .server import BotAPIEmulator

__all__ = [
    "ANY_THREAD",
    "DEFAULT_FLOOD_LIMITS",
    "ApiError",
    "BotAPIEmulator",
    "Button",
    "CallRecord",
    "CallbackAnswer",
    "EmuCallbackQuery",
    "EmuChat",
    "EmuFile",
    "EmuMessage",
    "EmuStats",
    "EmuTopic",
    "EmuUser",
    "Faults",
    "FloodLimiter",
    "FloodLimits",
    "HtmlParseError",
    "RequestLog",
    "parse_html",
]
