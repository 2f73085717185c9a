"""Meetings (SPEC §12) as people read them: the words of the flows, the invitation with its
live count, the sign-in post, `/meetings`; and the callback data of every meeting button.

Plain functions without the store, so each text is tested on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.i18n import Markup, escape, join_list, t
from bot.services import presses
from bot.services.errors import Refused
from bot.services.ticket_views import Buttons, button, when
from storage.models import Meeting, MeetingKind, MeetingSignIn

PREFIX = "mt"  # callback data: `mt:<press>[:<arg>]`
KIND_KEYS: dict[MeetingKind, str] = {
    MeetingKind.JOINT: "meeting.kind_joint", MeetingKind.FACE_TO_FACE: "meeting.kind_face_to_face",
    MeetingKind.BUILDING: "meeting.kind_building", MeetingKind.COUNCIL: "meeting.kind_council"}
KIND_WORDS: dict[str, MeetingKind] = {
    "joint": MeetingKind.JOINT, "联席": MeetingKind.JOINT, "聯席": MeetingKind.JOINT,
    "联席会议": MeetingKind.JOINT, "聯席會議": MeetingKind.JOINT,
    "face_to_face": MeetingKind.FACE_TO_FACE, "face-to-face": MeetingKind.FACE_TO_FACE,
    "面对面": MeetingKind.FACE_TO_FACE, "面對面": MeetingKind.FACE_TO_FACE,
    "building": MeetingKind.BUILDING, "楼栋": MeetingKind.BUILDING, "樓棟": MeetingKind.BUILDING,
    "楼栋见面会": MeetingKind.BUILDING, "樓棟見面會": MeetingKind.BUILDING,
    "council": MeetingKind.COUNCIL, "恳谈会": MeetingKind.COUNCIL, "懇談會": MeetingKind.COUNCIL,
    "议事会": MeetingKind.COUNCIL, "議事會": MeetingKind.COUNCIL}
_MINUTES = re.compile(r"^(\d{1,4})\s*(?:m|min|minutes?|分钟|分鐘)?$", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
MAX_MINUTES = 24 * 60
DEADLINE_DAYS = (3, 7, 15, 30)


class Press(StrEnum):
    """Every meeting button; the flows' buttons belong to one step each."""

    KIND = "k"          # the guided flow: a kind
    SCOPE = "u"         # … a scope unit
    PUBLISH = "pub"
    CANCEL = "x"
    ATTEND = "y"        # the invitation: 参加 / Attend
    ABSENT = "n"        # … 请假 / Can't attend
    OPEN = "o"          # the organiser's "Open sign-in"
    SIGN_IN = "s"       # the sign-in post's 签到 / Sign in
    MINUTES = "m"       # after the end: record the minutes and decisions
    DOMAIN = "d"        # a decision's domain
    ASSIGNEE = "a"      # … its assignee
    DEADLINE = "t"      # … its deadline (days)
    DONE = "f"          # no more decisions


@dataclass(frozen=True)
class View:
    """A prompt or a post (HTML) and its buttons."""

    text: str
    buttons: Buttons = field(default_factory=list)


@dataclass(frozen=True)
class Attendance:
    """A meeting's answers and sign-ins, as `/meetings` and the report show them."""

    meeting: Meeting
    attending: int
    signed_in: int
    on_time: list[str]      # units present on time, in order of their first sign-in
    late: list[str]         # units present, late (none of their people on time)


def attendance(meeting: Meeting, attending: int, signins: list[MeetingSignIn]) -> Attendance:
    """A unit is present on time when one of its people signed in on time, else late."""
    on_time: list[str] = []
    late: list[str] = []
    for signin in signins:
        if not signin.late and signin.unit_code not in on_time:
            on_time.append(signin.unit_code)
    for signin in signins:
        if signin.late and signin.unit_code not in on_time and signin.unit_code not in late:
            late.append(signin.unit_code)
    return Attendance(meeting, attending, len(signins), on_time, late)


def data(press: Press, arg: str | int | None = None) -> str:
    return presses.encode(PREFIX, press, arg)


def read(raw: str) -> tuple[Press, str]:
    """A press's button and argument; a forged or unknown one is stale."""
    return presses.decode(raw, Press)


def meeting_id(arg: str) -> int:
    if not arg.isdecimal():
        raise Refused("button.stale")
    return int(arg)


def parse_kind(word: str) -> MeetingKind:
    kind = KIND_WORDS.get(word.strip().lower())
    if kind is None:
        raise Refused("meeting.bad_kind", text=word.strip()[:30])
    return kind


def parse_minutes(text: str) -> int | None:
    """A length in minutes (`90`, `90m`, `90 分钟`); None when it is not one."""
    match = _MINUTES.match(text.strip())
    if match is None:
        return None
    minutes = int(match.group(1))
    return minutes if 0 < minutes <= MAX_MINUTES else None


def parse_deadline_days(text: str, tz: ZoneInfo, now: float) -> float | None:
    """A decision's deadline typed as `YYYY-MM-DD` (the end of that day) or a number of
    days; None when unreadable."""
    text = text.strip()
    if text.isdecimal() and 0 < int(text) <= 366:
        return now + int(text) * 86400
    match = _DATE.match(text)
    if match is None:
        return None
    try:
        day = datetime(int(match.group(1)), int(match.group(2)), int(match.group(3)), tzinfo=tz)
    except ValueError:
        return None
    return (day + timedelta(days=1)).timestamp() - 60


def kind_label(locale: str, kind: MeetingKind | str) -> str:
    return t(locale, KIND_KEYS[MeetingKind(kind)])


def head(locale: str, meeting: Meeting, scope: str, tz: ZoneInfo) -> str:
    """The meeting as the invitation, the reminder and the organiser read it."""
    text = t(locale, "meeting.card", id=meeting.id, kind=kind_label(locale, meeting.kind),
             title=meeting.title, scope=scope, start=when(meeting.starts_at, tz),
             end=when(meeting.ends_at, tz)[-5:],
             place=meeting.place or t(locale, "meeting.no_place"))
    if meeting.agenda:
        text += "\n" + t(locale, "meeting.agenda", agenda=meeting.agenda)
    return text


def invitation(locale: str, meeting: Meeting, scope: str, tz: ZoneInfo, attending: int,
               absent: int) -> View:
    """The invitation with its live count, and Attend / Can't attend."""
    text = head(locale, meeting, scope, tz) + "\n\n" + t(
        locale, "meeting.count", attending=attending, absent=absent)
    return View(text, [[button(t(locale, "meeting.btn_attend"), data(Press.ATTEND, meeting.id)),
                        button(t(locale, "meeting.btn_absent"),
                               data(Press.ABSENT, meeting.id))]])


def signin_post(locale: str, meeting: Meeting, tz: ZoneInfo) -> View:
    return View(t(locale, "meeting.signin_post", id=meeting.id, title=meeting.title,
                  until=when(meeting.ends_at, tz)),
                [[button(t(locale, "meeting.btn_sign_in"), data(Press.SIGN_IN, meeting.id))]])


def units_line(locale: str, labels: dict[str, str], on_time: list[str], late: list[str]) -> str:
    """Units present on time and late (joint meetings)."""
    return t(locale, "meeting.units_present",
             on_time=join_list(locale, (labels.get(c, c) for c in on_time)) or "—",
             late=join_list(locale, (labels.get(c, c) for c in late)) or "—")


def scope_label(name: str, code: str) -> Markup:
    return Markup(f"{escape(name)} ({escape(code)})")
