"""The HTTP face of the emulator: an aiohttp server that speaks the Bot API.

Routes, like api.telegram.org:

* ``/bot<token>/<method>`` (method names case-insensitive, any HTTP verb)
* ``/file/bot<token>/<file_path>`` (downloads of files from ``getFile``)
"""

from __future__ import annotations

import inspect
import json
import logging
import socket
import time
from types import TracebackType
from typing import Any

from aiohttp import web

from .errors import ApiError, too_many_requests
from .limits import DEFAULT_FLOOD_LIMITS, FloodLimits
from .methods import BotApi
from .models import CallRecord, RequestLog
from .params import Params, read_params
from .state import CURRENT_CALL, EmulatorState

__all__ = ["BotAPIEmulator"]

logger = logging.getLogger("emulator")

_MAX_BODY = 64 * 1024 * 1024
#: The header in which a bot may name the update it is handling (the playground's inspector).
UPDATE_HEADER = "X-Gridhorn-Update"
_FAULT_DESCRIPTIONS = {"500": "Internal Server Error", "502": "Bad Gateway"}


def _json_response(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
    )


def _error_response(error: ApiError) -> web.Response:
    return _json_response(error.code, error.to_json())


def _loggable_chat(params: Params) -> int | str | None:
    value = params.raw("chat_id")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return None


class BotAPIEmulator(EmulatorState):
    """A Telegram Bot API server for one bot, plus the control API to drive it.

    Usage::

        async with BotAPIEmulator(token="123456:TEST") as emu:
            bot = telegram.Bot(emu.token, base_url=emu.base_url,
                               base_file_url=emu.base_file_url)
            user = emu.add_user("Li")
            emu.send_text(user, "/start")
            reply = await emu.wait_for_message(user.id)

    See :class:`~emulator.state.EmulatorState` for the constructor arguments
    and the control API.
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "gridhorn_bot",
        bot_first_name: str = "Gridhorn",
        flood: FloodLimits | None = DEFAULT_FLOOD_LIMITS,
        callback_timeout: float = 15.0,
        *,
        privacy_mode: bool = True,
        strict_html_entities: bool = True,
    ) -> None:
        super().__init__(
            token,
            bot_username,
            bot_first_name,
            flood,
            callback_timeout,
            privacy_mode=privacy_mode,
            strict_html_entities=strict_html_entities,
        )
        self.api = BotApi(self)
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._next_call = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on a real socket (``port=0`` picks a free port)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.setblocking(False)
            app = web.Application(client_max_size=_MAX_BODY)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
            await runner.setup()
            site = web.SockSite(runner, sock, backlog=4096)
            await site.start()
        except BaseException:
            sock.close()
            raise
        self._runner = runner
        self._host = host
        self._port = sock.getsockname()[1]
        self._closing = False
        logger.info("Bot API emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Release pending long polls and close the server."""
        runner, self._runner = self._runner, None
        self.close()
        await self._webhook_delivery.stop()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> BotAPIEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running; await start() first")
        return self._port

    @property
    def _origin(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Pass as ``telegram.Bot(base_url=...)``; PTB appends ``<token>/<method>``."""
        return f"{self._origin}/bot"

    @property
    def base_file_url(self) -> str:
        """Pass as ``telegram.Bot(base_file_url=...)``."""
        return f"{self._origin}/file/bot"

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            return self._serve_file(path[len("/file/bot") :])
        if not path.startswith("/bot"):
            return _error_response(ApiError(404, "Not Found"))
        token, _, method = path[len("/bot") :].partition("/")
        if token != self.token:
            self._record(method, None, 401, "Unauthorized")
            return _error_response(ApiError(401, "Unauthorized"))
        entry = self.api.lookup(method) if method and "/" not in method else None
        if entry is None:
            self._record(method, None, 404, "Not Found")
            return _error_response(ApiError(404, "Not Found"))
        name, handler = entry

        chat_id: int | str | None = None
        params: Params | None = None
        status, description = 200, None
        watched = bool(self.listeners)
        if watched:
            self._next_call += 1
            CURRENT_CALL.set(self._next_call)  # this request's own task: its context only
        try:
            params = await read_params(request)
            chat_id = _loggable_chat(params)
            self._inject_fault(name)
            result = handler(params)
            if inspect.isawaitable(result):
                result = await result
            response = _json_response(200, {"ok": True, "result": result})
        except ApiError as error:
            response = _error_response(error)
            status, description = error.code, error.description
        except Exception as error:  # an emulator bug: answer like a broken server, loudly
            logger.exception("emulator failure in %s", name)
            self.internal_errors.append(error)
            response = _error_response(ApiError(500, "Internal Server Error"))
            status, description = 500, "Internal Server Error"
        self._record(name, chat_id, status, description)
        if watched:
            self._tell_call(request, name, chat_id, params, status, description)
        self.notify()
        return response

    def _tell_call(self, request: web.Request, method: str, chat_id: int | str | None,
                   params: Params | None, status: int, description: str | None) -> None:
        header = request.headers.get(UPDATE_HEADER, "")
        call_id = CURRENT_CALL.get()
        assert call_id is not None
        self.emit("call", CallRecord(
            call_id, method, chat_id, params.as_dict() if params is not None else {}, status,
            description, int(header) if header.isdigit() else None))

    def _inject_fault(self, method: str) -> None:
        faults = self.faults
        if faults is None or not faults.applies_to(method):
            return
        if self._fault_rng.random() >= faults.rate:
            return
        self.stats.faults_injected += 1
        kind = self._fault_rng.choice(faults.kinds)
        if kind == "429":
            raise too_many_requests(1)
        raise ApiError(int(kind), _FAULT_DESCRIPTIONS[kind])

    def _record(
        self, method: str, chat_id: int | str | None, status: int, error: str | None
    ) -> None:
        stats = self.stats
        stats.total += 1
        stats.by_method[method] += 1
        stats.by_status[status] += 1
        if status == 429:
            stats.too_many_requests += 1
        elif status >= 500:
            stats.server_errors += 1
        self.requests.append(RequestLog(method, chat_id, status, error, time.monotonic()))

    def _serve_file(self, rest: str) -> web.StreamResponse:
        token, _, file_path = rest.partition("/")
        if token != self.token:
            return _error_response(ApiError(401, "Unauthorized"))
        emu_file = self.file_by_path(file_path)
        if emu_file is None or emu_file.data is None:
            return _error_response(ApiError(404, "Not Found"))
        return web.Response(
            body=emu_file.data, content_type=emu_file.mime_type or "application/octet-stream"
        )
