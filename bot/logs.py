"""The log (SPEC §15): `GRIDHORN_LOG_FORMAT` `text` (a line for a person) or `json` (one JSON
object per line for a log collector: time, level, logger, message, and the update id, ticket
id and horn id where the line is about one, and the outbox item and its chat for the sender's
lines), at `GRIDHORN_LOG_LEVEL` and above. A text line ends with the same ids in brackets.

The update's id is the intake's `storage.inbox.current_update`; the rest is what was tagged in
`bot.logcontext`: by the services while handling an update, by the outbox sender for the item
it sends. Both are context variables, read as the line is written (the handler writes in the
logging call's own task).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from bot import logcontext
from bot.settings import Settings
from storage.inbox import current_update

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def about() -> dict[str, int]:
    """The ids the line being written is about: the update's, then what was tagged."""
    found: dict[str, int] = {}
    mark = current_update.get()
    if mark is not None:
        found["update_id"] = mark.update_id
    found.update(logcontext.fields())
    return found


class TextFormatter(logging.Formatter):
    """A line for a person: `TEXT_FORMAT`, then `[update_id=… ticket_id=…]` when it is about
    something (before a traceback's lines)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        ids = about()
        if ids:
            line += " [" + " ".join(f"{key}={value}" for key, value in ids.items()) + "]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is a field, not more lines)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(about())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class Redact(logging.Filter):
    """The bot's token never reaches the log: python-telegram-bot writes its API URLs, token
    and all, at DEBUG."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "<token>"), None
        return True


def formatter(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.log_format == "json" else TextFormatter()


def configure(settings: Settings, stream: Any = None) -> logging.Handler | None:
    """The root logger writes to stderr (or `stream`) in the configured format, at the
    configured level; its handler is returned. As `logging.basicConfig`, nothing is changed
    where logging was set up already (a test runner, a program that embeds the bot)."""
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(settings))
    if settings.bot_token is not None:
        handler.addFilter(Redact(settings.bot_token.get_secret_value()))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler
