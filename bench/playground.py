"""The playground's two speed targets (issue 15).

    .venv/bin/python -m bench.playground [--messages 50] [--runs 5] [--senders 9]

1. Bot messages reach the page with p95 ≤ 1 s from the bot's call. A `Playground` (with
   Telegram's flood limits, as `gridhorn demo --flood`) and its `PageServer` on 127.0.0.1:0
   run in this process; an SSE client (aiohttp) reads `/api/events?after=<last_event_id of
   /api/world>` and stamps every `message` event with `time.monotonic()` when its last line
   arrives. The sample people send
   `/help` in their private chats, all at once in waves, until the bot has sent at least
   `--messages` messages. For each bot message the start is the moment the emulator built it
   inside the bot's sendMessage (its `sent_at`), or made the edit (`edited_at`), else the
   moment the emulator told its listeners of the change; the end is the arrival of that change's
   event on the SSE stream (matched by event id). The SSE client shares the event loop with the
   bot and the emulator, as the page server does: the figure includes that contention.
2. `gridhorn demo` prints its URL within 15 s: `python -m bot.cli demo --no-browser --port 0`
   as a child process `--runs` times, spawn → the stdout line with "http://127.0.0.1:", then
   SIGINT (`--stop-after` seconds later, 1 s by default: a person who read the URL), which
   must end it within 10 s with exit status 0.

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from typing import Any

import aiohttp

from bench.common import ROOT, Report, percentile
from emulator import DEFAULT_FLOOD_LIMITS, EmuMessage

PAGE_TARGET_S = 1.0
START_TARGET_S = 15.0
STOP_LIMIT_S = 10.0


# ------------------------------------------------------------------ 1. bot call → page

class CallClock:
    """An emulator listener: when each change to a bot message happened, keyed by the id of
    the feed's `message` event the playground published for it (its own listener runs
    first, in the same emit)."""

    def __init__(self, playground: Any) -> None:
        self.playground = playground
        self.feed = playground.feed
        self.started: dict[int, float] = {}       # event id -> moment of the bot's call
        self.lag: list[float] = []                # sent_at → listener told (new messages)
        self._edited: dict[tuple[int, int], float | None] = {}
        self._seen_id = self.feed.last_id

    def __call__(self, kind: str, subject: Any) -> None:
        if kind != "message":
            return
        now = time.monotonic()
        message: EmuMessage = subject
        events = self.feed.since(self._seen_id)
        self._seen_id = self.feed.last_id
        if message.sender is not None:
            return
        key = (message.chat_id, message.message_id)
        if key not in self._edited:
            start = message.sent_at
            self.lag.append(now - start)
        elif message.edited_at is not None and message.edited_at != self._edited[key]:
            start = message.edited_at
        else:
            start = now
        self._edited[key] = message.edited_at
        for event in reversed(events):
            if event.type == "message" and (event.data["chat_id"], event.data["message_id"]) \
                    == key:
                self.started[event.id] = start
                return


async def read_sse(response: aiohttp.ClientResponse, arrived: dict[int, float],
                   wanted: asyncio.Event, count: int, started: dict[int, float]) -> None:
    """Stamp every `message` event's arrival (when the blank line that ends it is read)."""
    event_id: int | None = None
    event_type = ""
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("event: "):
            event_type = line[7:]
        elif line == "" and event_id is not None:
            if event_type == "message":
                arrived[event_id] = time.monotonic()
                if sum(1 for i in arrived if i in started) >= count:
                    wanted.set()
            event_id, event_type = None, ""


async def page_latency(report: Report, messages: int, senders: int, lang: str) -> None:
    from playground.server import PageServer
    from playground.session import Playground

    # Telegram's flood limits on (`gridhorn demo --flood`): the page's latency under them
    playground = Playground(lang=lang, flood=DEFAULT_FLOOD_LIMITS)
    await playground.start()
    server = PageServer(playground)
    try:
        url = await server.start(0)
        clock = CallClock(playground)
        playground.emu.listeners.append(clock)
        arrived: dict[int, float] = {}
        wanted = asyncio.Event()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            async with http.get(url + "api/world") as response:
                world = await response.json()
            after = world["last_event_id"]
            async with http.get(f"{url}api/events?after={after}") as stream:
                reader = asyncio.create_task(
                    read_sse(stream, arrived, wanted, messages, clock.started))
                people = [p.user for p in playground.world.people][:senders]
                began = time.monotonic()
                waves = 0
                while not wanted.is_set() and time.monotonic() - began < 120:
                    bot_messages = len(clock.started)
                    if bot_messages < messages:
                        waves += 1
                        for user in people:
                            playground.emu.send_text(user, "/help")
                    try:
                        await asyncio.wait_for(wanted.wait(), 1.0)
                    except TimeoutError:
                        pass
                await playground.settle()
                await asyncio.sleep(0.5)  # the last events' arrival, if any are on their way
                reader.cancel()
        elapsed = time.monotonic() - began
        calls = dict(playground.emu.stats.by_method)
        flood = playground.emu.stats.flood_rejections
    finally:
        await server.stop()
        await playground.stop()
    latencies = [arrived[i] - start for i, start in clock.started.items() if i in arrived]
    missing = [i for i in clock.started if i not in arrived]
    report.figure("[page] traffic", f"{waves} waves of /help from {len(people)} people; "
                  f"{len(clock.started)} bot message events in {elapsed:.1f} s; "
                  f"{calls.get('sendMessage', 0)} sendMessage, "
                  f"{calls.get('editMessageText', 0)} editMessageText; "
                  f"{flood} flood-limit 429s")
    report.figure("[page] emulator → its listeners (new messages)",
                  f"p50 {percentile(clock.lag, 50) * 1000:.1f} ms, "
                  f"max {max(clock.lag, default=0) * 1000:.1f} ms")
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    worst = max(latencies, default=float("nan"))
    report.figure("[page] bot call → SSE arrival",
                  f"n {len(latencies)}, p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
                  f"max {worst * 1000:.1f} ms", f"ratio p95 / {PAGE_TARGET_S:.0f} s "
                  f"{p95 / PAGE_TARGET_S:.3f}")
    report.target(f"[page] ≥ {messages} bot messages, none lost",
                  len(latencies) >= messages and not missing,
                  f"{len(latencies)} arrived, {len(missing)} never did")
    report.target(f"[page] p95 ≤ {PAGE_TARGET_S:.0f} s", p95 <= PAGE_TARGET_S,
                  f"{p95 * 1000:.1f} ms")


# ------------------------------------------------------------------ 2. `gridhorn demo` start

async def demo_start(log: Any, stop_after: float) -> tuple[float, float | None, int | None]:
    """Spawn → URL printed; `stop_after` s later SIGINT → exit. Returns (start s, stop s or
    None, exit code)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHORN_")}
    env["PYTHONUNBUFFERED"] = "1"
    spawned = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "demo", "--no-browser", "--port", "0", cwd=ROOT,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=log,
        stdin=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        started = float("inf")
        async with asyncio.timeout(START_TARGET_S * 4):
            while line := await proc.stdout.readline():
                if b"http://127.0.0.1:" in line:
                    started = time.monotonic() - spawned
                    break
    except TimeoutError:
        started = float("inf")
    await asyncio.sleep(stop_after)
    asked = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        async with asyncio.timeout(STOP_LIMIT_S):
            await proc.stdout.read()
            code = await proc.wait()
        return started, time.monotonic() - asked, code
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return started, None, None


async def demo_starts(report: Report, runs: int, stop_after: float) -> None:
    starts: list[float] = []
    stops: list[float | None] = []
    codes: list[int | None] = []
    with tempfile.TemporaryFile() as log:
        for _ in range(runs):
            started, stopped, code = await demo_start(log, stop_after)
            starts.append(started)
            stops.append(stopped)
            codes.append(code)
        log.seek(0)
        errors = log.read().decode(errors="replace").strip()
    report.figure("[demo] spawn → URL", " / ".join(f"{s:.2f}" for s in starts) + " s")
    worst = max(starts)
    report.figure("[demo] min / median / max",
                  f"{min(starts):.2f} / {statistics.median(starts):.2f} / {worst:.2f} s",
                  f"ratio max / {START_TARGET_S:.0f} s {worst / START_TARGET_S:.3f}")
    report.figure(f"[demo] SIGINT {stop_after:g} s after the URL → exit", " / ".join(
        "not within 10 s" if s is None else f"{s:.2f}" for s in stops) + " s; exit codes "
        + ", ".join(str(c) for c in codes))
    if errors:
        report.figure("[demo] stderr (last lines)", "\n    " + "\n    ".join(
            errors.splitlines()[-5:]))
    report.target(f"[demo] URL within {START_TARGET_S:.0f} s", worst <= START_TARGET_S,
                  f"max {worst:.2f} s")
    report.target(f"[demo] stops within {STOP_LIMIT_S:.0f} s on SIGINT",
                  all(s is not None for s in stops) and all(c == 0 for c in codes),
                  f"exit codes {codes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50,
                        help="bot messages to time to the page (default 50)")
    parser.add_argument("--senders", type=int, default=9,
                        help="sample people sending /help in each wave (at most 9)")
    parser.add_argument("--lang", default="zh-Hans", choices=("zh-Hans", "zh-Hant", "en"))
    parser.add_argument("--runs", type=int, default=5, help="`gridhorn demo` starts to time")
    parser.add_argument("--stop-after", type=float, default=1.0,
                        help="seconds between the URL and Ctrl+C (SIGINT) (default 1)")
    parser.add_argument("--no-page", action="store_true", help="skip the page latency")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo start")
    args = parser.parse_args()
    report = Report("playground (issue 15)")
    report.figure("load average", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if not args.no_page:
        asyncio.run(page_latency(report, args.messages, args.senders, args.lang))
    if not args.no_demo and args.runs > 0:
        asyncio.run(demo_starts(report, args.runs, args.stop_after))
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main())

