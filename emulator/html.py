"""Telegram's ``parse_mode=HTML``: parser, validator and entity builder.

The algorithm follows TDLib's ``parse_html`` (which is what the real Bot API
server runs), so the emulator accepts what Telegram accepts, rejects what it
rejects, and reports the same reasons and UTF-8 *byte offsets*::

    >>> parse_html("<b>hi</b> &amp; bye").text
    'hi & bye'
    >>> parse_html("a <foo> b")
    Traceback (most recent call last):
    ...
    emulator.html.HtmlParseError: Unsupported start tag "foo" at byte offset 2

Entity offsets and lengths are counted in UTF-16 code units, like the Bot API.

One deliberate difference: Telegram keeps an unknown named entity such as
``&nbsp;`` literally, which usually means the bot forgot to escape user input.
With ``strict_entities=True`` (the default) the emulator rejects it instead, so
tests catch the bug; pass ``strict_entities=False`` for Telegram's leniency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HtmlParseError",
    "ParsedText",
    "parse_html",
    "strip_formatted",
    "utf16_len",
]

#: Tags the Bot API understands (``span`` only with ``class="tg-spoiler"``).
SUPPORTED_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
        "tg-spoiler", "tg-emoji", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip

_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = frozenset(" \t\r\n\v\0")
_SPECIAL = re.compile(r"[<&]")
_UNKNOWN_NAMED_ENTITY = re.compile(r"&[A-Za-z][A-Za-z0-9]*;")
_TG_USER_LINK = re.compile(r"tg://user\?id=(\d+)$", re.IGNORECASE)
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_ALLOWED_SCHEMES = frozenset({"http", "https", "tg", "ton", "tonsite"})
#: Characters Telegram trims from both ends of a message text or caption.
TRIM_CHARS = " \t\n\r\v\f"


class HtmlParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(err)`` is Telegram's reason."""


@dataclass(frozen=True, slots=True)
class ParsedText:
    """Plain text plus Bot API ``MessageEntity`` dicts (UTF-16 offsets)."""

    text: str
    entities: list[dict[str, Any]]


@dataclass(slots=True)
class _OpenTag:
    name: str
    argument: str
    offset: int  # UTF-16 offset in the output where the tag started
    chunk_index: int  # index into the output chunk list where the tag started


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what Telegram counts)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _decode_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference at ``text[pos] == "&"`` like TDLib.

    Returns ``(character, position after the reference)`` or ``None`` when the
    ampersand does not start a supported reference.
    """
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
        else:
            while end < n and "0" <= text[end] <= "9":
                value = value * 10 + ord(text[end]) - 48
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
            return None
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None
        char = named
    if end < n and text[end] == ";":
        end += 1
    return char, end


def _check_link(url: str) -> str | None:
    """Normalise a link target; ``None`` if Telegram would drop the link."""
    url = url.strip()
    if not url or any(c in url for c in " \t\n"):
        return None
    match = _URL_SCHEME.match(url)
    if match:
        scheme = match.group(1).lower()
        if scheme in _ALLOWED_SCHEMES:
            return url
        if url.startswith("//", match.end()):
            return None  # some other protocol, e.g. ftp:// or javascript://
    host = url.split("/", 1)[0]
    if "." in host and not host.startswith(".") and not host.endswith("."):
        return "http://" + url
    return None


def parse_html(text: str, *, strict_entities: bool = True) -> ParsedText:
    """Parse Telegram HTML into plain text and entities.

    Raises :class:`HtmlParseError` with Telegram's wording, e.g.
    ``Unsupported start tag "foo" at byte offset 2`` or
    ``Can't find end tag corresponding to start tag "b"``.

    ``text_mention`` links (``tg://user?id=N``) come back as
    ``{"type": "text_mention", "user_id": N, ...}``; the caller resolves the user.
    """
    n = len(text)
    chunks: list[str] = []
    entities: list[dict[str, Any]] = []
    stack: list[_OpenTag] = []
    u16 = 0
    i = 0

    def fail(reason: str, index: int | None = None) -> HtmlParseError:
        if index is None:
            return HtmlParseError(reason)
        return HtmlParseError(f"{reason} at byte offset {_byte_offset(text, index)}")

    while i < n:
        match = _SPECIAL.search(text, i)
        stop = match.start() if match else n
        if stop > i:
            plain = text[i:stop]
            chunks.append(plain)
            u16 += utf16_len(plain)
            i = stop
            if i >= n:
                break

        if text[i] == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                char, i = decoded
                chunks.append(char)
                u16 += 2 if ord(char) > 0xFFFF else 1
                continue
            if strict_entities:
                unknown = _UNKNOWN_NAMED_ENTITY.match(text, i)
                if unknown:
                    raise fail(f'Unsupported HTML entity "{unknown.group()}"', i)
            chunks.append("&")
            u16 += 1
            i += 1
            continue

        # text[i] == "<"
        begin = i
        i += 1
        if i >= n or text[i] != "/":
            # ---- start tag -------------------------------------------------
            while i < n and text[i] not in _SPACES and text[i] != ">":
                i += 1
            if i >= n:
                raise fail("Unclosed start tag", begin)
            tag = text[begin + 1 : i].lower()
            if tag not in SUPPORTED_TAGS:
                raise fail(f'Unsupported start tag "{tag}"', begin)

            argument = ""
            while not (i < n and text[i] == ">"):
                while i < n and text[i] in _SPACES:
                    i += 1
                if i < n and text[i] == ">":
                    break
                attr_begin = i
                while i < n and text[i] not in _SPACES and text[i] not in "=>":
                    i += 1
                attr_name = text[attr_begin:i]
                if not attr_name:
                    raise fail(f'Empty attribute name in the tag "{tag}"', begin)
                while i < n and text[i] in _SPACES:
                    i += 1
                if i >= n or text[i] != "=":
                    if tag == "blockquote" and attr_name.lower() == "expandable":
                        argument = "expandable"
                        continue
                    raise fail(
                        f'Expected equal sign in declaration of an attribute of the tag "{tag}"',
                        begin,
                    )
                i += 1
                while i < n and text[i] in _SPACES:
                    i += 1
                if i >= n:
                    raise fail(f'Unclosed start tag "{tag}"', begin)

                if text[i] not in "'\"":
                    token_begin = i
                    while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if i < n and text[i] not in _SPACES and text[i] != ">":
                        raise fail("Unexpected end of name token", token_begin)
                else:
                    quote = text[i]
                    i += 1
                    value_chars: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_entity(text, i)
                            if decoded is not None:
                                value_chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        value_chars.append(text[i])
                        i += 1
                    if i < n:
                        i += 1
                    value = "".join(value_chars)
                if i >= n:
                    raise fail("Unclosed start tag", begin)

                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value

            if tag == "span" and argument != "spoiler":
                raise fail('Tag "span" must have class "tg-spoiler"', begin)
            stack.append(_OpenTag(tag, argument, u16, len(chunks)))
            i += 1  # skip ">"
            continue

        # ---- end tag -----------------------------------------------------------
        if not stack:
            raise fail("Unexpected end tag", begin)
        i += 1  # skip "/"
        while i < n and text[i] not in _SPACES and text[i] != ">":
            i += 1
        end_name = text[begin + 2 : i].lower()
        while i < n and text[i] in _SPACES:
            i += 1
        if i >= n or text[i] != ">":
            raise fail("Unclosed end tag", begin)
        open_tag = stack[-1]
        if end_name and end_name != open_tag.name:
            raise fail(
                f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                f'expected "</{open_tag.name}>", found "</{end_name}>"'
            )
        if u16 > open_tag.offset:
            entity = _make_entity(open_tag, u16 - open_tag.offset, chunks, entities)
            if entity is not None:
                entities.append(entity)
        stack.pop()
        i += 1  # skip ">"

    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')

    entities = [_drop_code_language(e) for e in entities]
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(chunks), entities)


def _make_entity(
    tag: _OpenTag, length: int, chunks: list[str], entities: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Build the entity for a closed tag (or merge into the previous one)."""
    base: dict[str, Any] = {"offset": tag.offset, "length": length}
    simple = _SIMPLE_TAG_TYPES.get(tag.name)
    if simple is not None:
        return {"type": simple, **base}
    if tag.name == "blockquote":
        kind = "expandable_blockquote" if tag.argument else "blockquote"
        return {"type": kind, **base}
    if tag.name == "tg-emoji":
        if not tag.argument.isdigit() or int(tag.argument) == 0:
            raise HtmlParseError("Invalid custom emoji identifier specified")
        return {"type": "custom_emoji", **base, "custom_emoji_id": tag.argument}
    if tag.name == "a":
        url = tag.argument or "".join(chunks[tag.chunk_index :])
        mention = _TG_USER_LINK.match(url.strip())
        if mention:
            return {"type": "text_mention", **base, "user_id": int(mention.group(1))}
        checked = _check_link(url)
        return None if checked is None else {"type": "text_link", **base, "url": checked}
    last = entities[-1] if entities else None
    same_range = last is not None and last["offset"] == tag.offset and last["length"] == length
    if tag.name == "pre":
        if same_range and last is not None and last["type"] == "code":
            language = last.pop("language", None)
            last["type"] = "pre"
            if language:
                last["language"] = language
            return None
        return {"type": "pre", **base}
    # code
    if same_range and last is not None and last["type"] == "pre":
        if tag.argument:
            last["language"] = tag.argument
        return None
    entity = {"type": "code", **base}
    if tag.argument:
        entity["language"] = tag.argument  # kept only if a <pre> wraps it
    return entity


def strip_formatted(
    text: str, entities: list[dict[str, Any]], chars: str = TRIM_CHARS
) -> tuple[str, list[dict[str, Any]]]:
    """Trim leading/trailing whitespace like Telegram, fixing entity ranges."""
    stripped = text.strip(chars)
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip(chars))])
    new_len = utf16_len(stripped)
    fixed: list[dict[str, Any]] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, new_len)
        if end > start:
            fixed.append({**entity, "offset": start, "length": end - start})
    return stripped, fixed


def _drop_code_language(entity: dict[str, Any]) -> dict[str, Any]:
    if entity["type"] == "code" and "language" in entity:
        entity = {k: v for k, v in entity.items() if k != "language"}
    return entity
