"""The one backoff rule: `first`, doubled after each further failure, up to `cap`."""

from storage.backoff import Backoff, delay


def test_the_wait_doubles_from_the_first_up_to_the_cap():
    assert [delay(n, 0.5, 5.0) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert delay(10_000, 0.5, 300.0) == 300.0  # no overflow after a very long outage


def test_a_backoff_counts_failures_until_it_is_reset():
    backoff = Backoff(first=1.0, cap=3.0)
    assert [backoff.next() for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert backoff.failures == 4
    backoff.reset()
    assert backoff.next() == 1.0
