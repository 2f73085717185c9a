"""The framework's floor for the submit burst: a bot that does nothing but the two calls.

    python -m bench.submit_floor [--residents 1000] [--spread 1.0]

The same burst as `bench.submit_burst` (1,000 presses of a Submit button within one second,
the emulator in this process with flood limits off), answered by a minimal
python-telegram-bot bot in its own process: PTB's own `run_polling`, 256 concurrent updates,
one `CallbackQueryHandler` that answers the tap and sends a receipt `#N`. No store, no
rules, no outbox. Run twice: on PTB's default transport (httpx: what a plain PTB bot gets)
and on `bot.http.AiohttpRequest` (what Gridhorn uses). Whatever latency this bot shows, the
real one (which also stores the update, writes the ticket and the outbox, and builds two
staff cards) cannot beat on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time

from bench.common import ROOT, TOKEN, Report, Watcher, percentile, press_spread, start_emulator

RECEIPT = "Receipt #"


def run_bot(base_url: str, transport: str) -> None:
    """The minimal bot (child process)."""
    from telegram import Update
    from telegram.ext import Application, CallbackQueryHandler

    from bot.http import AiohttpRequest

    numbers = itertools.count(1)

    async def submit(update: Update, _context: object) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        number = next(numbers)
        await query.answer(f"#{number}")
        await query.get_bot().send_message(query.message.chat.id, f"{RECEIPT}{number}")

    builder = Application.builder().token(TOKEN).base_url(base_url).concurrent_updates(256)
    if transport == "aiohttp":
        builder = builder.request(AiohttpRequest(connection_pool_size=128)) \
            .get_updates_request(AiohttpRequest(connection_pool_size=2))
    app = builder.build()
    app.add_handler(CallbackQueryHandler(submit))
    app.run_polling(allowed_updates=["callback_query"], poll_interval=0, timeout=1)


async def burst(report: Report, transport: str, residents: int, spread: float) -> None:
    emu = await start_emulator(None)
    try:
        from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup

        people = [emu.add_user(f"居民{i + 1}", language_code="zh-hans")
                  for i in range(residents)]
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("提交", callback_data="submit")]])
        async with Bot(TOKEN, base_url=emu.base_url) as setup:  # the draft cards
            for user in people:
                user.started = True
                await setup.send_message(user.id, "BURST 草稿", reply_markup=keyboard)
        cards = {user.id: emu.messages(user.id)[-1] for user in people}
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.submit_floor", "--serve", emu.base_url, transport,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        try:
            await emu.wait_until(lambda: emu.waiting_polls > 0, timeout=30)
            watcher = Watcher(emu, [u.id for u in people],
                              lambda text: "receipt" if RECEIPT in text else None)
            start, pressed = await press_spread(emu, people, cards, "submit", spread)
            await emu.wait_until(lambda: watcher.chats_with("receipt") >= residents,
                                 timeout=120)
            done = time.monotonic() - start
        finally:
            child.terminate()
            await child.wait()
    finally:
        await emu.stop()
    latencies = []
    for user in people:
        times = [m.sent_at for m in emu.messages(user.id) if RECEIPT in m.text]
        latencies.append((min(times) - pressed[user.id]) * 1000)
    report.figure(f"[{transport}] first press → last receipt",
                  f"{done:.2f} s ({residents / done:.0f}/s)")
    report.figure(f"[{transport}] press → receipt",
                  f"p50 {percentile(latencies, 50):.0f} ms, p95 "
                  f"{percentile(latencies, 95):.0f} ms, max {max(latencies):.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--transport", choices=("httpx", "aiohttp"), nargs="+",
                        default=["httpx", "aiohttp"])
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_bot(*args.serve)
        return 0

    async def run() -> int:
        report = Report(f"submit floor: {args.residents} presses within {args.spread:g} s, "
                        "a bot that only answers and sends the receipt")
        for transport in args.transport:
            await burst(report, transport, args.residents, args.spread)
        return report.exit_code()

    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
