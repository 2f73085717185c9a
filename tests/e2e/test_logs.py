"""JSON log lines of a running bot (SPEC §15): what is logged while an update is handled names
the update, and the ticket it turned out to be about; `gridhorn run` with
GRIDHORN_LOG_FORMAT=json writes nothing but JSON lines, at GRIDHORN_LOG_LEVEL."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal

from bot.logs import JsonFormatter
from tests.e2e.test_durability import start_bot_process
from tests.e2e.test_tickets import World
from tests.support.harness import TOKEN


async def test_the_lines_of_a_submit_name_its_update_and_ticket(harness) -> None:
    w = World(harness)
    await w.setup()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    intake = logging.getLogger("bot.intake")
    level = intake.level
    intake.addHandler(handler)
    intake.setLevel(logging.DEBUG)
    try:
        await w.submit()
    finally:
        intake.removeHandler(handler)
        intake.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    ticket = await harness.store.tickets.get(1)
    assert ticket is not None and ticket.source_update_id is not None
    submit = [e for e in lines if e.get("update_id") == ticket.source_update_id]
    assert submit and submit[-1]["ticket_id"] == 1, lines
    assert not [e for e in lines if e.get("ticket_id") and
                e["update_id"] < ticket.source_update_id]  # the text and domain: no ticket yet


async def test_gridhorn_run_with_json_logs_writes_only_json_lines(harness, tmp_path) -> None:
    log = tmp_path / "bot.log"
    bot = await start_bot_process(harness, tmp_path / "run.db", log,
                                  GRIDHORN_LOG_FORMAT="json", GRIDHORN_LOG_LEVEL="debug")
    try:
        user = harness.emu.add_user(first_name="X", language_code="en")
        harness.emu.send_text(user, "/start")
        await harness.emu.wait_until(lambda: harness.emu.messages(user.id), timeout=30)
    finally:
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0
    text = log.read_text(encoding="utf-8")
    assert TOKEN not in text and TOKEN.split(":")[1] not in text  # not even at DEBUG
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    assert {"DEBUG", "INFO"} <= {e["level"] for e in lines}
    assert any(e["logger"] == "bot.app" and e["message"].startswith("Gridhorn is running")
               for e in lines)
    assert any(e["logger"] == "bot.intake" and "update_id" in e for e in lines)
