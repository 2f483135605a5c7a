"""The originator's one clock: call time (which a simulation may speed up) apart from real time
(cadences, graces, calls per second, heartbeats)."""

from __future__ import annotations

import datetime as dt

from agi.originator.clock import Clock


class Ticks:
    """A real-time source the test moves by hand."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_cadence_is_due_at_once_then_once_per_period_of_real_time():
    real = Ticks()
    every = Clock(now=lambda: 0.0, elapsed=real).every(5.0)
    assert every.due() and not every.due()
    real.t += 4.9
    assert not every.due()
    real.t += 0.1
    assert every.due() and not every.due()


def test_a_cadence_made_to_wait_is_first_due_a_period_after_it_was_made():
    real = Ticks()
    every = Clock(elapsed=real).every(5.0, at_once=False)
    assert not every.due()
    real.t += 5.0
    assert every.due()


def test_call_time_and_real_time_are_read_from_their_own_sources():
    clock = Clock(now=lambda: 3600.0, elapsed=Ticks(7.0), wall_s=lambda: 7200.0)
    assert clock.at() == dt.datetime(1970, 1, 1, 1, tzinfo=dt.timezone.utc)  # call time: the simulator's
    assert clock.wall() == dt.datetime(1970, 1, 1, 2, tzinfo=dt.timezone.utc)  # heartbeats: the real one
    assert clock.elapsed() == 7.0


def test_a_bare_function_given_as_clock_is_the_call_time_and_real_time_stays_the_machines():
    sim_now = lambda: 42.0  # noqa: E731
    clock = Clock.of(sim_now)
    assert clock.now is sim_now and clock.now() == 42.0
    assert abs(clock.wall_s() - dt.datetime.now(dt.timezone.utc).timestamp()) < 60
    assert Clock.of(clock) is clock
