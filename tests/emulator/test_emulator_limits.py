"""Unit tests of the flood-limit sliding windows (with a fake clock)."""

from __future__ import annotations

import pytest

from emulator import FloodLimiter, FloodLimits


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_one_message_per_chat_per_second(clock: FakeClock) -> None:
    limiter = FloodLimiter(FloodLimits(), clock)
    assert limiter.try_acquire(1, is_group=False) is None
    clock.now += 0.2
    assert limiter.try_acquire(1, is_group=False) == 1  # ceil(0.8)
    assert limiter.try_acquire(2, is_group=False) is None  # other chats are independent
    clock.now += 0.8
    assert limiter.try_acquire(1, is_group=False) is None  # the rejected call was not counted


def test_overall_limit_across_chats(clock: FakeClock) -> None:
    limiter = FloodLimiter(FloodLimits(overall_per_s=30), clock)
    for chat_id in range(30):
        assert limiter.try_acquire(chat_id, is_group=False) is None
    assert limiter.try_acquire(99, is_group=False) == 1
    clock.now += 0.999
    assert limiter.try_acquire(99, is_group=False) == 1
    clock.now += 0.001
    assert limiter.try_acquire(99, is_group=False) is None


def test_twenty_per_minute_per_group(clock: FakeClock) -> None:
    limiter = FloodLimiter(FloodLimits(group_per_min=20), clock)
    for _ in range(20):
        assert limiter.try_acquire(-100, is_group=True) is None
        clock.now += 1.0
    assert limiter.try_acquire(-100, is_group=True) == 40  # the first send leaves at t0+60
    # private chats are not capped per minute
    assert limiter.try_acquire(555, is_group=False) is None
    clock.now += 40
    assert limiter.try_acquire(-100, is_group=True) is None


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FloodLimits(chat_per_s=0)
