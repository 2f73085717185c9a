"""How a horn looks: posts with their live counter, the flow's prompts and preview, the
attendance list, in the reader's language.

Buttons are plain dicts for the outbox and the handlers; their callback data is built by
`horn_codes`. Catalog keys are written out in full (the mappings below), so the catalogs'
completeness test sees each one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot import labels
from bot.i18n import escape, t, tn
from bot.services.horn_codes import FlowPress, HornPress, UnitPress, flow_data, horn_data, unit_data
from bot.services.ticket_views import Buttons, button, when
from storage.models import SKILLS, Availability, Horn, HornLevel, Skill, Unit

LEVEL_EMOJI: dict[HornLevel, str] = {HornLevel.SERVICE: "🤝", HornLevel.MAJOR: "📯",
                                     HornLevel.EMERGENCY: "🚨"}
LEVEL_KEYS: dict[HornLevel, str] = {HornLevel.SERVICE: "horn.level.service",
                                    HornLevel.MAJOR: "horn.level.major",
                                    HornLevel.EMERGENCY: "horn.level.emergency"}
AVAILABILITY_KEYS: dict[Availability, str] = {
    Availability.WEEKDAYS: "avail.weekdays", Availability.WEEKENDS: "avail.weekends",
    Availability.EVENINGS: "avail.evenings", Availability.ANYTIME: "avail.anytime"}
MAX_TOGGLES = 90   # names on the attendance list; the rest keep their mark


@dataclass(frozen=True)
class View:
    """A text to show (HTML) and its buttons."""

    text: str
    buttons: Buttons = field(default_factory=list)


def time_span(start: float | None, end: float | None, tz: ZoneInfo) -> str:
    """`2026-05-01 14:00 – 18:00` (the end's date only when it differs)."""
    if start is None:
        return "—"
    first = datetime.fromtimestamp(start, tz)
    if end is None:
        return first.strftime("%Y-%m-%d %H:%M")
    last = datetime.fromtimestamp(end, tz)
    tail = last.strftime("%H:%M") if last.date() == first.date() else \
        last.strftime("%Y-%m-%d %H:%M")
    return f"{first.strftime('%Y-%m-%d %H:%M')} – {tail}"


def level_label(locale: str, level: HornLevel) -> str:
    return f"{LEVEL_EMOJI[level]} {t(locale, LEVEL_KEYS[level])}"


def skill_label(locale: str, skill: str) -> str:
    """A skill in `locale`; one the catalog does not know (an old profile's) as it is."""
    return t(locale, labels.SKILL[skill]) if skill in SKILLS else skill


def skills_label(locale: str, skills: Iterable[str]) -> str:
    return ", ".join(skill_label(locale, s) for s in skills) or t(locale, "horn.any_skill")


def scope_label(units: list[Unit]) -> str:
    return ", ".join(f"{u.name} ({u.code})" for u in units)


def hours_text(hours: float) -> str:
    return f"{hours:g}"


def points_text(locale: str, points: int) -> str:
    """Time-bank points with their noun in the count's form ("1 point", "20 points")."""
    return tn(locale, "horn.n_points", points, n=points)


def counter(locale: str, count: int, needed: int, waiting: int) -> str:
    text = t(locale, "horn.counter", count=count, needed=needed)
    if waiting:
        text += t(locale, "horn.counter_waiting", waiting=waiting)
    return text


def post_text(locale: str, horn: Horn, units: list[Unit], count: int, waiting: int,
              tz: ZoneInfo) -> str:
    """A copy of the horn (group post or private call-up) with its live counter."""
    lines = [t(locale, "horn.post_head", emoji=LEVEL_EMOJI[horn.level],
               level=t(locale, LEVEL_KEYS[horn.level]), id=horn.id, title=horn.title)]
    if horn.details:
        lines.append(escape(horn.details))
    if horn.place:
        lines.append(t(locale, "horn.line_place", place=horn.place))
    if horn.starts_at is not None:
        lines.append(t(locale, "horn.line_time", time=time_span(horn.starts_at, horn.ends_at,
                                                                  tz)))
    if horn.skills:
        lines.append(t(locale, "horn.line_skills", skills=skills_label(locale, horn.skills)))
    if horn.fill_by is not None and horn.active:
        lines.append(t(locale, "horn.line_fill_by", at=when(horn.fill_by, tz)))
    lines.append(t(locale, "horn.line_scope", scope=scope_label(units)))
    line = counter(locale, count, horn.needed, 0)
    if horn.units_called:  # member units (SPEC §10): `报到 12/20 · 单位 2`
        line += t(locale, "unit.horn_counter", units=horn.units_pledged)
    lines.append(line + (t(locale, "horn.counter_waiting", waiting=waiting) if waiting else ""))
    if not horn.active:
        lines.append(t(locale, "horn.line_closed"))
    return "\n".join(lines)


def post_buttons(locale: str, horn: Horn) -> Buttons:
    if not horn.active:
        return []
    rows = [[button(t(locale, "horn.btn_check_in"), horn_data(HornPress.CHECK_IN, horn.id)),
             button(t(locale, "horn.btn_cant_come"), horn_data(HornPress.CANT_COME, horn.id))]]
    if horn.units_called:  # member units' contacts pledge people (SPEC §10)
        rows.append([button(t(locale, "unit.horn_btn_pledge"),
                            unit_data(UnitPress.PLEDGE, horn.id))])
    return rows


def owner_buttons(locale: str, horn: Horn) -> Buttons:
    return [[button(t(locale, "horn.btn_close"), horn_data(HornPress.CLOSE, horn.id))]] \
        if horn.active else []


def close_confirm_buttons(locale: str, horn: Horn) -> Buttons:
    return [[button(t(locale, "horn.btn_close_confirm"),
                    horn_data(HornPress.CLOSE_CONFIRMED, horn.id)),
             button(t(locale, "horn.btn_keep_open"), horn_data(HornPress.KEEP_OPEN, horn.id))]]


def preview(locale: str, data: dict[str, Any], units: list[Unit], tz: ZoneInfo) -> View:
    none = "—"
    text = t(locale, "horn.preview",
             level=level_label(locale, HornLevel(data["level"])), scope=scope_label(units),
             title=data.get("title") or none, details=data.get("details") or none,
             place=data.get("place") or none, start=when(data.get("start"), tz),
             end=when(data.get("end"), tz), needed=data.get("needed") or none,
             fill_by=when(data.get("fill_by"), tz),
             skills=skills_label(locale, data.get("skills") or []))
    if data.get("units"):  # member units called too (SPEC §10)
        text += "\n" + t(locale, "unit.horn_preview", units=", ".join(data["units"]))
    return View(text, [[button(t(locale, "horn.btn_publish"), flow_data(FlowPress.PUBLISH)),
                        button(t(locale, "horn.btn_cancel"), flow_data(FlowPress.CANCEL))]])


def skill_buttons(locale: str, chosen: list[str], toggle: Callable[[Skill], str],
                  done_label: str, done_data: str) -> Buttons:
    """Two skills a row, the chosen ones ticked; `toggle` gives a skill's callback data."""
    rows: Buttons = []
    row: list[dict[str, str]] = []
    for skill in SKILLS:
        mark = "✅ " if skill in chosen else ""
        row.append(button(f"{mark}{t(locale, labels.SKILL[skill])}", toggle(skill)))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    rows.append([button(done_label, done_data)])
    return rows


def availability_label(locale: str, availability: str | None) -> str:
    if not availability:
        return t(locale, "volunteer.not_given")
    keys = Availability.read(availability)
    if keys is None:
        return availability
    return ", ".join(t(locale, AVAILABILITY_KEYS[k]) for k in keys)


def attendance(locale: str, horn: Horn, rows: list[tuple[int, str, bool]],
               points_per_hour: int, units: Iterable[tuple[Unit, int, int]] = ()) -> View:
    """The owner's list: one toggle per person checked in, the hours, Confirm."""
    hours = horn.hours or 0
    present = sum(1 for _, _, here in rows if here)
    points = round(hours * points_per_hour)
    if horn.confirmed_at is not None:
        text = t(locale, "horn.confirmed", id=horn.id,
                 people=tn(locale, "horn.n_people", present, n=present),
                 hours=hours_text(hours), points=points_text(locale, points))
        for unit, people, _ in units:  # member units' people-hours (SPEC §10)
            text += "\n" + t(locale, "unit.horn_credited", unit=f"{unit.name} ({unit.code})",
                              people=people, hours=hours_text(people * hours))
        return View(text)
    text = t(locale, "horn.attendance", id=horn.id, title=horn.title, hours=hours_text(hours),
             points=points_text(locale, points), rate=points_text(locale, points_per_hour),
             present=present, total=len(rows))
    buttons: Buttons = [[button(f"{'✅' if here else '⬜'} {name}",
                                horn_data(HornPress.TOGGLE_PRESENT, horn.id, person_id))]
                        for person_id, name, here in rows[:MAX_TOGGLES]]
    if len(rows) > MAX_TOGGLES:  # Telegram takes at most 100 buttons on a message
        text += "\n" + t(locale, "horn.attendance_more", count=len(rows) - MAX_TOGGLES)
    for unit, people, pledged in units:  # member units (SPEC §10): the owner's number each
        text += "\n" + t(locale, "unit.horn_attendance", unit=f"{unit.name} ({unit.code})",
                          people=people, pledged=pledged)
        buttons.append([button(f"➖ {unit.name} {people}", unit_data(UnitPress.LESS, horn.id,
                                                                      unit.code)),
                        button("➕", unit_data(UnitPress.MORE, horn.id, unit.code))])
    buttons.append([button(t(locale, "horn.btn_hours"), horn_data(HornPress.ASK_HOURS, horn.id)),
                    button(t(locale, "horn.btn_confirm"), horn_data(HornPress.CONFIRM, horn.id))])
    return View(text, buttons)


def list_line(locale: str, horn: Horn, count: int, may_close: bool) -> str:
    title = horn.title if len(horn.title) <= 40 else horn.title[:39] + "…"
    line = t(locale, "horns.line", id=horn.id, emoji=LEVEL_EMOJI[horn.level], title=title,
             count=count, needed=horn.needed)
    return f"{line} — /horn_close {horn.id}" if may_close else line
