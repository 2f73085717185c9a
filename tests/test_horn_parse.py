"""Reading what staff type into /horn: each rule on its own, without a store."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.services.errors import Refused
from bot.services.horn_base import Step
from bot.services.horn_parse import (
    MAX_NEEDED,
    example_time,
    example_values,
    parse_codes,
    parse_hours,
    parse_level,
    parse_needed,
    parse_text,
    parse_time,
)
from storage.models import HornLevel

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 1, 8, 20, tzinfo=TZ).timestamp()


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=TZ).timestamp()


def refused(call, *args) -> str:
    with pytest.raises(Refused) as caught:
        call(*args)
    return caught.value.key


def test_times_in_full_or_today_in_the_horns_zone():
    assert parse_time("2026-05-02 09:30", TZ, NOW) == at(2026, 5, 2, 9, 30)
    assert parse_time("2026/5/2 9:30", TZ, NOW) == at(2026, 5, 2, 9, 30)
    assert parse_time(" 09:30 ", TZ, NOW) == at(2026, 5, 1, 9, 30)   # today, there
    assert parse_time("9：05", TZ, NOW) == at(2026, 5, 1, 9, 5)       # a Chinese colon
    utc_evening = datetime(2026, 5, 1, 20, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert parse_time("07:00", TZ, utc_evening) == at(2026, 5, 2, 7, 0)  # already the 2nd there


@pytest.mark.parametrize("bad", ["24:00", "12:60", "2026-02-30 10:00", "2026-13-01 10:00",
                                 "tomorrow", "10", "10:5", "", "2026-05-01", "10:00 am"])
def test_unreadable_times_are_none(bad):
    assert parse_time(bad, TZ, NOW) is None


@pytest.mark.parametrize("word, level", [("major", HornLevel.MAJOR), (" EMERGENCY ",
                                         HornLevel.EMERGENCY), ("服务", HornLevel.SERVICE),
                                         ("攻堅", HornLevel.MAJOR), ("紧急", HornLevel.EMERGENCY)])
def test_levels_in_any_of_the_three_languages(word, level):
    assert parse_level(word) is level


def test_an_unknown_level_is_refused_with_the_word():
    with pytest.raises(Refused) as caught:
        parse_level("loud" * 20)
    assert caught.value.key == "horn.bad_level" and caught.value.values["text"] == ("loud" * 8)[:30]


def test_unit_codes_split_on_spaces_and_commas():
    assert parse_codes("B01010101 G0101") == ["B01010101", "G0101"]
    assert parse_codes("B01，B02、B03, B04") == ["B01", "B02", "B03", "B04"]
    assert refused(parse_codes, "  ,， ") == "horn.use_buttons"


def test_texts_are_trimmed_and_limited():
    assert parse_text("  Sandbags  ", 100) == "Sandbags"
    assert parse_text("x" * 100, 100) == "x" * 100
    assert refused(parse_text, "   ", 100) == "horn.need_text"
    with pytest.raises(Refused) as caught:
        parse_text("x" * 101, 100)
    assert caught.value.key == "horn.too_long" and caught.value.values == {"limit": 100}


@pytest.mark.parametrize("text, needed", [("1", 1), (" 20 ", 20), (str(MAX_NEEDED), MAX_NEEDED)])
def test_people_needed(text, needed):
    assert parse_needed(text) == needed


@pytest.mark.parametrize("bad", ["0", "-3", "2.5", "many", "", str(MAX_NEEDED + 1), "²"])
def test_people_needed_refused(bad):
    assert refused(parse_needed, bad) == "horn.bad_number"


@pytest.mark.parametrize("text, hours", [("3", 3.0), ("2.5", 2.5), ("2,5", 2.5), ("3 h", 3.0),
                                         ("1.5 hours", 1.5), ("4小时", 4.0), ("4 小時", 4.0),
                                         ("0.333", 0.33), ("100", 100.0)])
def test_hours_served(text, hours):
    assert parse_hours(text) == hours


@pytest.mark.parametrize("bad", ["0", "a lot", "", "101", "-1", "3 days"])
def test_hours_refused(bad):
    assert refused(parse_hours, bad) == "horn.bad_hours"


def test_examples_follow_what_was_typed_before():
    assert example_time(Step.START, None, None, NOW) == at(2026, 5, 1, 9, 0)    # the next hour
    assert example_time(Step.END, at(2026, 5, 1, 14, 0), None, NOW) == at(2026, 5, 1, 17, 0)
    assert example_time(Step.END, None, None, NOW) == at(2026, 5, 1, 12, 0)
    # fill-by: an hour before the end, but never later than the next hour, nor in the past
    assert example_time(Step.FILL_BY, None, at(2026, 5, 1, 17, 0), NOW) == at(2026, 5, 1, 9, 0)
    assert example_time(Step.FILL_BY, None, at(2026, 5, 1, 9, 30), NOW) == at(2026, 5, 1, 8, 30)
    assert example_time(Step.FILL_BY, None, at(2026, 5, 1, 8, 30), NOW) == NOW + 60
    assert example_values(at(2026, 5, 1, 9, 0), TZ) == {"example": "2026-05-01 09:00",
                                                        "time": "09:00"}
