"""`gridhorn run` as an operator starts it: commands set, /start answered, clean stop."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.e2e.test_durability import start_bot_process

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
        assert "网格集结号" in harness.emu.messages(users["zh-CN"].id)[0].text
        assert "網格集結號" in harness.emu.messages(users["zh-HK"].id)[0].text
        assert "I am Gridhorn" in harness.emu.messages(users["en-US"].id)[0].text
        assert ("all_private_chats", "en") in harness.emu.commands
    finally:
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 30) == 0
