"""Bot API request parameters: collected from every encoding, coerced on access.

Telegram accepts parameters as a query string, ``application/x-www-form-urlencoded``,
``multipart/form-data`` or a JSON body.  In the form encodings every value is a
string and structured values (``reply_markup``, ``entities``, ``commands``,
``scope``, ``allowed_updates``, ...) are JSON text; python-telegram-bot sends
all non-string values JSON-encoded and uploads files as multipart parts.
:class:`Params` hides the difference: accessors take the raw value of any
encoding and coerce it, answering ``400 Bad Request`` like Telegram would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import bad_request

__all__ = ["Params", "UploadedFile", "read_params"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file uploaded as a multipart part."""

    filename: str
    data: bytes
    content_type: str | None = None


class Params:
    """Typed access to one request's parameters."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __contains__(self, name: str) -> bool:
        return self._values.get(name) is not None

    def raw(self, name: str) -> Any:
        return self._values.get(name)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    # -- scalars -------------------------------------------------------------------------

    def string(
        self, name: str, *, required: bool = False, missing: str | None = None
    ) -> str | None:
        value = self._values.get(name)
        if value is None:
            if required:
                raise bad_request(missing or f"{name} is empty")
            return None
        if isinstance(value, UploadedFile):
            raise bad_request(f"parameter {name!r} must be a string")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if not isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
        return value

    def required_string(self, name: str, missing: str | None = None) -> str:
        value = self.string(name, required=True, missing=missing)
        assert value is not None
        return value

    def integer(
        self, name: str, *, required: bool = False, missing: str | None = None
    ) -> int | None:
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(missing or f"{name} is empty")
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f"invalid {name} specified")

    def required_integer(self, name: str, missing: str | None = None) -> int:
        value = self.integer(name, required=True, missing=missing)
        assert value is not None
        return value

    def number(self, name: str, default: float) -> float:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        raise bad_request(f"invalid {name} specified")

    def chat_id(self, name: str = "chat_id", *, required: bool = True) -> int | str | None:
        """An integer chat id or an ``@username``."""
        value = self._values.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request("chat not found")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("@"):
                return text
            try:
                return int(text)
            except ValueError:
                raise bad_request("chat not found") from None
        raise bad_request("chat not found")

    # -- structured ----------------------------------------------------------------------

    def structured(self, name: str, *, what: str | None = None) -> Any:
        """A structured value: JSON-decoded if it arrived as text."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name + ' JSON object'}") from None
        if isinstance(value, UploadedFile):
            raise bad_request(f"can't parse {what or name + ' JSON object'}")
        return value

    def file(self, name: str) -> UploadedFile | str | None:
        """An uploaded file, or a ``file_id``/URL string (``attach://x`` resolved)."""
        value = self._values.get(name)
        if value is None or isinstance(value, UploadedFile):
            return value
        if isinstance(value, str):
            if value.startswith("attach://"):
                attached = self._values.get(value[len("attach://") :])
                if isinstance(attached, UploadedFile):
                    return attached
                raise bad_request(f"file {value!r} not found in the request")
            return value
        raise bad_request(f"invalid {name} specified")


async def read_params(request: web.Request) -> Params:
    """Collect parameters from the query string and any supported body encoding."""
    values: dict[str, Any] = dict(request.query)
    if not request.body_exists:
        return Params(values)
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON encoded request body") from None
        if body is not None and not isinstance(body, dict):
            raise bad_request("JSON request body must be an object")
        values.update(body or {})
    elif content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        values.update({key: value for key, value in form.items() if isinstance(value, str)})
    elif content_type.startswith("multipart/"):
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                data = bytes(await part.read(decode=False))
                values[part.name] = UploadedFile(
                    part.filename, data, part.headers.get("Content-Type")
                )
            else:
                values[part.name] = await part.text()
    else:
        # Telegram ignores bodies it does not understand; so do we.
        await request.read()
    return Params(values)
