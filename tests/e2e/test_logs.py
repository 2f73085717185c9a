"""JSON log lines of a running bot (SPEC §15): what is logged while an update is handled names
the update, and the ticket it turned out to be about."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import JsonFormatter
from tests.e2e.test_tickets import World


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
