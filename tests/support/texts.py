"""The texts end-to-end tests expect, built from the catalogs as people see them.

The bot sends HTML; Telegram (and the emulator) shows the text without its tags and with its
entities decoded. `shown` says a catalog text that way. Texts with a count or a duration go
through the helpers below, so that the day the catalogs say plurals their own way (Babel's
plural forms), one place follows.
"""

from __future__ import annotations

from bot.i18n import escape, t
from bot.textsplit import plain_text
from emulator.html import parse_html


def plain(html_text: str) -> str:
    """What a person sees of an HTML text: parsed as the emulator (and Telegram) parses it."""
    return parse_html(html_text).text


def shown(locale: str, key: str, **values: object) -> str:
    """A catalog text, with its values, as a person sees it."""
    return plain(t(locale, key, **values))


def duration(locale: str, seconds: float) -> str:
    """A duration as the bot words it ("24 hours", "1 day", "15 days")."""
    if seconds >= 86400 and seconds % 86400 == 0:
        n, unit = seconds / 86400, "day"
    elif seconds >= 3600:
        n, unit = seconds / 3600, "hour"
    elif seconds >= 60:
        n, unit = seconds / 60, "minute"
    else:
        n, unit = float(int(seconds)), "second"
    key = {("day", True): "duration.day", ("day", False): "duration.days",
           ("hour", True): "duration.hour", ("hour", False): "duration.hours",
           ("minute", True): "duration.minute", ("minute", False): "duration.minutes",
           ("second", True): "duration.second", ("second", False): "duration.seconds"}
    return t(locale, key[unit, n == 1], n=f"{n:g}")


def counted(locale: str, key: str, **values: object) -> str:
    """A text that states counts (people, chats, check-ins), as a person sees it."""
    return shown(locale, key, **values)


def check_ins(locale: str, count: int, needed: int, waiting: int = 0) -> str:
    """The live counter every copy of a horn shows ("👥 报到 2/2 · 候补 1")."""
    text = t(locale, "horn.counter", count=count, needed=needed)
    if waiting:
        text += t(locale, "horn.counter_waiting", waiting=waiting)
    return plain(text)


def line_of(locale: str, key: str, placeholder: str, **values: object) -> str:
    """The line of a multi-line catalog text that holds `{placeholder}`, filled in and as a
    person sees it (to check one line of a long text such as /me)."""
    line = next(line for line in t(locale, key).splitlines() if f"{{{placeholder}}}" in line)
    return plain(line.format(**{name: escape(value) for name, value in values.items()}))


def before(locale: str, key: str, placeholder: str, **values: object) -> str:
    """The line of `key` that holds `{placeholder}`, up to it, filled in and as shown (a
    text's opening words, when what follows is a time or another moving value). A piece of
    a line may open a tag it does not close: its tags are dropped, not parsed."""
    line = next(line for line in t(locale, key).splitlines() if f"{{{placeholder}}}" in line)
    head = line[:line.index(f"{{{placeholder}}}")]
    return plain_text(head.format(**{name: escape(value) for name, value in values.items()}))


def label(locale: str, key: str, placeholder: str, value: object) -> str:
    """The words the catalog puts right before `{placeholder}` (since the value before it),
    followed by `value`: one figure of a line of several ("巡查 1", "Place: 北门")."""
    text = t(locale, key)
    end = text.index(f"{{{placeholder}}}")
    start = max(text.rfind("}", 0, end) + 1, text.rfind("\n", 0, end) + 1)
    return plain_text(text[start:end] + escape(value))
