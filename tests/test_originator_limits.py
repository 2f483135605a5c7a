"""The calls-per-second limiter never lets more than the rate through in any one-second window."""

import math

import pytest
from hypothesis import given, strategies as st

from agi.originator.limits import RateLimiter


@pytest.mark.parametrize("rate,allowed_in_a_burst", [(1, 1), (3, 3), (2.5, 2), (0.5, 1), (50, 50)])
def test_a_fresh_limiter_allows_one_second_of_calls(rate, allowed_in_a_burst):
    assert RateLimiter(rate).available(100.0) == allowed_in_a_burst


def test_slower_than_one_call_per_second_spaces_calls_out():
    lim = RateLimiter(0.5, guard=0.0)
    lim.take(0.0)
    assert lim.available(1.9) == 0 and lim.available(2.0) == 1


def test_the_guard_widens_the_window_for_arrival_jitter():
    """A call arriving up to the guard late still leaves the far end's every second within the limit."""
    lim = RateLimiter(0.5, guard=0.05)
    lim.take(0.0)
    assert lim.available(2.0) == 0 and lim.available(2.06) == 1


def test_taking_more_than_allowed_is_refused():
    lim = RateLimiter(2)
    lim.take(0.0, 2)
    with pytest.raises(ValueError):
        lim.take(0.5)


@given(st.floats(0.2, 20), st.lists(st.floats(0, 0.5), min_size=1, max_size=200))
def test_no_one_second_window_ever_holds_more_than_the_rate(rate, gaps):
    lim, now, sent = RateLimiter(rate), 0.0, []
    for gap in gaps:
        now += gap
        n = lim.available(now)
        lim.take(now, n)
        sent += [now] * n
    for t in sent:
        in_window = sum(1 for s in sent if t - 1.0 < s <= t)
        assert in_window <= max(1, math.floor(rate + 1e-9))
