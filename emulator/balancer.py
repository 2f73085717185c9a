"""A round-robin load balancer in front of several `gridhorn run --webhook` replicas (SPEC §16),
for the fault tests and the benchmarks: what an operator puts before the replicas (nginx, a
cloud load balancer). Each POST from Telegram (here the emulator) goes to the next replica in
turn and, when one does not answer, to the one after; when none answers, Telegram gets 502
and posts again later.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web

HOOK_PATH = "/telegram/hook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Balancer:
    """Round robin over the replicas' listen addresses; a replica that refuses the
    connection is skipped for this request."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends  # "127.0.0.1:port", in turn
        self.port = free_port()
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.passed: dict[str, int] = {backend: 0 for backend in backends}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"

    async def start(self) -> None:
        # no connection limit: the emulator opens up to max_connections (40) at a time
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=30, connect=2))
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(HOOK_PATH, self._pass)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _pass(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {SECRET_HEADER: request.headers.get(SECRET_HEADER, ""),
                   "Content-Type": request.headers.get("Content-Type", "application/json")}
        for _ in range(len(self.backends)):
            backend = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                async with self._session.post(f"http://{backend}{HOOK_PATH}", data=body,
                                              headers=headers) as answer:
                    self.passed[backend] += 1
                    return web.Response(status=answer.status, body=await answer.read())
            except (aiohttp.ClientConnectionError, TimeoutError):
                continue  # down: the next one
        return web.Response(status=502, text="no replica answers")


async def listening(address: str, timeout: float = 60) -> None:
    """Wait until something accepts connections at "host:port" (a replica gives no signal)."""
    host, _, port = address.rpartition(":")
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
