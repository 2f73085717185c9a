"""Message catalogs (gettext `.po` under `locales/`, read with Babel) and locale choice.

Message ids are stable keys (`start.greeting`); texts use `{name}` placeholders and are HTML:
every value passed in is escaped unless it is wrapped in `Markup` (already safe HTML). A text
that depends on a count is a gettext plural entry (`msgid_plural`, `msgstr[n]`) whose msgid and
msgid_plural are both its key; `tn` picks its form with Babel's `ngettext`, by the rule in the
catalog's `Plural-Forms` header (one form in Chinese, two in English). Keys are written out in
code, never built, so tests/test_i18n.py sees every one.
"""

from __future__ import annotations

import html
import io
import string
from collections.abc import Iterable
from functools import cache, lru_cache
from importlib import resources
from typing import TypeAlias, TypeVar

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("zh-Hans", "zh-Hant", "en")
DEFAULT_LOCALE = "zh-Hans"
_DIRS = {"zh-Hans": "zh_Hans", "zh-Hant": "zh_Hant", "en": "en"}


_Text = TypeVar("_Text", str, tuple[str, ...])

#: A catalog key carried in data (a table's row, an answer) to where it is said. Declaring a
#: field or a return as one lets tests/test_i18n.py check every value written to it.
CatalogKey: TypeAlias = str


class Markup(str):
    """A string that is already safe HTML (not escaped again when formatted in)."""


def escape(value: object) -> str:
    if isinstance(value, Markup):
        return value
    return html.escape(str(value), quote=False)


@cache
def po_files(locale: str) -> tuple[Catalog, ...]:
    """The `.po` files of a locale, one per feature (gridhorn.po, tickets.po, …)."""
    folder = resources.files("locales") / _DIRS[locale] / "LC_MESSAGES"
    files = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".po"):
            with entry.open("rb") as handle:
                files.append(read_po(handle, locale=_DIRS[locale], domain=entry.name[:-3]))
    return tuple(files)


@cache
def catalog(locale: str) -> dict[str, str]:
    """The texts of a locale's `.po` files merged, by key (plural texts: see `plurals`)."""
    texts: dict[str, str] = {}
    for po in po_files(locale):
        for message in po:
            if message.id and message.string and not message.pluralizable:
                _add(texts, po, str(message.id), str(message.string))
    return texts


@cache
def plurals(locale: str) -> dict[str, tuple[str, ...]]:
    """The plural texts of a locale: key → its forms, in the order of its Plural-Forms."""
    texts: dict[str, tuple[str, ...]] = {}
    for po in po_files(locale):
        for message in po:
            forms = message.string
            if message.pluralizable and isinstance(forms, tuple | list) and any(forms):
                _add(texts, po, str(message.id[0]), tuple(str(form) for form in forms))
    return texts


def _add(texts: dict[str, _Text], po: Catalog, key: str, text: _Text) -> None:
    if key in texts:
        raise ValueError(f"{po.domain}.po: message {key} is defined twice")
    texts[key] = text


@cache
def translations(locale: str) -> Translations:
    """A locale's catalogs compiled in memory: Babel's `ngettext` with their plural rule."""
    merged: Translations | None = None
    for po in po_files(locale):
        compiled = io.BytesIO()
        write_mo(compiled, po)
        compiled.seek(0)
        loaded = Translations(compiled, domain=po.domain)
        merged = loaded if merged is None else merged.merge(loaded)
    assert merged is not None, f"no catalogs for {locale}"
    return merged


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def t(locale: str, key: str, **values: object) -> str:
    """The text of `key` in `locale` (falling back to the default), values HTML-escaped."""
    text = catalog(locale if locale in _DIRS else DEFAULT_LOCALE).get(key)
    if text is None:
        text = catalog(DEFAULT_LOCALE).get(key, key)
    return _format(text, values)


def tn(locale: str, key: str, n: int, /, **values: object) -> str:
    """The form of plural text `key` for the count `n` in `locale` (falling back to the
    default), values HTML-escaped. `n` only picks the form: pass the count as a value too
    (`tn(locale, "theme.posted_now", posted, count=posted)`).
    Counts are whole numbers; an amount with a fraction ("1.5 hours") has a text of its own,
    as gettext's rules are made for integers."""
    if locale not in _DIRS or key not in plurals(locale):
        locale = DEFAULT_LOCALE
    return _format(translations(locale).ngettext(key, key, n), values)


def _format(text: str, values: dict[str, object]) -> str:
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


DAY = 86400
# a span's unit: (seconds in it, its plural text for a whole number, its text for a fraction)
DURATION_UNITS = (
    (DAY, "duration.n_days", None),
    (3600, "duration.n_hours", "duration.fraction_hours"),
    (60, "duration.n_minutes", "duration.fraction_minutes"),
    (1, "duration.n_seconds", None),
)


def duration(locale: str, seconds: float) -> str:
    """A span of time in words, "1 day", "7 days", "1.5 hours": days when whole, else the
    largest unit it fills; seconds are whole."""
    for size, whole, fraction in DURATION_UNITS:
        if size == 1 or seconds >= size and (size != DAY or seconds % DAY == 0):
            amount = seconds / size if size > 1 else float(int(seconds))
            if amount.is_integer() or fraction is None:
                return tn(locale, whole, int(amount), n=int(amount))
            return t(locale, fraction, n=f"{amount:g}")
    raise AssertionError("the last unit, seconds, takes any span")
