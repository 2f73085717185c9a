"""The playground's page server (aiohttp, 127.0.0.1 only): the page's static files, its JSON
API and the server-sent event stream (docs/playground.md).

Only the loopback address is served: a request from anywhere else gets 403. Every answer
carries `Content-Security-Policy: default-src 'self'`, so the page can load nothing and run
nothing that is not its own files.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import socket
from importlib import resources
from typing import Any

from aiohttp import web

from bot.settings import is_loopback
from playground.session import Playground, StepError
from playground.strings import page_strings
from playground.transcript import Action, TranscriptError, dumps, loads

CSP = "default-src 'self'"
#: Seconds between comments on an idle event stream (keeps proxies and the browser happy).
KEEPALIVE = 15.0
LANGS = ("zh-Hans", "zh-Hant", "en")


@web.middleware
async def _guard(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.remote is None or not is_loopback(request.remote):
        return web.Response(status=403, text="the playground serves 127.0.0.1 only",
                            headers={"Content-Security-Policy": CSP})
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        exc.headers["Content-Security-Policy"] = CSP
        raise
    if not response.prepared:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _bad(message: str) -> web.Response:
    return _json({"error": message}, status=400)


class PageServer:
    def __init__(self, playground: Playground) -> None:
        self.playground = playground
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.port = 0
        self.tour: Any = None  # playground.tour.TourPlayer, set by the caller when it exists

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_guard], client_max_size=8 * 1024 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{path:.+}", self._static)
        app.router.add_get("/media/{file_id}", self._media)
        app.router.add_get("/api/world", self._world)
        app.router.add_get("/api/events", self._events)
        app.router.add_post("/api/send", self._send)
        app.router.add_post("/api/photo", self._photo)
        app.router.add_post("/api/press", self._press)
        app.router.add_get("/api/inspect", self._inspect)
        app.router.add_get("/api/log", self._log)
        app.router.add_post("/api/reset", self._reset)
        app.router.add_post("/api/tour", self._tour)
        app.router.add_get("/api/transcript", self._transcript)
        app.router.add_post("/api/replay", self._replay)
        return app

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:`port` (0: a free one); the page's URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.setblocking(False)
            runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            raise
        self._runner = runner
        self.port = sock.getsockname()[1]
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def stop(self) -> None:
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ files

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.match_info["path"])

    def _file(self, path: str) -> web.StreamResponse:
        parts = path.split("/")
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise web.HTTPNotFound()
        resource = resources.files("playground").joinpath("static", *parts)
        if not resource.is_file():
            raise web.HTTPNotFound()
        kind = mimetypes.guess_type(parts[-1])[0] or "application/octet-stream"
        if parts[-1].endswith(".js"):
            kind = "text/javascript"
        return web.Response(body=resource.read_bytes(), content_type=kind,
                            charset="utf-8" if kind.startswith("text/") else None,
                            headers={"Cache-Control": "no-cache"})

    async def _media(self, request: web.Request) -> web.StreamResponse:
        found = self.playground.media(request.match_info["file_id"])
        if found is None:
            raise web.HTTPNotFound()
        body, kind = found
        return web.Response(body=body, content_type=kind)

    # ------------------------------------------------------------------ reads

    def _lang(self, request: web.Request) -> str:
        lang = request.query.get("lang", "")
        return lang if lang in LANGS else self.playground.lang

    async def _world(self, request: web.Request) -> web.StreamResponse:
        lang = self._lang(request)
        view = self.playground.world_view(lang)
        view["langs"] = list(LANGS)
        view["strings"] = page_strings(lang)
        view["tour"] = self.tour.state(lang) if self.tour is not None else None
        return _json(view)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        text = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
        after = int(text) if text.isdigit() else 0
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP, "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        feed = self.playground.feed
        try:
            while not self._closing.is_set():
                events = await feed.wait(after, KEEPALIVE)
                if not events:
                    await response.write(b": idle\n\n")
                    continue
                chunk = []
                for event in events:
                    data = json.dumps(event.data, ensure_ascii=False)
                    chunk.append(f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n")
                    after = event.id
                await response.write("".join(chunk).encode("utf-8"))
        except ConnectionResetError:  # the page went away (aiohttp's error is one of these)
            pass
        return response

    async def _inspect(self, request: web.Request) -> web.StreamResponse:
        try:
            chat_id, message_id = int(request.query["chat_id"]), int(request.query["message_id"])
        except (KeyError, ValueError):
            return _bad("chat_id and message_id are numbers")
        return _json(self.playground.inspect(chat_id, message_id))

    async def _log(self, request: web.Request) -> web.StreamResponse:
        return _json({"calls": self.playground.call_log()})

    async def _transcript(self, request: web.Request) -> web.StreamResponse:
        body = dumps(self.playground.lang, self.playground.steps)
        return web.Response(text=body, content_type="application/x-ndjson", headers={
            "Content-Disposition": 'attachment; filename="gridhorn-transcript.jsonl"'})

    # ------------------------------------------------------------------ actions

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="a JSON body is expected") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="a JSON object is expected")
        return data

    def _action(self, kind: str, data: dict[str, Any]) -> Action:
        playground = self.playground
        try:
            person = playground.person_key(int(data["user_id"]))
            chat = playground.chat_key(int(data["chat_id"]))
            thread = int(data["thread_id"]) if data.get("thread_id") is not None else None
            reply = int(data["reply_to"]) if data.get("reply_to") is not None else None
        except (KeyError, ValueError, TypeError):
            raise StepError("user_id and chat_id are numbers") from None
        if kind == "press":
            message = int(data.get("message_id") or 0)
            button = playground.button_text(int(data["chat_id"]), message, str(data.get("data")))
            return Action("press", person, chat, message=message, data=str(data.get("data")),
                          button=button)
        text = str(data.get("text") or data.get("caption") or "")
        if kind == "send" and not text.strip():
            raise StepError("an empty message is not sent")
        return Action(kind, person, chat, text=text, thread=thread, reply_to=reply)  # type: ignore[arg-type]

    async def _step(self, request: web.Request, kind: str) -> web.StreamResponse:
        data = await self._body(request)
        try:
            record = await self.playground.act(self._action(kind, data))
        except StepError as exc:
            return _bad(str(exc))
        return _json({"step": record.step})

    async def _send(self, request: web.Request) -> web.StreamResponse:
        return await self._step(request, "send")

    async def _photo(self, request: web.Request) -> web.StreamResponse:
        return await self._step(request, "photo")

    async def _press(self, request: web.Request) -> web.StreamResponse:
        return await self._step(request, "press")

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        if self.tour is not None:
            await self.tour.stop()
        await self.playground.reset()
        return _json({})

    async def _tour(self, request: web.Request) -> web.StreamResponse:
        if self.tour is None:
            return _bad("no tour")
        data = await self._body(request)
        state = await self.tour.command(str(data.get("action", "")), data.get("speed"),
                                        self._lang(request))
        return _json(state)

    async def _replay(self, request: web.Request) -> web.StreamResponse:
        if self.tour is not None:
            await self.tour.stop()
        try:
            _, steps = loads(await request.text())
        except TranscriptError as exc:
            return _bad(str(exc))
        failed, diff = await self.playground.replay(steps)
        return _json({"ok": failed is None, "steps": len(steps), "failed_step": failed,
                      "difference": diff})
