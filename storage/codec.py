"""JSON for what the store keeps and the bot sends: orjson (a burst's receipts, drafts, inbox
rows and outbox payloads are encoded and decoded on the hot path; the standard library's
encoder was a tenth of a Submit's CPU). Same text as `json.dumps(..., ensure_ascii=False)`
up to spacing; non-string keys become strings as there."""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps_bytes(value: Any) -> bytes:
    """UTF-8 JSON. Raises TypeError for a value JSON cannot carry."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # a lone surrogate in a str (no valid UTF-8), which orjson refuses: escaped, as the
        # standard library does; anything else JSON cannot carry raises TypeError there
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode("utf-8")


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # an escaped lone surrogate (see dumps); else raises too
