"""A feature's button data: `<prefix>:<press>[:<arg>]`, the press one of the feature's own
`StrEnum`. Read back, a forged or unknown press is stale (callback data is client input)."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from bot.services.errors import Refused

P = TypeVar("P", bound=StrEnum)


def encode(prefix: str, press: StrEnum, arg: object | None = None) -> str:
    return f"{prefix}:{press}" if arg is None else f"{prefix}:{press}:{arg}"


def decode(raw: str, kind: type[P]) -> tuple[P, str]:
    """The press and its argument ("" without one)."""
    _, _, rest = raw.partition(":")
    code, _, arg = rest.partition(":")
    try:
        return kind(code), arg
    except ValueError:
        raise Refused("button.stale") from None
