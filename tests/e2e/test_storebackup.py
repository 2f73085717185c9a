"""`gridhorn backup`, `restore` and `check` beside a running bot (SPEC §15)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.cli import main
from storage.store import Store
from tests.e2e.test_durability import ROOT, start_bot_process
from tests.support.env import child_env
from tests.support.harness import seed_map
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio
RESIDENTS = 150


def ticket_ids(db_path: Path) -> set[int]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return {row[0] for row in db.execute("SELECT id FROM tickets")}


async def test_a_backup_in_a_burst_of_submits_holds_every_ticket_committed_before_it(
        harness, tmp_path, monkeypatch) -> None:
    w_db = tmp_path / "gridhorn.db"
    await harness.start_bot()
    store = harness.store
    await seed_map(store)
    residents = [harness.emu.add_user(first_name=f"居民{i}", language_code="zh-hans")
                 for i in range(RESIDENTS)]
    async with store.transaction():
        for user in residents:
            await store.people.ensure(user.id)
            await store.people.set_building(user.id, "B01010101")
            await store.privacy.consent(user.id, 0.0)  # agreed before (SPEC §14)
    for user in residents:
        harness.emu.send_text(user, f"{user.first_name}：电梯坏了")
    await harness.settle(timeout=60)
    for user in residents:  # everyone taps Submit at once
        harness.emu.press(user, harness.emu.messages(user.id)[-1], "dr:submit")
    async with asyncio.timeout(30):
        while len(ticket_ids(w_db)) < 5:
            await asyncio.sleep(0.005)

    committed = ticket_ids(w_db)  # before the backup begins
    monkeypatch.setenv("GRIDHORN_ENV_FILE", "")
    monkeypatch.setenv("GRIDHORN_DATABASE_URL", f"sqlite:///{w_db}")
    copy = tmp_path / "copy.db"
    assert await asyncio.to_thread(main, ["backup", str(copy)]) == 0  # the bot goes on
    await harness.settle(timeout=60)

    assert len(committed) < RESIDENTS, "the backup came after the burst: it proves nothing"
    assert len(ticket_ids(w_db)) == RESIDENTS
    with contextlib.closing(sqlite3.connect(copy)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        copied = {row[0] for row in db.execute("SELECT id FROM tickets")}
    assert committed <= copied, committed - copied
    assert not list(tmp_path.glob("*.partial"))


async def cli(db_path: Path, *args: str) -> tuple[int, str]:
    """`gridhorn ARGS` as an operator runs it, beside the bot's process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=ROOT,
        env=child_env(GRIDHORN_DATABASE_URL=f"sqlite:///{db_path}"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_restore_is_refused_while_the_bot_runs_and_brings_the_backup_back(
        harness, tmp_path) -> None:
    db_path = tmp_path / "run.db"
    store = await Store.open_sqlite(str(db_path))
    await seed_map(store)
    await store.close()
    bot = await start_bot_process(harness, db_path, tmp_path / "bot.log")
    try:
        before = harness.emu.add_user(first_name="Early", language_code="en")
        harness.emu.send_text(before, "/start")
        await harness.emu.wait_until(lambda: harness.emu.messages(before.id), timeout=30)
        code, said = await cli(db_path, "backup", str(tmp_path / "b.db"))
        assert code == 0 and "backup of" in said, said  # beside `gridhorn run`'s lock
        later = harness.emu.add_user(first_name="Late", language_code="en")
        harness.emu.send_text(later, "/start")
        await harness.emu.wait_until(lambda: harness.emu.messages(later.id), timeout=30)
        code, said = await cli(db_path, "restore", str(tmp_path / "b.db"))
        assert code == 2 and f"a bot is running on {db_path}" in said, said
        assert "stop it before restoring" in said
    finally:
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0

    code, said = await cli(db_path, "restore", str(tmp_path / "b.db"))
    assert code == 0 and "restored from" in said, said
    assert Path(f"{db_path}.before-restore").is_file()
    code, said = await cli(db_path, "check")
    assert code == 0 and said.rstrip().endswith("all is well"), said
    store = await Store.open_sqlite(str(db_path))
    try:  # the person who came after the backup is not in the store any more
        assert await store.people.get(before.id) is not None
        assert await store.people.get(later.id) is None
    finally:
        await store.close()
    assert shown("en", "start.greeting", name="Late") in harness.emu.messages(later.id)[0].text
