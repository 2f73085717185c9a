"""Bot API calls made by a second process: the bot's HTTP off the core that handles updates.

Under a burst the bot is CPU-bound on one core, and a fifth of that CPU is the HTTP client
(aiohttp building each request, parsing each answer) while the machine's second core idles
(docs/benchmarks.md, "Submit burst"). `WorkerRequest` is python-telegram-bot's `BaseRequest`
for the bot's calls: everything above `do_request` stays in the bot (parameters, the mapping of
answers to `TelegramError`), and `do_request` hands the call, already one body, to a child
process (`python -P -m bot.httpworker`) over a pipe. The child makes it with
`AiohttpRequest` and sends back the status and the body. A frame costs the bot a few
microseconds; an aiohttp call, a fifth of a millisecond.

Uploads (files), and every call while no child runs, are made in the bot's process: no call
waits for a child to start. If the child dies its calls in flight fail with `NetworkError`
(the outbox retries them) and a new one is started in the background. A call the child does
not answer within its timeouts (and a margin) fails with `TimedOut`, alone: its outcome is
unknown. If the child has answered nothing since that call went to it, it is wedged: it gets
no more calls, a new one is started, and it is killed once its other calls are answered or
timed out, so no call that Telegram answered is reported failed (docs/architecture.md, "in
flight"). The child exits when the bot's end of the pipe closes, so a killed bot leaves no
child behind.

Frames, little-endian. Call: length, id, read/write/connect/pool timeouts (NaN: none),
content kind, URL length, URL, body. Answer: length, id, outcome, status, body (an error's
text when the outcome is not `_OK`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.http import AiohttpRequest, EncodedBody, JsonBody, _given, encoded_body
from storage import backoff

logger = logging.getLogger(__name__)

_LEN = struct.Struct("<I")
_CALL_HEAD = struct.Struct("<I4dBH")  # id, timeouts, kind, url length
_ANSWER_HEAD = struct.Struct("<IBH")  # id, outcome, status
_CALL = struct.Struct(_LEN.format + _CALL_HEAD.format[1:])  # the same, length first
_ANSWER = struct.Struct(_LEN.format + _ANSWER_HEAD.format[1:])
_NONE, _JSON, _FORM = 0, 1, 2
_OK, _TIMED_OUT, _NETWORK = 0, 1, 2
_READY = 0  # the id of the answer a worker sends once it can take calls


def _seconds(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


class _Frames:
    """Splits a byte stream into length-prefixed frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        frames = []
        start = 0
        while len(buffer) - start >= 4:
            (length,) = _LEN.unpack_from(buffer, start)
            if len(buffer) - start - 4 < length:
                break
            frames.append(bytes(buffer[start + 4:start + 4 + length]))
            start += 4 + length
        if start:
            del buffer[:start]
        return frames


class _Worker(asyncio.SubprocessProtocol):
    """One child process, seen from the bot: its pipes and the calls it has not answered."""

    def __init__(self) -> None:
        self._frames = _Frames()
        self.pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self.stdin: asyncio.WriteTransport | None = None
        self.transport: asyncio.SubprocessTransport | None = None
        self.on_gone: Callable[[], None] | None = None
        self.last_answer = -math.inf  # monotonic time of the child's latest frame
        self.retired = False  # wedged: no new calls; killed once it holds none
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()  # no answer can come
        self.exited: asyncio.Future[None] = loop.create_future()  # the process is reaped

    @property
    def alive(self) -> bool:
        return not self.gone.done() and self.stdin is not None and not self.stdin.is_closing()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        pending = self.pending
        self.last_answer = time.monotonic()
        try:
            frames = self._frames.feed(data)
            for frame in frames:
                ident, outcome, status = _ANSWER_HEAD.unpack_from(frame)
                if ident == _READY:
                    if not self.ready.done():
                        self.ready.set_result(None)
                    continue
                future = pending.pop(ident, None)
                if future is None or future.done():
                    continue
                body = frame[_ANSWER_HEAD.size:]
                if outcome == _OK:
                    future.set_result((status, body))
                elif outcome == _TIMED_OUT:
                    future.set_exception(TimedOut(body.decode("utf-8", "replace") or None))
                else:
                    future.set_exception(NetworkError(body.decode("utf-8", "replace")))
        except struct.error:  # a frame that is not ours: nothing more from it can be trusted
            logger.error("the HTTP worker wrote a malformed answer; it is replaced")
            if self.transport is not None:
                self.transport.kill()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:  # no more answers can come
            self._end("the HTTP worker exited")

    def process_exited(self) -> None:
        if self.stdin is not None:
            self.stdin.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end("the HTTP worker exited")
        if self.transport is not None:
            self.transport.close()
        if not self.exited.done():
            self.exited.set_result(None)

    def _end(self, why: str) -> None:
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(NetworkError(why))
        if not self.ready.done():
            self.ready.set_exception(NetworkError(why))
            self.ready.exception()  # retrieved: nobody may be waiting any more
        if not self.gone.done():
            self.gone.set_result(None)
            if self.on_gone is not None:
                self.on_gone()


class WorkerRequest(AiohttpRequest):
    """`AiohttpRequest` whose calls a child process makes.

    Uploads, and every call while no worker can be started, are made here as before.
    """

    #: after a failed start, the next try waits this long, doubling up to RESTART_MAX_S
    RESTART_AFTER_S = 1.0
    RESTART_MAX_S = 300.0
    START_TIMEOUT_S = 15.0
    WORKER_MARGIN_S = 2.0
    #: the child's command line (tests replace it)
    #: -P: the working directory is not searched first (a `bot` package there is not ours)
    COMMAND: tuple[str, ...] = (sys.executable, "-P", "-m", "bot.httpworker")

    def __init__(self, connection_pool_size: int = 32, **timeouts: Any) -> None:
        super().__init__(connection_pool_size=connection_pool_size, **timeouts)
        self._worker: _Worker | None = None
        self._next_start = -math.inf
        self._closed = False
        self._start_task: asyncio.Task[Any] | None = None
        self._failed_starts = 0
        self._next_id = 0
        self._starting: asyncio.Lock | None = None
        self._warned = False
        self._retired: set[_Worker] = set()  # wedged children still holding calls
        # children killed while starting, until reaped (dropped earlier, the process object
        # would be collected with the child still running: a ResourceWarning, a zombie)
        self._dying: set[_Worker] = set()
        self.worker_calls = 0  # calls handed to a worker

    async def initialize(self) -> None:
        await super().initialize()
        self._closed = False
        await self._start_worker()

    def _start_soon(self) -> None:
        if self._closed or (self._start_task is not None and not self._start_task.done()):
            return
        if asyncio.get_running_loop().time() >= self._next_start:
            self._start_task = asyncio.create_task(self._start_worker())

    async def shutdown(self) -> None:
        self._closed = True
        if self._start_task is not None:
            self._start_task.cancel()
            await asyncio.gather(self._start_task, return_exceptions=True)
        for retired in list(self._retired):
            if retired.transport is not None:
                retired.transport.kill()
                await retired.exited
        for dying in list(self._dying):
            await asyncio.shield(dying.exited)
        worker, self._worker = self._worker, None
        if worker is not None and worker.transport is not None:
            if worker.stdin is not None:
                worker.stdin.close()  # the child answers what it has, then exits
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(worker.exited)
            except TimeoutError:
                worker.transport.kill()
                await worker.exited  # its transport is closed when it is reaped
        await super().shutdown()

    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.transport.get_pid() if worker and worker.transport and worker.alive \
            else None

    async def _start_worker(self) -> _Worker | None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._worker is not None and self._worker.alive:
                return self._worker
            loop = asyncio.get_running_loop()
            if self._closed or loop.time() < self._next_start:
                return None
            root = str(Path(__file__).resolve().parents[1])
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            try:
                transport, worker = await loop.subprocess_exec(
                    _Worker, *self.COMMAND, str(self.pool_size),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=None, env=env,
                    # its own session (so its own process group): a Ctrl-C in the terminal
                    # is the bot's to handle (it shuts down, then closes our pipe), even
                    # while the child imports; uvloop knows no `process_group`
                    start_new_session=True)
            except OSError:
                logger.exception("the HTTP worker could not be started; calls are made here")
                self._start_failed()
                return None
            worker.transport = transport
            worker.stdin = transport.get_pipe_transport(0)  # type: ignore[assignment]
            try:
                async with asyncio.timeout(self.START_TIMEOUT_S):
                    await worker.ready
                if self._closed:
                    raise NetworkError("shut down while starting")
            except BaseException as exc:  # also CancelledError: never leave the child behind
                transport.close()  # kills it if still running; the loop reaps it
                self._dying.add(worker)
                worker.exited.add_done_callback(lambda _: self._dying.discard(worker))
                self._start_failed()
                if not isinstance(exc, (TimeoutError, NetworkError)):
                    raise
                logger.error("the HTTP worker did not start; calls are made in this process")
                return None
            self._next_start = loop.time() + self.RESTART_AFTER_S
            worker.on_gone = self._start_soon  # a dead child is replaced before it is missed
            self._worker = worker
            self._failed_starts = 0
            self._warned = False
            return worker

    def _start_failed(self) -> None:
        """The next try waits, longer after each failure (from its end, not its start)."""
        self._failed_starts += 1
        self._next_start = asyncio.get_running_loop().time() + backoff.delay(
            self._failed_starts, self.RESTART_AFTER_S, self.RESTART_MAX_S)

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("This WorkerRequest is not initialized!")
        worker = self._worker
        if worker is None or not worker.alive:
            worker = None
            self._start_soon()  # in the background: no call waits for a child's start
        if worker is None or (request_data is not None and request_data.contains_files):
            if worker is None and not self._warned:
                self._warned = True
                logger.warning("the HTTP worker is not running; calls are made in this process")
            return await super().do_request(url, method, request_data, read_timeout,
                                            write_timeout, connect_timeout, pool_timeout)
        if request_data is None:
            kind, body = _NONE, b""
        else:
            encoded = encoded_body(request_data)
            kind, body = (_JSON if isinstance(encoded, JsonBody) else _FORM), encoded.body
        self._next_id = ident = self._next_id % 0xFFFFFFFF + 1  # never _READY
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        target = f"{method} {url}".encode()
        timeouts = (_given(read_timeout, self._read_timeout),
                    _given(write_timeout, self._write_timeout),
                    _given(connect_timeout, self._connect_timeout),
                    _given(pool_timeout, self._pool_timeout))
        head = _CALL.pack(_CALL.size - 4 + len(target) + len(body), ident,
                          *map(_seconds, timeouts), kind, len(target))
        worker.pending[ident] = future
        self.worker_calls += 1
        sent_at = time.monotonic()
        worker.stdin.write(head + target + body)  # type: ignore[union-attr]
        # what aiohttp allows the child (connect+pool, then read+write), and a margin:
        # an answer later than that means a wedged child, not a slow Telegram
        limit = None if None in timeouts else sum(timeouts) + self.WORKER_MARGIN_S  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            if worker.last_answer < sent_at:
                self._retire(worker)
            raise TimedOut("the HTTP worker did not answer in time") from None
        finally:
            worker.pending.pop(ident, None)
            if worker.retired and not worker.pending and worker.transport is not None:
                worker.transport.kill()  # nothing left to wait for: it is reaped, replaced

    def _retire(self, worker: _Worker) -> None:
        """A wedged child takes no new calls; those it holds keep waiting for their own
        answers or timeouts (an answer that comes is a known outcome, not one to resend)."""
        if worker.retired:
            return
        logger.error("the HTTP worker stopped answering; it is replaced")
        worker.retired = True
        self._retired.add(worker)
        worker.exited.add_done_callback(lambda _: self._retired.discard(worker))
        if self._worker is worker:
            self._worker = None
            self._start_soon()


# ---- the child ---------------------------------------------------------------------------

class _WorkerSide(asyncio.Protocol):
    def __init__(self, request: AiohttpRequest, out: asyncio.WriteTransport,
                 done: asyncio.Future[None]) -> None:
        self._request = request
        self._out = out
        self._done = done
        self._frames = _Frames()
        self._tasks: set[asyncio.Task[None]] = set()

    def data_received(self, data: bytes) -> None:
        for frame in self._frames.feed(data):
            task = asyncio.get_running_loop().create_task(self._call(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def eof_received(self) -> bool:
        if not self._done.done():
            self._done.set_result(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_result(None)

    async def _call(self, frame: bytes) -> None:
        ident, read, write, connect, pool, kind, url_length = _CALL_HEAD.unpack_from(frame)
        offset = _CALL_HEAD.size
        method, _, url = frame[offset:offset + url_length].decode().partition(" ")
        body = frame[offset + url_length:]
        data: RequestData | None
        if kind == _JSON:
            data = JsonBody(body)
        elif kind == _FORM:
            data = EncodedBody(body)
        else:
            data = None
        try:
            status, answer = await self._request.do_request(
                url, method, data, _optional(read), _optional(write), _optional(connect),
                _optional(pool))
            outcome = _OK
        except TimedOut as exc:
            outcome, status, answer = _TIMED_OUT, 0, str(exc.message or "").encode()
        except NetworkError as exc:
            outcome, status, answer = _NETWORK, 0, str(exc.message).encode()
        except Exception as exc:  # noqa: BLE001 - the bot sees it as a failed call
            logger.exception("HTTP worker: call failed")
            outcome, status, answer = _NETWORK, 0, f"{type(exc).__name__}: {exc}".encode()
        self._out.write(_ANSWER.pack(_ANSWER.size - 4 + len(answer), ident, outcome, status)
                        + answer)


async def serve(pool_size: int) -> None:
    loop = asyncio.get_running_loop()
    request = AiohttpRequest(connection_pool_size=pool_size)
    await request.initialize()
    try:
        out, _ = await loop.connect_write_pipe(asyncio.Protocol,
                                               os.fdopen(1, "wb", buffering=0))
        done: asyncio.Future[None] = loop.create_future()
        protocol = _WorkerSide(request, out, done)
        await loop.connect_read_pipe(lambda: protocol, os.fdopen(0, "rb", buffering=0))
        out.write(_ANSWER.pack(_ANSWER.size - 4, _READY, _OK, 0))
        await done
        if protocol._tasks:
            await asyncio.wait(set(protocol._tasks), timeout=5)
        for _ in range(500):  # the last answers leave before we do
            if not out.get_write_buffer_size():
                break
            await asyncio.sleep(0.01)
    finally:
        await request.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sys.stdout = sys.stderr  # fd 1 carries frames only
    # A service manager's SIGTERM (or a Ctrl-C to the group) reaches us too: the bot shuts
    # down and then closes our input, which is when we stop (answers still on the way land)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(int(args[0]) if args else 32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
