"""Nothing a resident sends is lost: SIGKILL the bot mid-burst, start it again (SPEC §4)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from storage.store import Store
from tests.support.env import child_env
from tests.support.harness import TOKEN, consent, seed_map

pytestmark = pytest.mark.asyncio
ROOT = Path(__file__).resolve().parents[2]
RESIDENTS = 50


async def start_bot_process(harness, db_path: Path, log: Path | None = None,
                            **extra: str) -> asyncio.subprocess.Process:
    """`gridhorn run` as a real process, pointed at the emulator."""
    env = child_env(**{
        "GRIDHORN_BOT_TOKEN": TOKEN,
        "GRIDHORN_API_BASE_URL": harness.emu.base_url,
        "GRIDHORN_DATABASE_URL": f"sqlite:///{db_path}",
        "GRIDHORN_QUIET_HOURS": "",
        **extra,
    })
    handle = log.open("ab") if log is not None else None
    try:  # the child keeps its own copy of the log's file descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=handle if handle is not None else asyncio.subprocess.DEVNULL)
    finally:
        if handle is not None:
            handle.close()


def receipts(harness, user) -> list[str]:
    return [m.text for m in harness.emu.messages(user.id) if "您的意见已登记为" in m.text]


async def test_sigkill_mid_burst_loses_and_doubles_nothing(harness, tmp_path):
    db_path = tmp_path / "gridhorn.db"
    store = await Store.open_sqlite(str(db_path))
    await seed_map(store)
    residents = [harness.emu.add_user(first_name=f"居民{i}", language_code="zh-hans")
                 for i in range(RESIDENTS)]
    async with store.transaction():
        for user in residents:
            await store.people.ensure(user.id)
            await store.people.set_building(user.id, "B01010101")
    await consent(store, *(user.id for user in residents))
    await store.close()

    # slow enough sending that the kill lands while receipts are still going out
    slow = {"GRIDHORN_RATE_OVERALL_PER_S": "25"}
    log = tmp_path / "bot.log"
    bot = await start_bot_process(harness, db_path, log, **slow)
    try:
        for user in residents:
            harness.emu.send_text(user, f"{user.first_name}：电梯坏了")
        await harness.emu.wait_until(
            lambda: all(harness.emu.messages(u.id) and harness.emu.messages(u.id)[-1].buttons
                        for u in residents), timeout=30)
        for user in residents:  # everyone taps Submit at once
            harness.emu.press(user, harness.emu.messages(user.id)[-1], "dr:submit")
        await harness.emu.wait_until(
            lambda: sum(len(receipts(harness, u)) for u in residents) >= 5, timeout=30)
        bot.send_signal(signal.SIGKILL)
        await bot.wait()
    finally:
        if bot.returncode is None:
            bot.kill()
            await bot.wait()

    delivered = sum(len(receipts(harness, u)) for u in residents)
    assert delivered < RESIDENTS, "the kill came after the burst; the test proves nothing"
    with sqlite3.connect(db_path) as db:
        sent = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent' "
                          "AND payload LIKE '%您的意见已登记为%'").fetchone()[0]
    in_flight = delivered - sent  # delivered by Telegram but not yet recorded as sent

    bot = await start_bot_process(harness, db_path, log)
    try:
        await harness.emu.wait_until(
            lambda: all(receipts(harness, u) for u in residents), timeout=60)
        await harness.emu.wait_until(lambda: not harness.emu.pending_updates(), timeout=30)
        # the staff cards and the draft cards' edits follow the receipts
        await until_outbox_empty(db_path, timeout=60)
    finally:
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0

    with sqlite3.connect(db_path) as db:
        tickets = db.execute("SELECT reporter_id, COUNT(*) FROM tickets "
                             "GROUP BY reporter_id").fetchall()
        pending = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    assert len(tickets) == RESIDENTS and all(count == 1 for _, count in tickets)
    assert pending == 0
    doubled = [u.id for u in residents if len(receipts(harness, u)) > 1]
    assert all(len(receipts(harness, u)) >= 1 for u in residents)
    assert len(doubled) <= in_flight, (doubled, in_flight)


async def until_outbox_empty(db_path: Path, timeout: float) -> None:
    """The bot records a call as sent after the emulator has answered it, in another process:
    no emulator event follows the last recording, so the database itself is watched."""
    async with asyncio.timeout(timeout):
        while pending_in_outbox(db_path):
            await asyncio.sleep(0.05)


def pending_in_outbox(db_path) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
