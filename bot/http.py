"""python-telegram-bot's HTTP transport, on aiohttp.

python-telegram-bot sends every Bot API call through a `BaseRequest` ("can be implemented via
different asyncio HTTP libraries"); everything above `do_request` stays its own: building the
parameters, the error mapping (RetryAfter, Forbidden, ChatMigrated...), the result parsing.
Its default, `HTTPXRequest`, costs 1.4–1.9 ms of CPU per call here, this one 0.3 ms
(`python -m bench.transport`), and the bot is CPU-bound under a burst (docs/benchmarks.md).
"""

from __future__ import annotations

import contextvars
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from storage import codec
from storage.inbox import current_update

#: The update a call answers when it is made outside that update's handling (the outbox
#: sending what a handler queued), for the `update_header` (the playground's inspector).
ANSWERING: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "gridhorn_answering", default=None)

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_JSON = {"Content-Type": "application/json"}


class EncodedBody(RequestData):  # type: ignore[misc]  # final in PTB's stubs only
    """A call's parameters already encoded as one body."""

    headers = _FORM

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body


class JsonBody(EncodedBody):  # type: ignore[misc]
    """A call's parameters already as the Bot API's JSON (`bot.rawapi`): one `json.dumps`
    of the whole, instead of one per parameter and a urlencoding of the lot."""

    headers = _JSON


class AiohttpRequest(BaseRequest):
    """One aiohttp session with a bounded connection pool (keep-alive, HTTP/1.1)."""

    def __init__(self, connection_pool_size: int = 32, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0,
                 update_header: str | None = None) -> None:
        self.pool_size = connection_pool_size
        # the playground's emulator shows which update a call answered: named in this header
        self._update_header = update_header
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    @staticmethod
    def parse_json_payload(payload: bytes) -> Any:
        """Telegram's answer (PTB's hook for it): orjson, a few times faster than `json` on
        getUpdates' batches and every call's answer; PTB's own way for what orjson refuses,
        so that its errors stay as they were."""
        try:
            return codec.loads(payload)
        except ValueError:
            return BaseRequest.parse_json_payload(payload)

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size, force_close=False),
                headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

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
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        data: Any = None
        headers = None
        if request_data is not None and files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():  # InputFile.field_tuple
                form.add_field(name, content, filename=filename, content_type=mimetype)
            data = form
        elif request_data is not None:
            encoded = encoded_body(request_data)
            data, headers = encoded.body, encoded.headers
        if self._update_header is not None:
            mark = current_update.get()
            update_id = mark.update_id if mark is not None else ANSWERING.get()
            if update_id is not None:
                headers = {**(headers or {}), self._update_header: str(update_id)}
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        # aiohttp has no separate write timeout: the answer must come within write + read.
        timeout = aiohttp.ClientTimeout(
            total=None, connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=None if read is None else read + (write or 0.0))
        try:
            async with session.request(method, url, data=data, headers=headers,
                                       timeout=timeout, proxy=self._proxy_for(url)) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp times out with asyncio.TimeoutError, the same
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err


    def _proxy_for(self, url: str) -> str | None:
        """HTTP(S)_PROXY / NO_PROXY from the environment, as httpx honours them (where
        Telegram is reached through a proxy). Looked up once per host: aiohttp's own
        `trust_env` reads the environment on every request (measured: a third slower)."""
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0]
        key = (scheme, host)
        if key not in self._proxies:
            proxies = urllib.request.getproxies()
            bypass = urllib.request.proxy_bypass(host.rsplit(":", 1)[0]) if proxies else True
            self._proxies[key] = None if bypass else proxies.get(scheme)
        return self._proxies[key]


#: `Metrics.call`: one call ended, with its method, its outcome and (a 429's) answer
CallObserver = Callable[[str, str, "bytes | None"], None]


class MeteredRequest(BaseRequest):
    """Another request object, every call it makes counted by method and outcome (SPEC §15,
    `bot.metrics`): `ok`, the HTTP status of a refusal (400, 403, 429…), `5xx`, `timeout` or
    `network`. Built around whatever the runtime is given (the tests' own request objects,
    the HTTP worker), so the counting needs no hook in each; what else the wrapped object
    offers (`worker_calls`) is read through."""

    def __init__(self, inner: BaseRequest, observe: CallObserver) -> None:
        self.inner = inner
        self._observe = observe

    @property
    def read_timeout(self) -> float | None:
        return self.inner.read_timeout

    @property
    def speaks_json(self) -> bool:
        """The wrapped object takes `JsonBody` (`bot.rawapi`'s fast path)."""
        return isinstance(self.inner, AiohttpRequest)

    def parse_json_payload(self, payload: bytes) -> Any:  # type: ignore[override]
        return self.inner.parse_json_payload(payload)

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

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
        # a file's download (`retrieve`) is one label, not one per file
        name = "file" if "/file/bot" in url else url.rpartition("/")[2]
        try:
            status, body = await self.inner.do_request(
                url, method, request_data, read_timeout=read_timeout,
                write_timeout=write_timeout, connect_timeout=connect_timeout,
                pool_timeout=pool_timeout)
        except TimedOut:
            self._observe(name, "timeout", None)
            raise
        except NetworkError:
            self._observe(name, "network", None)
            raise
        except Exception:
            self._observe(name, "error", None)
            raise
        outcome = "ok" if status == 200 else str(status) if status < 500 else "5xx"
        self._observe(name, outcome, body if status == 429 else None)
        return status, body

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being made): no endless lookup
            raise AttributeError(name)
        return getattr(self.inner, name)


def encoded_body(request_data: RequestData) -> EncodedBody:
    """A call without files as one body: as it came (`JsonBody`), or its parameters
    urlencoded here (given a dict, aiohttp builds a multipart writer and a uuid4 boundary for
    every call before it settles on a urlencoded body)."""
    if isinstance(request_data, EncodedBody):
        return request_data
    return EncodedBody(urlencode(request_data.json_parameters).encode("ascii"))


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value
