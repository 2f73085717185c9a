"""Reading what staff type into /horn: levels, unit codes, texts, numbers, times and hours.

Plain functions without the store, so each rule is tested on its own. A bad answer is a
`Refused` whose key says what was wrong; the flow then asks the same step again.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from bot.services.errors import Refused
from bot.services.horn_base import Step
from storage.models import HornLevel

MAX_NEEDED = 10_000
MAX_HOURS = 100
PAST_TOLERANCE = 3600         # a start may lie this far in the past (an emergency under way)
LEVEL_WORDS: dict[str, HornLevel] = {
    "service": HornLevel.SERVICE, "服务": HornLevel.SERVICE, "服務": HornLevel.SERVICE,
    "major": HornLevel.MAJOR, "攻坚": HornLevel.MAJOR, "攻堅": HornLevel.MAJOR,
    "emergency": HornLevel.EMERGENCY, "紧急": HornLevel.EMERGENCY, "緊急": HornLevel.EMERGENCY}
_TIME = re.compile(r"^(?:(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s+)?(\d{1,2})[:：](\d{2})$")
_HOURS = re.compile(r"^(\d+(?:[.,]\d+)?)\s*(?:h|hours?|小时|小時)?$", re.IGNORECASE)
_CODE_SEPARATORS = re.compile(r"[\s,，、]+")


def parse_level(word: str) -> HornLevel:
    """`major`, `攻坚` or `攻堅` (any case) → the level."""
    level = LEVEL_WORDS.get(word.strip().lower())
    if level is None:
        raise Refused("horn.bad_level", text=word[:30])
    return level


def parse_codes(text: str) -> list[str]:
    """Unit codes separated by spaces or commas (Chinese ones too); at least one."""
    codes = [code for code in _CODE_SEPARATORS.split(text.strip()) if code]
    if not codes:
        raise Refused("horn.use_buttons")
    return codes


def parse_text(text: str, limit: int) -> str:
    text = text.strip()
    if not text:
        raise Refused("horn.need_text")
    if len(text) > limit:
        raise Refused("horn.too_long", limit=limit)
    return text


def parse_needed(text: str) -> int:
    """How many people: a whole number from 1 to MAX_NEEDED."""
    text = text.strip()
    if not text.isdecimal() or not 1 <= int(text) <= MAX_NEEDED:
        raise Refused("horn.bad_number", text=text[:30])
    return int(text)


def parse_time(text: str, tz: tzinfo, now: float) -> float | None:
    """`YYYY-MM-DD HH:MM`, or `HH:MM` for today in `tz`; None when unreadable."""
    match = _TIME.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute = match.groups()
    try:
        if year is None:
            today = datetime.fromtimestamp(now, tz).date()
            moment = datetime(today.year, today.month, today.day, int(hour), int(minute),
                              tzinfo=tz)
        else:
            moment = datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=tz)
    except ValueError:
        return None
    return moment.timestamp()


def parse_hours(text: str) -> float:
    """Hours served: `2.5`, `2,5`, `3 h`, `3 小时`; more than 0, at most MAX_HOURS."""
    match = _HOURS.match(text.strip())
    hours = float(match.group(1).replace(",", ".")) if match else 0.0
    if not 0 < hours <= MAX_HOURS:
        raise Refused("horn.bad_hours")
    return round(hours, 2)


def example_time(step: Step, start: float | None, end: float | None, now: float) -> float:
    """The time a prompt shows as an example: the next full hour for the start, three hours
    later for the end, an hour before the end (but in the future) for the fill-by time."""
    hour = 3600
    soon = (int(now) // hour + 1) * hour
    if step == Step.START:
        return soon
    if step == Step.END:
        return (start or soon) + 3 * hour
    return max(now + 60, min(soon, (end or soon + hour) - hour))


def example_values(moment: float, tz: tzinfo) -> dict[str, str]:
    """An example time as the prompts and refusals show it (in full, and as `HH:MM`)."""
    shown = datetime.fromtimestamp(moment, tz)
    return {"example": shown.strftime("%Y-%m-%d %H:%M"), "time": shown.strftime("%H:%M")}
