"""Periods in the configured time zone: months ("2026-12"), quarters ("2026-Q4"), years,
days and ISO weeks, and the last fire time of a crontab (for catch-up and patrols)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

from bot.cron import cron_trigger  # its home; still importable from here

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# How far back the last fire time of a crontab is looked for: a yearly schedule fits.
_LOOKBACK = (timedelta(hours=2), timedelta(days=2), timedelta(days=8), timedelta(days=32),
             timedelta(days=95), timedelta(days=367), timedelta(days=4 * 366 + 1))


@dataclass(frozen=True)
class Period:
    """A named span [start, end) of local time."""

    kind: str          # month | quarter | year | day | week | cron
    key: str           # "2026-12", "2026-Q4", "2026", "2026-12-01", "2026-W49", ISO start
    start: datetime
    end: datetime

    @property
    def span(self) -> tuple[float, float]:
        return self.start.timestamp(), self.end.timestamp()


def parse_month(text: str) -> str | None:
    """"2026-12" as given, or None when it is not a month like that."""
    return text if MONTH.match(text.strip()) and text == text.strip() else None


def month(key: str, tz: tzinfo) -> Period:
    year, mon = int(key[:4]), int(key[5:7])
    start = datetime(year, mon, 1, tzinfo=tz)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
    return Period("month", key, start, end)


def month_key(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def shift_month(key: str, months: int) -> str:
    index = int(key[:4]) * 12 + int(key[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def quarter(key: str, tz: tzinfo) -> Period:
    year, number = int(key[:4]), int(key[-1])
    start = datetime(year, 3 * number - 2, 1, tzinfo=tz)
    end = datetime(year + number // 4, (3 * number) % 12 + 1, 1, tzinfo=tz)
    return Period("quarter", key, start, end)


def quarter_key(moment: datetime) -> str:
    return f"{moment.year:04d}-Q{(moment.month - 1) // 3 + 1}"


def previous_quarter_key(moment: datetime) -> str:
    number = (moment.month - 1) // 3 + 1
    return f"{moment.year - 1:04d}-Q4" if number == 1 else f"{moment.year:04d}-Q{number - 1}"


def year(key: str, tz: tzinfo) -> Period:
    number = int(key)
    return Period("year", key, datetime(number, 1, 1, tzinfo=tz),
                  datetime(number + 1, 1, 1, tzinfo=tz))


def day(moment: datetime) -> Period:
    start = datetime.combine(moment.date(), datetime.min.time(), tzinfo=moment.tzinfo)
    return Period("day", moment.date().isoformat(), start, _add_days(start, 1))


def week(moment: datetime) -> Period:
    monday: date = moment.date() - timedelta(days=moment.weekday())
    start = datetime.combine(monday, datetime.min.time(), tzinfo=moment.tzinfo)
    iso = monday.isocalendar()
    return Period("week", f"{iso.year:04d}-W{iso.week:02d}", start, _add_days(start, 7))


def current(kind: str, now: datetime) -> Period:
    """The month, quarter or year (so far) that contains `now`."""
    tz = now.tzinfo
    assert tz is not None
    if kind == "month":
        return month(month_key(now), tz)
    if kind == "quarter":
        return quarter(quarter_key(now), tz)
    return year(f"{now.year:04d}", tz)


def _add_days(start: datetime, days: int) -> datetime:
    # calendar days in local time (a DST change keeps midnight at midnight)
    moved = start.date() + timedelta(days=days)
    return datetime.combine(moved, datetime.min.time(), tzinfo=start.tzinfo)


def last_fire(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The last time at or before `now` when the crontab fired (None if not within ~4 years)."""
    for back in _LOOKBACK:
        moment = trigger.get_next_fire_time(None, now - back)
        last: datetime | None = None
        while moment is not None and moment <= now:
            last = moment
            moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
        if last is not None:
            return last
    return None


def patrol_period(frequency: str | None, now: datetime) -> Period | None:
    """The period in which a grid with this patrol frequency owes one patrol."""
    if not frequency:
        return None
    if frequency == "daily":
        return day(now)
    if frequency == "weekly":
        return week(now)
    if frequency == "monthly":
        return month(month_key(now), now.tzinfo)  # type: ignore[arg-type]
    try:
        trigger = cron_trigger(frequency, now.tzinfo)  # type: ignore[arg-type]
    except ValueError:
        return None
    start = last_fire(trigger, now)
    if start is None:
        return None
    end = trigger.get_next_fire_time(start, start + timedelta(microseconds=1)) or now
    return Period("cron", start.isoformat(timespec="minutes"), start, end)
