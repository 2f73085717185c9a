"""Submit burst (issue 3): 1,000 residents press Submit within one second.

    python -m bench.submit_burst [--residents 1000] [--buildings 20] [--spread 1.0]

The bot runs as its own process (`gridhorn run`, the production entry point) against the
emulator in this process on 127.0.0.1, with the emulator's flood limits off and the bot's own
rate settings raised: the benchmark measures the bot, not Telegram's limits. 1,000 residents
live in 20 buildings (50 each; 4 grids of 5 buildings, each grid with a bound staff chat, each
building with a head who has started the bot). Every resident first writes an opinion and is
shown the draft card; then all press Submit, spread evenly over one second.

Measured per resident: press → the receipt (`#N`) arriving at the emulator. Reported:
opinions/s to receipt, p50/p95/max, the staff cards, tickets in the store, the bot's peak RSS
(VmHWM of the bot process). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import (
    BotProcess,
    Report,
    Watcher,
    add_speed_flags,
    bot_env,
    build_world,
    percentile,
    press_spread,
    quiesce_schedules,
    settings_values,
    start_emulator,
    use_speed_flags,
    workdir,
)
from emulator import BotAPIEmulator, EmuUser
from storage.store import Store

RECEIPT = "您的意见已登记为"
OPINION = "BURST"
P95_TARGET_MS = 250
ALL_TARGET_S = 10.0
RSS_TARGET_MB = 200
RAISED = {"rate_overall_per_s": 10000, "rate_chat_per_s": 1000, "rate_group_per_min": 100000}


def classify(text: str) -> str | None:
    if RECEIPT in text:
        return "receipt"
    if text.startswith("#"):
        return "card"
    if OPINION in text:
        return "draft"
    return None


def draft_card(emu: BotAPIEmulator, user: EmuUser):
    for message in reversed(emu.messages(user.id)):
        if any(b.callback_data == "dr:submit" for row in message.buttons for b in row):
            return message
    return None


async def burst(report: Report, residents: int, buildings: int, spread: float,
                keep: bool, timeline: bool = False,
                profile: str | None = None, http_worker: bool = True) -> None:
    with workdir(keep) as tmp:
        emu = await start_emulator(None)
        bot: BotProcess | None = None
        try:
            db_path = tmp / "gridhorn.db"
            values = settings_values(emu, db_path, http_worker=http_worker, **RAISED)
            store = await Store.open_sqlite(str(db_path))
            world = await build_world(emu, store, buildings=buildings, per_grid=5,
                                      bind_buildings=False, bind_grids=True)
            heads = []
            people = [emu.add_user(f"居民{i + 1}", language_code="zh-hans")
                      for i in range(residents)]
            async with store.transaction():
                for index, code in enumerate(world.buildings):
                    head = emu.add_user(f"楼长{index + 1}", language_code="zh-hans")
                    head.started = True  # heads have long started the bot
                    heads.append(head)
                    await store.people.ensure(head.id)
                    await store.people.grant(head.id, "building_head", code, None)
                for index, user in enumerate(people):
                    await store.people.ensure(user.id)
                    await store.people.set_building(user.id,
                                                    world.buildings[index % len(world.buildings)])
            await quiesce_schedules(store, values)
            await store.close()

            bot = BotProcess(bot_env(values), tmp / "bot.log")
            await bot.start()
            await emu.wait_until(lambda: emu.waiting_polls > 0, timeout=30)
            rss_idle = bot.peak_rss_mb()

            # every resident writes an opinion and is shown the draft card
            resident_ids = [u.id for u in people]
            drafts = Watcher(emu, resident_ids, classify)
            drafts_started = time.monotonic()
            for user in people:
                emu.send_text(user, f"{OPINION}：{user.first_name} 家楼道的灯坏了一个星期了")
            await emu.wait_until(lambda: drafts.chats_with("draft") >= residents, timeout=120)
            await emu.wait_until(lambda: not emu.pending_updates(), timeout=30)
            drafts_s = time.monotonic() - drafts_started
            print(f"  ({residents} draft cards shown in {drafts_s:.1f} s; pressing now)",
                  flush=True)
            cards = {user.id: draft_card(emu, user) for user in people}
            assert all(cards.values()), "a draft card is missing"
            staff_chats = [h.id for h in heads] + list(world.grid_chats.values())
            watcher = Watcher(emu, resident_ids + staff_chats, classify)
            rss_before = bot.peak_rss_mb()

            # the burst: everyone presses Submit within `spread` seconds
            spy = await start_profiler(bot.pid, profile) if profile else None
            cpu_start = bot.cpu_seconds()
            worker_cpu = bot.children_cpu_seconds()
            emulator_cpu = time.process_time()
            start, pressed = await press_spread(emu, people, cards, "dr:submit", spread)
            await emu.wait_until(lambda: watcher.chats_with("receipt") >= residents,
                                 timeout=120)
            receipts_done = time.monotonic()
            cpu_receipts = bot.cpu_seconds() - cpu_start
            worker_cpu = bot.children_cpu_seconds() - worker_cpu
            emulator_cpu = time.process_time() - emulator_cpu
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
            await emu.wait_until(lambda: watcher.total("card") >= 2 * residents, timeout=120)
            cards_done = time.monotonic()
            cpu_all = bot.cpu_seconds() - cpu_start
            peak_rss = bot.peak_rss_mb()
            await asyncio.sleep(0.5)  # anything more arriving now would be a duplicate
            watcher.update()
        finally:
            if bot is not None:
                code = await bot.stop()
                if code not in (0, None):
                    print(bot.log_tail(), file=sys.stderr)
            await emu.stop()
        with contextlib.closing(sqlite3.connect(db_path)) as db:
            tickets, reporters = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT reporter_id) FROM tickets").fetchone()

    if timeline:
        print_timeline(emu, start, set(resident_ids))
    latencies = []
    for user in people:
        chat = emu.chats[user.id]
        times = [m.sent_at for m in chat.messages.values()
                 if m.sender is None and RECEIPT in m.text]
        if times:
            latencies.append((min(times) - pressed[user.id]) * 1000)
    receipts = watcher.counts.get("receipt", {})
    doubled = sum(1 for n in receipts.values() if n > 1)
    card_counts = watcher.counts.get("card", {})
    head_cards = sum(card_counts.get(h.id, 0) for h in heads)
    grid_cards = sum(card_counts.get(c, 0) for c in world.grid_chats.values())
    total_s = receipts_done - start
    rate = residents / total_s
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    report.figure("presses", f"{residents} residents in {buildings} buildings, "
                  f"pressed over {spread:.1f} s")
    report.figure("first press → last receipt", f"{total_s:.2f} s ({rate:.0f} opinions/s)")
    report.figure("press → receipt", f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                  f"max {max(latencies):.0f} ms")
    report.figure("staff cards", f"{head_cards} to heads, {grid_cards} to grid chats, all in "
                  f"{cards_done - start:.2f} s")
    report.figure("bot CPU", f"{cpu_receipts:.2f} s until the last receipt, {cpu_all:.2f} s "
                  f"until the last card ({cpu_all * 1000 / residents:.2f} ms per Submit)")
    if http_worker:
        report.figure("HTTP worker CPU", f"{worker_cpu:.2f} s until the last receipt "
                      "(the bot's child process making its Bot API calls)")
    report.figure("emulator CPU", f"{emulator_cpu:.2f} s until the last receipt (this "
                  f"process: the emulator and the residents; {os.cpu_count()} cores in all)")
    report.figure("bot peak RSS (VmHWM, its HTTP worker's added)", f"{peak_rss:.0f} MB "
                  f"(idle {rss_idle:.0f} MB, after the drafts {rss_before:.0f} MB)")
    report.target(f"p95 < {P95_TARGET_MS} ms", p95 < P95_TARGET_MS, f"{p95:.0f} ms")
    report.target(f"all done < {ALL_TARGET_S:.0f} s", total_s < ALL_TARGET_S, f"{total_s:.2f} s")
    report.target("no ticket lost or doubled",
                  tickets == residents and reporters == residents and len(receipts) == residents
                  and doubled == 0 and head_cards == residents and grid_cards == residents,
                  f"{tickets} tickets from {reporters} reporters, {len(receipts)} receipts "
                  f"({doubled} doubled)")
    report.target(f"peak RSS < {RSS_TARGET_MB} MB", peak_rss is not None
                  and peak_rss < RSS_TARGET_MB, f"{peak_rss:.0f} MB")


async def start_profiler(pid: int, out: str) -> asyncio.subprocess.Process:
    """py-spy sampling the bot from the first press to the last receipt (folded stacks)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spy = await asyncio.create_subprocess_exec(
        exe, "record", "--rate", "200", "--format", "raw", "--output", out,
        "--pid", str(pid), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(0.5)  # py-spy attaches before the first press
    return spy


def print_timeline(emu: BotAPIEmulator, start: float, residents: set[int]) -> None:
    """Calls per 250 ms bucket: which work the bot did when (to residents / to staff)."""
    buckets: dict[int, Counter[str]] = {}
    for entry in emu.requests:
        if entry.at < start or entry.status_code != 200:
            continue
        who = "" if entry.method in ("getUpdates", "answerCallbackQuery") else \
            ("→res" if entry.chat_id in residents else "→staff")
        buckets.setdefault(int((entry.at - start) / 0.25), Counter())[entry.method + who] += 1
    names = sorted({name for counts in buckets.values() for name in counts})
    print("  t(s)  " + "  ".join(f"{n[:22]:>22}" for n in names))
    for index in sorted(buckets):
        print(f"  {index / 4:4.2f}  " + "  ".join(f"{buckets[index].get(n, 0):>22}"
                                                 for n in names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_burst", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--buildings", type=int, default=20)
    parser.add_argument("--spread", type=float, default=1.0,
                        help="seconds over which the presses are spread (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--timeline", action="store_true",
                        help="print the bot's calls per 250 ms after the first press")
    parser.add_argument("--profile", metavar="FILE",
                        help="sample the bot with py-spy (pip install py-spy) from the first "
                             "press to the last receipt; folded stacks to FILE")
    add_speed_flags(parser)
    args = parser.parse_args(argv)

    async def run() -> int:
        report = Report(f"submit burst: {args.residents} residents press Submit within "
                        f"{args.spread:g} s")
        use_speed_flags(args, report)  # the bot is a process of its own: its loop, not ours
        await burst(report, args.residents, args.buildings, args.spread, args.keep,
                    args.timeline, args.profile, args.http_worker)
        return report.exit_code()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
