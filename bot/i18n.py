"""Message catalogs (gettext `.po` under `locales/`, read with Babel) and locale choice.

Message ids are stable keys (`start.greeting`); texts use `{name}` placeholders and are HTML:
every value passed in is escaped unless it is wrapped in `Markup` (already safe HTML).
"""

from __future__ import annotations

import html
import string
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from babel.messages.pofile import read_po

LOCALES = ("zh-Hans", "zh-Hant", "en")
DEFAULT_LOCALE = "zh-Hans"
_DIRS = {"zh-Hans": "zh_Hans", "zh-Hant": "zh_Hant", "en": "en"}


class Markup(str):
    """A string that is already safe HTML (not escaped again when formatted in)."""


def escape(value: object) -> str:
    if isinstance(value, Markup):
        return value
    return html.escape(str(value), quote=False)


@lru_cache(maxsize=None)
def catalog(locale: str) -> dict[str, str]:
    """All `.po` files of a locale (one per feature: gridhorn.po, tickets.po, …) merged."""
    folder = resources.files("locales") / _DIRS[locale] / "LC_MESSAGES"
    texts: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".po"):
            continue
        with entry.open("rb") as handle:
            po = read_po(handle, locale=_DIRS[locale])
        for message in po:
            if message.id and message.string:
                if message.id in texts:
                    raise ValueError(f"{entry.name}: message {message.id} is defined twice")
                texts[str(message.id)] = str(message.string)
    return texts


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def t(locale: str, key: str, **values: object) -> str:
    """The text of `key` in `locale` (falling back to the default), values HTML-escaped."""
    text = catalog(locale if locale in _DIRS else DEFAULT_LOCALE).get(key)
    if text is None:
        text = catalog(DEFAULT_LOCALE).get(key, key)
    if not values:
        return text
    return text.format(**{k: escape(v) for k, v in values.items()})


def join_list(locale: str, items: Iterable[str]) -> str:
    """Items as a list in `locale` ("A、B" in Chinese, "A, B" in English); not escaped."""
    return t(locale, "list.sep").join(items)


@lru_cache(maxsize=1024)
def locale_from_language_code(code: str | None, default: str = DEFAULT_LOCALE) -> str:
    """Telegram's `language_code` → one of LOCALES, as SPEC §3 says: a tag with script Hant
    or region TW, HK or MO → zh-Hant; any other zh* → zh-Hans; en* → en; else the default.
    Read from the tag's own subtags: a parser that completes tags (Babel makes zh-Hant-CN
    Hans) or rejects unknown ones (zh-min-nan) would answer otherwise. Cached: every
    update asks."""
    if not code:
        return default
    first, *rest = code.strip().lower().replace("_", "-").split("-")
    if first.startswith("zh"):
        return "zh-Hant" if any(sub in ("hant", "tw", "hk", "mo") for sub in rest) \
            else "zh-Hans"
    if first.startswith("en"):
        return "en"
    return default
