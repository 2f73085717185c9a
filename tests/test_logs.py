"""The log (SPEC §15): GRIDHORN_LOG_FORMAT=json writes one JSON object per line (time, level,
logger, message, and the update, ticket and horn a line is about); GRIDHORN_LOG_LEVEL; bad
values are one line naming the variable."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from bot import logcontext, logs
from bot.settings import SettingsError, load_settings
from storage.inbox import UpdateMark, current_update


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("bot.intake", logging.WARNING, __file__, 1, message, args,
                             exc_info)


def test_a_json_line_names_the_update_ticket_and_horn_it_is_about() -> None:
    formatter = logs.JsonFormatter()
    plain = json.loads(formatter.format(record("hello %s", "there")))
    assert set(plain) == {"time", "level", "logger", "message"}
    assert (plain["level"], plain["logger"], plain["message"]) == \
        ("WARNING", "bot.intake", "hello there")
    assert plain["time"].endswith("+00:00")
    token = current_update.set(UpdateMark(4242))
    try:
        with logcontext.fresh():
            logcontext.tag(ticket_id=7)
            logcontext.tag(horn_id=3)
            line = formatter.format(record("about them", exc=True))
        after = json.loads(formatter.format(record("the update goes on")))
    finally:
        current_update.reset(token)
    assert "\n" not in line  # a traceback is a field, not more lines
    entry = json.loads(line)
    assert (entry["update_id"], entry["ticket_id"], entry["horn_id"]) == (4242, 7, 3)
    assert "ValueError: boom" in entry["exception"]
    assert after["update_id"] == 4242 and "ticket_id" not in after  # its context is over
    logcontext.tag(ticket_id=9)  # outside an update: nothing to tag
    assert "ticket_id" not in json.loads(formatter.format(record("later")))


def test_configure_writes_the_format_at_the_level_and_leaves_a_set_up_logging_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    stream = io.StringIO()
    settings = load_settings(log_format="json", log_level="error", bot_token="1:SECRET")
    handler = logs.configure(settings, stream)
    assert handler is not None
    try:
        assert root.level == logging.ERROR
        logging.getLogger("bot.test").warning("not written")
        logging.getLogger("bot.test").error("written at %s", "https://x/bot1:SECRET/getMe")
        assert logs.configure(settings, io.StringIO()) is None  # set up already
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == \
        ["written at https://x/bot<token>/getMe"]  # the token never reaches the log
    text = logs.formatter(load_settings())
    assert text.format(record("plain")).endswith("WARNING bot.intake: plain")


@pytest.mark.parametrize(("values", "line"), [
    ({"log_format": "xml"}, "GRIDHORN_LOG_FORMAT: Input should be 'text' or 'json'"),
    ({"log_level": "loud"}, "GRIDHORN_LOG_LEVEL: Input should be 'DEBUG', 'INFO', "
                            "'WARNING', 'ERROR' or 'CRITICAL'"),
])
def test_a_bad_log_setting_is_one_line_naming_it(values: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**values)
    assert str(caught.value) == line
    assert load_settings(log_format=" JSON ", log_level="warning").log_level == "WARNING"
    assert load_settings().log_format == "text" and load_settings().log_level == "INFO"
