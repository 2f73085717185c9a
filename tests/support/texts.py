"""The texts end-to-end tests expect, built from the catalogs as people see them.

The bot sends HTML; Telegram (and the emulator) shows the text without its tags and with its
entities decoded. `shown` says a catalog text that way. Texts with a count or a duration go
through the helpers below, which say a count's noun in the catalogs' plural forms (Babel's),
as the bot does.
"""

from __future__ import annotations

from bot.i18n import escape, t, tn
from bot.textsplit import plain_text
from emulator.html import parse_html


def plain(html_text: str) -> str:
    """What a person sees of an HTML text: parsed as the emulator (and Telegram) parses it."""
    return parse_html(html_text).text


def shown(locale: str, key: str, **values: object) -> str:
    """A catalog text, with its values, as a person sees it."""
    return plain(t(locale, key, **values))


def duration(locale: str, seconds: float) -> str:
    """A duration as the bot words it ("24 hours", "1 day", "1.5 hours", "15 days"): whole
    days, else hours, minutes or seconds, each with its noun in the count's form."""
    if seconds >= 86400 and seconds % 86400 == 0:
        days = int(seconds // 86400)
        return tn(locale, "duration.n_days", days, n=days)
    for size, whole, fraction in ((3600, "duration.n_hours", "duration.fraction_hours"),
                                  (60, "duration.n_minutes", "duration.fraction_minutes")):
        if seconds >= size:
            amount = seconds / size
            if amount.is_integer():
                return tn(locale, whole, int(amount), n=int(amount))
            return t(locale, fraction, n=f"{amount:g}")
    return tn(locale, "duration.n_seconds", int(seconds), n=int(seconds))


# the values of a text that are counts, each said with its noun by a plural text
COUNTED = {
    "horn.published_to": {"chats": "horn.n_chats", "people": "horn.n_volunteers"},
    "horn.attendance": {"points": "horn.n_points", "rate": "horn.n_points"},
    "horn.confirmed": {"points": "horn.n_points", "people": "horn.n_people"},
    "horn.credited": {"points": "horn.n_points"},
}


def counted(locale: str, key: str, **values: object) -> str:
    """A text that states counts (people, chats, points), as a person sees it: a count that
    has a noun is given as a number and said in its plural form."""
    said = dict(values)
    for name, noun in COUNTED.get(key, {}).items():
        count = values[name]
        assert isinstance(count, int), f"{key}: {name} is a count"
        said[name] = tn(locale, noun, count, n=count)
    return shown(locale, key, **said)


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
