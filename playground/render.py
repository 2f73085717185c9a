"""Telegram message text plus entities to a safe HTML fragment for the playground page.

Every character of the text is HTML-escaped (newlines become ``<br>``); the only markup in the
output is built here from a whitelist of tags and attributes, one per entity type, so nothing a
user typed is ever inserted as markup::

    >>> render_html("hi <you>", [{"type": "bold", "offset": 0, "length": 2}])
    '<b>hi</b> &lt;you&gt;'

Entity offsets and lengths are UTF-16 code units, as in the Bot API. Entities that partially
overlap are split (closed and reopened) so the output is always well-formed; entities with bad
or out-of-range offsets are clipped or ignored, never raise.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["render_html", "render_plain_snippet"]

#: Entity types rendered as a ``<span>`` with a class of their own.
_SPAN_CLASSES = {
    "spoiler": "tg-spoiler",
    "mention": "tg-mention",
    "text_mention": "tg-mention",
    "hashtag": "tg-hashtag",
    "cashtag": "tg-cashtag",
    "bot_command": "tg-bot-command",
    "email": "tg-email",
    "phone_number": "tg-phone",
}
_SIMPLE_TAGS = {
    "bold": "b",
    "italic": "i",
    "underline": "u",
    "strikethrough": "s",
    "code": "code",
}
#: Opening order among entities with the same range: blocks outside, then links, then the rest.
_RANK = {"blockquote": 0, "expandable_blockquote": 0, "pre": 1, "text_link": 2, "url": 2}

_LANGUAGE = re.compile(r"[A-Za-z0-9_+-]{1,64}")
_SAFE_LINK = re.compile(r"(?:https?://|tg:)", re.IGNORECASE)
_HTTP_LINK = re.compile(r"https?://", re.IGNORECASE)
_ANY_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?!\d)")
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\s]")
_SURROGATE_OR_NUL = re.compile("[\x00\ud800-\udfff]")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_WHITESPACE = re.compile(r"\s+")


@dataclass(slots=True)
class _Span:
    start: int  # index into the Python string
    end: int
    order: int  # position in the entity list, to break ties
    rank: int
    open_tag: str
    close_tag: str


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _escape(text: str) -> str:
    text = _SURROGATE_OR_NUL.sub("\ufffd", text)
    return _NEWLINE.sub("<br>", html.escape(text, quote=True))


def _link_href(entity_type: str, entity: dict[str, Any], covered: str) -> str | None:
    """The ``href`` of a link entity, or ``None`` when it must not be a link."""
    if entity_type == "text_link":
        url = entity.get("url")
        if not isinstance(url, str):
            return None
        url = url.strip()
        if _UNSAFE_URL_CHARS.search(url) or not _SAFE_LINK.match(url):
            return None
        return url
    # url: the covered text itself is the link
    url = covered.strip()
    if not url or _UNSAFE_URL_CHARS.search(url):
        return None
    if _HTTP_LINK.match(url):
        return url
    if _ANY_SCHEME.match(url):
        return None  # javascript:, mailto:, ftp://, …: not a web link
    return "http://" + url


def _tags(entity_type: str, entity: dict[str, Any], covered: str) -> tuple[str, str] | None:
    """Opening and closing markup for one entity, or ``None`` for no element."""
    simple = _SIMPLE_TAGS.get(entity_type)
    if simple is not None:
        return f"<{simple}>", f"</{simple}>"
    span_class = _SPAN_CLASSES.get(entity_type)
    if span_class is not None:
        return f'<span class="{span_class}">', "</span>"
    if entity_type == "pre":
        language = entity.get("language")
        if isinstance(language, str) and _LANGUAGE.fullmatch(language):
            return f'<pre><code class="language-{_attr(language)}">', "</code></pre>"
        return "<pre><code>", "</code></pre>"
    if entity_type == "blockquote":
        return "<blockquote>", "</blockquote>"
    if entity_type == "expandable_blockquote":
        return '<blockquote class="tg-expandable">', "</blockquote>"
    if entity_type in ("text_link", "url"):
        href = _link_href(entity_type, entity, covered)
        if href is None:
            return None
        return (
            f'<a href="{_attr(href)}" rel="noopener noreferrer" target="_blank">',
            "</a>",
        )
    return None  # custom_emoji (its text is the emoji), unknown types


def _utf16_starts(text: str) -> list[int]:
    """``starts[i]``: UTF-16 offset of ``text[i]``; ``starts[len(text)]``: the total."""
    starts = [0] * (len(text) + 1)
    u16 = 0
    for index, char in enumerate(text):
        starts[index] = u16
        u16 += 2 if ord(char) > 0xFFFF else 1
    starts[len(text)] = u16
    return starts


def _spans(text: str, entities: Sequence[Any]) -> list[_Span]:
    starts = _utf16_starts(text) if not text.isascii() else None
    total = starts[-1] if starts is not None else len(text)
    spans: list[_Span] = []
    links: list[_Span] = []
    for order, entity in enumerate(entities):
        if not isinstance(entity, dict):
            continue
        entity_type = entity.get("type")
        offset = entity.get("offset")
        length = entity.get("length")
        if not isinstance(entity_type, str):
            continue
        if type(offset) is not int or type(length) is not int or length <= 0:
            continue
        first, last = max(offset, 0), min(offset + length, total)
        if first >= last:
            continue
        if starts is None:
            start, end = first, last
        else:  # an offset inside a surrogate pair takes the whole character
            start = bisect_right(starts, first) - 1
            end = min(bisect_left(starts, last), len(text))
        tags = _tags(entity_type, entity, text[start:end])
        if tags is None:
            continue
        span = _Span(start, end, order, _RANK.get(entity_type, 3), *tags)
        if span.open_tag.startswith("<a "):
            if any(s.start < span.end and span.start < s.end for s in links):
                continue  # a link inside a link is not valid HTML: the first one wins
            links.append(span)
        spans.append(span)
    return spans


def render_html(text: str, entities: Sequence[dict[str, Any]] | None) -> str:
    """Render a message's ``text`` and Bot API ``entities`` as a safe HTML fragment."""
    spans = _spans(text, entities or [])
    if not spans:
        return _escape(text)
    bounds = sorted({0, len(text)} | {s.start for s in spans} | {s.end for s in spans})
    opening: dict[int, list[_Span]] = {}
    for span in spans:
        opening.setdefault(span.start, []).append(span)
    out: list[str] = []
    stack: list[_Span] = []
    for here, following in zip(bounds, bounds[1:] + [len(text)], strict=True):
        ending = [k for k, span in enumerate(stack) if span.end == here]
        if ending:
            lowest = ending[0]
            popped = stack[lowest:]
            del stack[lowest:]
            out.extend(span.close_tag for span in reversed(popped))
            for span in popped:  # partially overlapping: reopen what goes on
                if span.end > here:
                    stack.append(span)
                    out.append(span.open_tag)
        for span in sorted(opening.get(here, []), key=lambda s: (-s.end, s.rank, s.order)):
            stack.append(span)
            out.append(span.open_tag)
        out.append(_escape(text[here:following]))
    out.extend(span.close_tag for span in reversed(stack))
    return "".join(out)


def render_plain_snippet(text: str, limit: int = 80) -> str:
    """``text`` on one line, at most ``limit`` characters, cut with an ellipsis."""
    flat = _WHITESPACE.sub(" ", text).strip()
    if limit <= 0:
        return ""
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rstrip() + "…"
