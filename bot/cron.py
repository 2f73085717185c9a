"""Crontab expressions as APScheduler 3 triggers, read the way crontab reads them.

Below both the settings (which check the expressions at start-up) and the services (which
schedule them), so neither reaches into the other.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from apscheduler.triggers.cron import CronTrigger

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression: str, tz: tzinfo) -> CronTrigger:
    """A standard 5-field crontab as an APScheduler 3 trigger. `CronTrigger.from_crontab`
    reads weekday numbers its own way (0 = Monday); crontab's are 0 or 7 = Sunday, 1 = Monday,
    so numbers are turned into day names first."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day_of_month, month_field, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day_of_month, month=month_field,
                       day_of_week=_weekdays(weekday), timezone=tz)


def _weekdays(field: str) -> str:
    if field in ("*", "?"):
        return "*"
    names: list[str] = []
    for item in field.split(","):
        body, slash, step_text = item.partition("/")
        if body == "*":
            low, high = 0, 6
        elif body.isdigit():
            low = int(body)
            high = 6 if slash else low
        elif re.fullmatch(r"\d+-\d+", body):
            low, high = (int(n) for n in body.split("-"))
        else:  # day names (mon-fri) mean the same to both
            names.append(item)
            continue
        step = int(step_text) if step_text.isdigit() else (1 if not slash else 0)
        if not 0 <= low <= high <= 7 or step < 1:
            raise ValueError(f"bad weekday {item!r} (0-7, 0 and 7 are Sunday)")
        names += [_WEEKDAYS[d] for d in range(low, high + 1, step)]
    return ",".join(dict.fromkeys(names))
