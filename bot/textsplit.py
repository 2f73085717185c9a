"""Split HTML text into Telegram-sized messages without cutting a word or a tag."""

from __future__ import annotations

import html
import re

LIMIT = 4096
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)([^>]*)>")


def plain_text(text: str) -> str:
    """What Telegram shows of our HTML: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", text))


def visible_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 units of the text after entity parsing."""
    return len(plain_text(text).encode("utf-16-le")) // 2


def split_html(text: str, limit: int = LIMIT) -> list[str]:
    """Split at line ends, else at spaces, else anywhere outside tags and entities; tags that
    are open at a split are closed and reopened, so every part is valid HTML."""
    if visible_length(text) <= limit:
        return [text]
    parts: list[str] = []
    tokens = re.split(r"(<[^>]+>|&[#a-zA-Z0-9]+;)", text)
    current: list[str] = []
    length = 0
    open_tags: list[tuple[str, str]] = []  # (name, full opening tag)

    def flush() -> None:
        nonlocal current, length
        closing = "".join(f"</{name}>" for name, _ in reversed(open_tags))
        parts.append("".join(current) + closing)
        current = [tag for _, tag in open_tags]
        length = 0

    for token in tokens:
        if not token:
            continue
        match = _TAG.fullmatch(token)
        if match:
            name = match.group(2).lower()
            if match.group(1):
                for i in range(len(open_tags) - 1, -1, -1):
                    if open_tags[i][0] == name:
                        del open_tags[i]
                        break
            else:
                open_tags.append((name, token))
            current.append(token)
            continue
        if token.startswith("&") and token.endswith(";"):
            if length + 1 > limit:
                flush()
            current.append(token)
            length += 1
            continue
        while token:
            room = limit - length
            units = len(token.encode("utf-16-le")) // 2
            if units <= room:
                current.append(token)
                length += units
                break
            cut = _cut_point(token, room)
            if cut == 0:
                flush()
                continue
            current.append(token[:cut])
            token = token[cut:]
            flush()
    if current and (length or not parts):
        parts.append("".join(current) + "".join(f"</{n}>" for n, _ in reversed(open_tags)))
    return [p for p in parts if visible_length(p) > 0 or len(parts) == 1]


def _cut_point(token: str, room: int) -> int:
    """The longest prefix within `room` UTF-16 units, preferring a line end, then a space."""
    end = 0
    units = 0
    for index, char in enumerate(token):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > room:
            break
        end = index + 1
    if end == 0:
        return 0
    window = token[:end]
    for sep in ("\n", " "):
        pos = window.rfind(sep)
        if pos > end // 2:
            return pos + 1
    return end
