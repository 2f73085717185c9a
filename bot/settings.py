"""Settings from `GRIDHORN_*` environment variables or a `.env` file (SPEC §8).

The file is `.env` in the working directory; `GRIDHORN_ENV_FILE` names another one, or none
when empty (the tests set it so: a developer's `.env` never reaches them).
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot import eventloop
from bot.cron import cron_trigger  # crontab's weekday numbers, not APScheduler's
from bot.eventloop import EventLoop

ENV_PREFIX = "GRIDHORN_"
ENV_FILE_VARIABLE = ENV_PREFIX + "ENV_FILE"
Locale = Literal["zh-Hans", "zh-Hant", "en"]
Urgency = Literal["routine", "major", "urgent"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse `90s`, `15m`, `24h` or `7d`."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 24h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class Deadlines(BaseModel):
    """Time allowed to acknowledge, to accept a whistle and to resolve."""

    acknowledge: timedelta
    accept: timedelta
    resolve: timedelta

    @classmethod
    def parse(cls, value: object) -> Deadlines:
        if isinstance(value, Deadlines):
            return value
        parts = [p for p in str(value).split(",")]
        if len(parts) != 3:
            raise ValueError(
                "expected three durations: acknowledge,accept,resolve (e.g. 24h,24h,7d)")
        ack, accept, resolve = (parse_duration(p) for p in parts)
        return cls(acknowledge=ack, accept=accept, resolve=resolve)


ASSESS_PARTS = ("evaluation", "ontime", "rating", "patrol", "participation")


class AssessWeights(BaseModel):
    """The annual assessment's composite (SPEC §12): a weight per measure, summing to 100."""

    evaluation: int
    ontime: int
    rating: int
    patrol: int
    participation: int

    @classmethod
    def parse(cls, value: object) -> AssessWeights:
        if isinstance(value, AssessWeights):
            return value
        weights: dict[str, int] = {}
        for part in str(value).split(","):
            name, sep, number = part.partition("=")
            name = name.strip()
            if not sep or name not in ASSESS_PARTS or name in weights \
                    or not number.strip().isdigit():
                raise ValueError(
                    "expected name=weight for each of " + ", ".join(ASSESS_PARTS)
                    + " (e.g. evaluation=40,ontime=20,rating=20,patrol=10,participation=10)")
            weights[name] = int(number.strip())
        if set(weights) != set(ASSESS_PARTS) or sum(weights.values()) != 100:
            raise ValueError("expected a weight for each of " + ", ".join(ASSESS_PARTS)
                             + ", summing to 100")
        return cls(**weights)

    def items(self) -> list[tuple[str, int]]:
        return [(name, getattr(self, name)) for name in ASSESS_PARTS]


class QuietHours(BaseModel):
    """A daily window (may cross midnight) when routine and service group posts wait."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def is_loopback(host: str) -> bool:
    """A name or address of this machine only (a webhook over plain http, the playground's
    clients)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets: `[::1]:8443`) → (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not an address like 127.0.0.1:8443")
    return host, int(port)


def _parse_hhmm(text: str) -> time:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{text!r} is not a time like 22:00")
    return time(int(match.group(1)), int(match.group(2)))


class Settings(BaseSettings):
    """Every setting of SPEC §8; tests pass overrides to the initialiser."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    bot_token: SecretStr | None = None
    api_base_url: str = "https://api.telegram.org/bot"
    database_url: str = "sqlite:///gridhorn.db"
    superadmins: Annotated[frozenset[int], NoDecode] = frozenset()
    timezone: str = "Asia/Shanghai"
    default_locale: Locale = "zh-Hans"

    theme_cron: str = "0 9 1 * *"
    report_cron: str = "0 10 1 * *"
    board_cron: str = "0 10 1 1,4,7,10 *"
    theme_reminder_cron: str = "0 9 25 * *"
    # daily checks: patrol reminders, and the month's theme to building chats bound since
    daily_cron: str = "0 9 * * *"
    # SPEC §12: the monthly evaluation (for the month before the fire time); the annual
    # assessment's composite weights and its bottom band ("not competent" below it)
    evaluation_cron: str = "0 9 1 * *"
    assess_weights: Annotated[AssessWeights, NoDecode] = AssessWeights.parse(
        "evaluation=40,ontime=20,rating=20,patrol=10,participation=10")
    assess_bottom_band: float = Field(60, ge=0, le=100)
    # member units (SPEC §10): each post's holders asked "Still serving?" once a month
    post_check_cron: str = "0 9 1 * *"
    # SPEC §10: the residents' quarterly vote on each estate's property unit (群众评单)
    vote_cron: str = "0 10 1 1,4,7,10 *"

    deadlines_routine: Annotated[Deadlines, NoDecode] = Deadlines.parse("24h,24h,7d")
    deadlines_major: Annotated[Deadlines, NoDecode] = Deadlines.parse("12h,24h,15d")
    deadlines_urgent: Annotated[Deadlines, NoDecode] = Deadlines.parse("1h,2h,24h")

    rate_overall_per_s: float = Field(30, gt=0)
    rate_group_per_min: float = Field(20, gt=0)
    rate_chat_per_s: float = Field(1, gt=0)
    # Bot API calls made by a child process (`bot.httpworker`): the HTTP client's CPU on the
    # second core
    http_worker: bool = True
    # the bot's event loop: asyncio's own, or uvloop (opt-in; the `uvloop` extra)
    event_loop: EventLoop = "asyncio"

    horn_resound_min: float = Field(10, gt=0)
    opinions_per_hour: int = Field(10, ge=1)
    quiet_hours: Annotated[QuietHours | None, NoDecode] = QuietHours(start=time(22), end=time(7))

    # `gridhorn run --webhook` (SPEC §16): where Telegram posts updates, the secret it sends
    # with each, and the address the bot's own HTTP server listens on (behind a TLS proxy)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    listen: str = "127.0.0.1:8443"
    #: `/healthz` (SPEC §15): off unless a port is given; on 127.0.0.1 unless told otherwise
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    #: the log (SPEC §15): `text` lines for a person, or `json`, one object per line; and
    #: the least level written
    log_format: Literal["text", "json"] = "text"
    log_level: LogLevel = "INFO"

    # meetings (SPEC §12): invitees reminded this long before the start; a unit signed in
    # later than this after the start is late; grids without a face-to-face meeting nudged
    meeting_reminder: str = "1h"
    meeting_late: str = "10m"
    meeting_nudge_cron: str = "0 9 20 * *"
    #: SPEC §14: raw updates handled and older than this are deleted (by the daily run)
    raw_retention: Annotated[timedelta, NoDecode] = timedelta(days=30)

    @field_validator("bot_token", mode="before")
    @classmethod
    def _token(cls, value: object) -> object:
        """`GRIDHORN_BOT_TOKEN=` (empty, as in a template .env) is no token, not a bad one."""
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        """`info` or `INFO`: the case is not the point."""
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, value: EventLoop) -> EventLoop:
        if not eventloop.available(value):
            raise ValueError(eventloop.UVLOOP_MISSING)
        return value

    @field_validator("superadmins", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("expected comma-separated Telegram user ids") from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("deadlines_routine", "deadlines_major", "deadlines_urgent", mode="before")
    @classmethod
    def _deadlines(cls, value: object) -> Deadlines:
        return Deadlines.parse(value)

    @field_validator("raw_retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> object:
        if isinstance(value, str):
            value = parse_duration(value)
        if isinstance(value, timedelta) and value <= timedelta(0):
            raise ValueError("the retention must be longer than nothing, e.g. 30d")
        return value

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _quiet(cls, value: object) -> object:
        if value is None or isinstance(value, QuietHours):
            return value
        text = str(value).strip()
        if not text:
            return None
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError("expected a window like 22:00-07:00, or empty for none")
        return QuietHours(start=_parse_hhmm(start), end=_parse_hhmm(end))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("assess_weights", mode="before")
    @classmethod
    def _weights(cls, value: object) -> AssessWeights:
        return AssessWeights.parse(value)

    @field_validator("theme_cron", "report_cron", "board_cron", "theme_reminder_cron",
                     "daily_cron", "meeting_nudge_cron", "evaluation_cron", "post_check_cron",
                     "vote_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            cron_trigger(value, ZoneInfo("UTC"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a crontab expression: {exc}") from None
        return value

    @field_validator("meeting_reminder", "meeting_late")
    @classmethod
    def _meeting_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        # "sqlite:///" alone would give sqlite3 an empty path: a temporary database, lost
        if value.startswith("sqlite:///") and value.removeprefix("sqlite:///").strip():
            return value
        parts = urlsplit(value)
        if parts.scheme in ("postgresql", "postgres") and (parts.hostname or parts.query):
            return value
        raise ValueError("expected sqlite:///relative.db, sqlite:////absolute/path.db or "
                         "postgresql://user@host:5432/database")

    @field_validator("api_base_url")
    @classmethod
    def _api(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL like https://api.telegram.org/bot")
        return value

    @field_validator("webhook_url", "webhook_secret", "metrics_port", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        # Telegram posts only to https; plain http only to this machine (the emulator)
        loopback = parts.scheme == "http" and is_loopback(parts.hostname or "")
        if not parts.hostname or not (parts.scheme == "https" or loopback) or parts.fragment:
            raise ValueError("expected an https:// URL like https://bot.example.org/telegram "
                             "(http:// only on 127.0.0.1)")
        try:
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise ValueError(f"{value!r} has a bad port") from None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("expected 1 to 256 characters of A-Z, a-z, 0-9, _ and - "
                             "(what Telegram accepts as secret_token)")
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_listen(self.listen)

    @property
    def webhook_path(self) -> str:
        return urlsplit(self.webhook_url or "").path or "/"

    def check_webhook(self) -> None:
        """`--webhook` needs the URL and the secret."""
        missing = [env_name(name) for name in ("webhook_url", "webhook_secret")
                   if getattr(self, name) is None]
        if missing:
            raise SettingsError("; ".join(f"{name}: required with --webhook"
                                          for name in missing))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sqlite_path(self) -> str:
        return self.database_url.removeprefix("sqlite:///")

    @property
    def database_url_shown(self) -> str:
        """The database URL without its password (for messages and logs)."""
        parts = urlsplit(self.database_url)
        if parts.password is None:
            return self.database_url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def api_base_file_url(self) -> str:
        base = self.api_base_url
        return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base

    @property
    def meeting_reminder_s(self) -> float:
        return parse_duration(self.meeting_reminder).total_seconds()

    @property
    def meeting_late_s(self) -> float:
        return parse_duration(self.meeting_late).total_seconds()

    def deadlines(self, urgency: Urgency) -> Deadlines:
        return {"routine": self.deadlines_routine, "major": self.deadlines_major,
                "urgent": self.deadlines_urgent}[urgency]


class SettingsError(Exception):
    """A setting is missing or bad; the message names its environment variable."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def env_file() -> str | None:
    """The .env file to read: `.env`, or what GRIDHORN_ENV_FILE names (empty: none)."""
    path = os.environ.get(ENV_FILE_VARIABLE)
    if path is None:
        return ".env"  # read if it exists
    if not path:
        return None
    if not os.path.isfile(path):
        raise SettingsError(f"{ENV_FILE_VARIABLE}: no such file: {path}")
    return path


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation error into one short line per bad variable."""
    try:
        return Settings(_env_file=env_file(), **overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            reason = error["msg"].removeprefix("Value error, ")
            lines.append(f"{env_name(field)}: {reason}")
        raise SettingsError("; ".join(lines)) from None
