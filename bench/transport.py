"""CPU per Bot API call: python-telegram-bot over HTTPXRequest vs over `bot.http.AiohttpRequest`.

    python -m bench.transport [--calls 2000] [--concurrency 8 32]

The emulator runs in a child process (flood limits off), so the CPU measured (getrusage of
this process) is the client's alone: `Bot.send_message` (parameters built, the request, the
answer parsed into a `Message`) and the raw call the outbox makes (`Bot._post`, JSON back).
No target: the figures explain the transport choice (docs/benchmarks.md, "HTTP transport").
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time

from telegram import Bot
from telegram.request import BaseRequest, HTTPXRequest

from bench.common import TOKEN, start_emulator
from bot import rawapi
from bot.http import AiohttpRequest
from bot.httpworker import WorkerRequest


async def serve() -> None:
    emu = await start_emulator(None)
    user = emu.add_user("Li")
    user.started = True
    print(emu.base_url, user.id, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    await emu.stop()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(base_url: str, chat_id: int, transport: str, raw: bool | str, calls: int,
                  concurrency: int) -> tuple[float, float]:
    request: BaseRequest = (HTTPXRequest(connection_pool_size=concurrency)
                            if transport == "httpx" else
                            WorkerRequest(connection_pool_size=concurrency)
                            if transport == "worker" else
                            AiohttpRequest(connection_pool_size=concurrency))
    slots = asyncio.Semaphore(concurrency)
    async with Bot(TOKEN, base_url=base_url, request=request) as bot:
        async def one(i: int) -> None:
            async with slots:
                text = f"回执 {i} <b>#{i}</b>"
                if raw == "rawapi":
                    await rawapi.call(bot, "sendMessage", {"chat_id": chat_id, "text": text,
                                                           "parse_mode": "HTML"})
                elif raw:
                    await bot._post("sendMessage", {"chat_id": chat_id, "text": text,
                                                    "parse_mode": "HTML"})
                else:
                    await bot.send_message(chat_id, text, parse_mode="HTML")

        await asyncio.gather(*(one(i) for i in range(100)))  # warm: connections, imports
        start_cpu, start = cpu(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return (cpu() - start_cpu) * 1000 / calls, time.perf_counter() - start


async def main_async(calls: int, levels: list[int]) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.transport", "--serve", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None and child.stdin is not None
    base_url, chat_id = (await child.stdout.readline()).decode().split()
    try:
        print(f"== CPU per call, {calls} sendMessage to the emulator in another process")
        for concurrency in levels:
            for transport in TRANSPORTS:
                for raw in (False, True, "rawapi"):
                    ms, wall = await measure(base_url, int(chat_id), transport, raw, calls,
                                             concurrency)
                    what = ("rawapi.call (outbox)" if raw == "rawapi" else
                            "Bot._post (raw JSON)" if raw else "Bot.send_message")
                    print(f"  {transport:8} {what:22} concurrency {concurrency:3}: "
                          f"{ms:.2f} ms CPU per call ({calls / wall:.0f} calls/s)")
    finally:
        child.stdin.close()
        await child.wait()


TRANSPORTS = ("httpx", "aiohttp", "worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve())
    else:
        asyncio.run(main_async(args.calls, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
