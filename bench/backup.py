"""`gridhorn backup` of a 100,000-ticket store while the bot keeps answering (SPEC §15, issue
20).

A county of 200 buildings holds `--tickets` tickets (each with its timeline's first row);
`gridhorn run` runs on it as a process, and a resident sends `/help` every `--every` seconds
all along. Meanwhile `gridhorn backup FILE` runs as an operator runs it (its own process).
Figures: the store's size, the backup's wall time (the process, start-up included, and what
it says of the copy itself), the copy's `PRAGMA integrity_check`, and the answers to `/help`
before and during the backup (command → answer in the emulator, p50 / max). Targets: the
backup completes and its copy is sound and whole; every `/help` sent during it is answered,
none slower than 1 s.

    .venv/bin/python -m bench.backup [--tickets 100000] [--every 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import time
from pathlib import Path

from bench.common import (
    ROOT,
    BotProcess,
    Report,
    bot_env,
    build_world,
    percentile,
    quiesce_schedules,
    settings_values,
    start_emulator,
    workdir,
)
from bench.tickets_page import fill
from bot import eventloop
from emulator import BotAPIEmulator, EmuUser
from storage.store import Store


async def ask(emu: BotAPIEmulator, user: EmuUser) -> float:
    """`/help` once: seconds until its answer reached the emulator."""
    seen = len(emu.messages(user.id))
    sent = time.monotonic()
    emu.send_text(user, "/help")
    await emu.wait_until(lambda: len(emu.messages(user.id)) > seen, timeout=30)
    return emu.messages(user.id)[-1].sent_at - sent


async def measure(report: Report, count: int, every: float, keep: bool) -> None:
    with workdir(keep) as tmp:
        emu = await start_emulator(None)
        bot: BotProcess | None = None
        try:
            db_path = tmp / "gridhorn.db"
            values = settings_values(emu, db_path, rate_overall_per_s=1000,
                                     rate_chat_per_s=1000, rate_group_per_min=1000)
            store = await Store.open_sqlite(str(db_path))
            world = await build_world(emu, store, buildings=200, per_grid=20,
                                      bind_buildings=False)
            started = time.monotonic()
            await fill(store, world, count, world.owner.id)
            async with store.transaction():
                for ticket_id in range(1, count + 1):
                    await store.tickets.add_event(ticket_id, world.owner.id, "created")
            await quiesce_schedules(store, values)
            await store.close()
            report.figure("tickets written", f"{count} in {time.monotonic() - started:.1f} s")
            size = sum(p.stat().st_size for p in tmp.glob("gridhorn.db*"))
            report.figure("store size", f"{size / 1e6:.1f} MB")

            resident = emu.add_user("居民", language_code="zh-hans")
            bot = BotProcess(bot_env(values), tmp / "bot.log")
            await bot.start()
            await ask(emu, resident)  # up, and warm
            baseline = [await ask(emu, resident) for _ in range(20)]

            during: list[float] = []
            target = tmp / "copy.db"
            backing_up = asyncio.create_task(_backup(values["database_url"], target))
            began = time.monotonic()
            while not backing_up.done():
                during.append(await ask(emu, resident))
                await asyncio.sleep(every)
            wall = time.monotonic() - began
            code, said = await backing_up
            assert bot.proc is not None and bot.proc.returncode is None, bot.log_tail()
        finally:
            if bot is not None:
                await bot.stop()
            await emu.stop()
        report.figure("gridhorn backup (process, start-up included)", f"{wall:.2f} s")
        report.figure("what it said", said.strip())
        checked = time.monotonic()
        with contextlib.closing(sqlite3.connect(target)) as copy:
            sound = copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            copied = copy.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        report.figure("the copy's integrity_check", f"{'ok' if sound else 'FAILED'} in "
                      f"{time.monotonic() - checked:.1f} s; {copied} tickets")
    report.figure("/help answered before p50 / max",
                  f"{percentile(baseline, 50) * 1000:.0f} ms / {max(baseline) * 1000:.0f} ms")
    report.figure("/help answered during the backup p50 / max",
                  f"{percentile(during, 50) * 1000:.0f} ms / {max(during) * 1000:.0f} ms "
                  f"({len(during)} asked)")
    report.target("the backup completes, its copy sound and whole",
                  code == 0 and sound and copied == count, f"exit {code}, {copied} tickets")
    report.target("the bot answers all along, none slower than 1 s",
                  bool(during) and max(during) < 1.0,
                  f"{len(during)} answered, max {max(during or [0]) * 1000:.0f} ms")


async def _backup(database_url: str, target: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "backup", str(target), cwd=ROOT,
        env=bot_env({"database_url": database_url}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--every", type=float, default=0.1,
                        help="seconds between two /help during the backup")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    report = Report(f"gridhorn backup of a {args.tickets}-ticket store while the bot answers")
    eventloop.run(measure(report, args.tickets, args.every, args.keep), "asyncio")
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())
