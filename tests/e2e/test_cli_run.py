"""`gridhorn run` as an operator starts it: commands set, /start answered, clean stop."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.e2e.test_durability import start_bot_process
from tests.support.texts import shown

pytestmark = pytest.mark.asyncio


async def test_gridhorn_run_sets_menus_and_greets_in_three_languages(harness, tmp_path):
    bot = await start_bot_process(harness, tmp_path / "run.db", tmp_path / "bot.log")
    try:
        users = {code: harness.emu.add_user(first_name="X", language_code=code)
                 for code in ("zh-CN", "zh-HK", "en-US")}
        for user in users.values():
            harness.emu.send_text(user, "/start")
        await harness.emu.wait_until(
            lambda: all(harness.emu.messages(u.id) for u in users.values()), timeout=30)
        for code, locale in (("zh-CN", "zh-Hans"), ("zh-HK", "zh-Hant"), ("en-US", "en")):
            assert shown(locale, "start.greeting", name="X") in \
                harness.emu.messages(users[code].id)[0].text
        assert ("all_private_chats", "en") in harness.emu.commands
    finally:
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0


@pytest.mark.parametrize("case", ["folder is a file", "not a database"])
async def test_gridhorn_run_with_an_unusable_database_says_so_in_one_line(harness, tmp_path, case):
    """SPEC §8: one short line naming GRIDHORN_DATABASE_URL, before anything else (Telegram
    is not even asked), and no traceback."""
    if case == "folder is a file":
        (tmp_path / "data").write_text("not a folder\n", encoding="utf-8")
        db_path, reason = tmp_path / "data" / "run.db", f"{tmp_path / 'data'} is not a directory"
    else:
        db_path, reason = tmp_path / "notes.db", "file is not a database"
        db_path.write_text("meeting notes, not a database\n" * 10, encoding="utf-8")
    log = tmp_path / "bot.log"
    bot = await start_bot_process(harness, db_path, log)
    assert await asyncio.wait_for(bot.wait(), 30) == 2
    lines = log.read_text(encoding="utf-8").strip().splitlines()
    assert lines == [f"gridhorn: GRIDHORN_DATABASE_URL: cannot open sqlite:///{db_path}: {reason}"]
    assert harness.emu.stats.total == 0
