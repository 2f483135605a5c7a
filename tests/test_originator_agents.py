"""One campaign's agents as the originator keeps them (agi.originator.agents), without I/O:
queue snapshots in, agent time, wrap-ups ended and "nobody free since" out."""

from __future__ import annotations

import pytest

from agi.ami.queues import QueueSnapshot
from agi.originator.agents import AgentWatch, Freed


def snap(logged_in=0, available=0, in_call=0, paused=0) -> QueueSnapshot:
    return QueueSnapshot("sales", logged_in=logged_in, available=available, in_call=in_call, paused=paused)


THREE_ONE_FREE_ONE_TALKING = snap(logged_in=3, available=1, in_call=1)  # and one in wrap-up


@pytest.mark.parametrize("steps, busy_s, logged_s", [
    # two counted polls 10 s apart: the first poll's agents over those 10 s (2 busy of 3)
    ([(100, THREE_ONE_FREE_ONE_TALKING, True), (110, snap(logged_in=3, available=3), True)], 20.0, 30.0),
    # the first poll alone measures nothing
    ([(100, THREE_ONE_FREE_ONE_TALKING, True)], 0.0, 0.0),
    # a gap (AMI down, or the campaign not worked) is not counted
    ([(100, THREE_ONE_FREE_ONE_TALKING, True), (110, "gap", None), (120, THREE_ONE_FREE_ONE_TALKING, True),
      (125, THREE_ONE_FREE_ONE_TALKING, True)], 10.0, 15.0),
    # polls of a campaign not worked (sharing the queue) count nothing, and do not bridge a gap
    ([(100, THREE_ONE_FREE_ONE_TALKING, False), (110, THREE_ONE_FREE_ONE_TALKING, False),
      (120, THREE_ONE_FREE_ONE_TALKING, True)], 0.0, 0.0),
    # the clock standing still counts nothing
    ([(100, THREE_ONE_FREE_ONE_TALKING, True), (100, THREE_ONE_FREE_ONE_TALKING, True)], 0.0, 0.0),
])
def test_agent_time_counts_only_between_two_counted_polls_in_a_row(steps, busy_s, logged_s):
    watch = AgentWatch()
    for at, snapshot, counted in steps:
        if snapshot == "gap":
            watch.unobserved()
        else:
            watch.observe(snapshot, at, counted=counted)
    assert (watch.busy_s, watch.logged_s) == (busy_s, logged_s)
    assert sum(logged for _busy, logged in watch.time.pending.values()) == logged_s  # and pending to store
    assert watch.occupancy == (100.0 * busy_s / logged_s if logged_s else None)


def test_wrap_ups_end_first_in_first_out_when_fewer_agents_are_in_after_call_work():
    watch = AgentWatch()
    watch.completed(100.0, talk_s=30.0)
    watch.completed(105.0, talk_s=40.0)
    assert watch.acw_ages(110.0) == (10.0, 5.0)
    assert watch.observe(snap(logged_in=2, available=0, in_call=0), 110.0, counted=True) == []  # both wrap up
    assert watch.observe(snap(logged_in=2, available=1), 112.0, counted=True) == [Freed(30.0, 12.0)]
    assert watch.observe(snap(logged_in=2, available=2), 120.0, counted=False) == [Freed(40.0, 15.0)]
    assert watch.acw_pending == []


def test_nobody_free_is_timed_from_the_first_poll_that_shows_it_until_one_is():
    watch = AgentWatch()
    assert watch.now == QueueSnapshot("") and watch.no_agents_since is None  # not polled yet: all zero
    watch.observe(snap(logged_in=2, in_call=2), 100.0, counted=True)
    watch.observe(snap(logged_in=2, in_call=2), 130.0, counted=True)
    assert watch.no_agents_since == 100.0
    watch.observe(snap(logged_in=2, available=1, in_call=1), 140.0, counted=True)
    assert watch.no_agents_since is None and watch.now.available == 1
