"""Counting every Bot API call by method and outcome (`bot.http.MeteredRequest`, SPEC §15),
around any request object, through python-telegram-bot's own `post`."""

from __future__ import annotations

from typing import Any

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.request import BaseRequest

from bot.http import MeteredRequest
from bot.metrics import Metrics

pytestmark = pytest.mark.asyncio


class Scripted(BaseRequest):
    """Answers each call with the next of `answers`: (status, body) or an exception."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.worker_calls = 3

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any
                         ) -> tuple[int, bytes]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_each_outcome_is_counted_and_the_429s_wait_summed() -> None:
    metrics = Metrics()
    request = MeteredRequest(Scripted([
        (200, b'{"ok":true,"result":true}'),
        (429, b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3",'
              b'"parameters":{"retry_after":3}}'),
        (400, b'{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}'),
        (502, b'{"ok":false,"error_code":502,"description":"Bad Gateway"}'),
        TimedOut(), NetworkError("down"), (200, b'{"ok":true,"result":true}'),
    ]), metrics.call)
    base = "http://127.0.0.1:1/bot1:x"
    assert await request.post(f"{base}/sendMessage") is True
    for error in (RetryAfter, BadRequest, NetworkError, TimedOut, NetworkError):
        with pytest.raises(error):
            await request.post(f"{base}/sendMessage")
    await request.retrieve("http://127.0.0.1:1/file/bot1:x/photos/file_7.jpg")
    text = metrics.exposition().decode()
    for outcome in ("ok", "429", "400", "5xx", "timeout", "network"):
        assert f'gridhorn_api_calls_total{{method="sendMessage",outcome="{outcome}"}} 1.0' \
            in text, outcome
    assert 'gridhorn_api_calls_total{method="file",outcome="ok"} 1.0' in text
    assert "gridhorn_api_429_total 1.0" in text
    assert "gridhorn_api_429_wait_seconds_total 3.0" in text
    assert request.worker_calls == 3  # what the wrapped object offers is read through
    assert request.read_timeout == 1.0 and not request.speaks_json
