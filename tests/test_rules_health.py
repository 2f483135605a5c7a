"""`dialer status`'s judgement: each component ok or down, the whole healthy, degraded or down."""

from __future__ import annotations

import datetime as dt

import pytest

from agi.rules import health
from agi.rules.health import Level

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
DB_OK = health.database(True, "0005", "0005")


def orig(name="box1", age=1.0, beating=True, stopped=False, ami=True) -> health.Check:
    last = None if age is None else NOW - dt.timedelta(seconds=age)
    return health.originator(name, last_beat=last, beat_age_s=age, beating=beating,
                             stopped_at=NOW if stopped else None, ami_connected=ami, lines_in_use=3, lines=30)


def agi(address="10.0.0.1:4573", age=1.0, alive=True, stopped=False) -> health.Check | None:
    last = None if age is None else NOW - dt.timedelta(seconds=age)
    return health.agi_server(address, last_beat=last, beat_age_s=age, alive=alive,
                             stopped_at=NOW if stopped else None, live_sessions=4)


@pytest.mark.parametrize("check, level, working, words", [
    (lambda: health.database(False, None, "0005", "connection refused"), Level.DOWN, False, "unreachable"),
    (lambda: health.database(True, "0003", "0005"), Level.DOWN, False, "dialer db upgrade"),
    (lambda: DB_OK, Level.OK, True, "newest"),
    (lambda: orig(), Level.OK, True, "AMI connected"),
    (lambda: orig(age=12.0, beating=False), Level.DOWN, False, "not beating"),
    (lambda: orig(ami=False), Level.DOWN, False, "AMI disconnected"),
    (lambda: orig(stopped=True, beating=False), Level.OK, False, "graceful"),
    (lambda: orig(age=None, beating=False), Level.OK, False, "never started"),
    (lambda: agi(), Level.OK, True, "4 live sessions"),
    (lambda: agi(age=9.0, alive=False), Level.DOWN, False, "not beating"),
    (lambda: agi(stopped=True, alive=False), Level.OK, False, "graceful"),
])
def test_each_component_is_ok_or_down_and_says_why(check, level, working, words):
    c = check()
    assert (c.level, c.working) == (level, working)
    assert words in c.detail


def test_a_fastagi_address_silent_for_a_day_is_retired_not_down():
    assert agi(age=health.AGI_SERVER_FORGOTTEN_AFTER_S + 1, alive=False) is None
    assert agi(age=None, alive=False) is None


@pytest.mark.parametrize("checks, expected", [
    ([DB_OK], Level.OK),  # nothing has run yet: nothing is failing
    ([DB_OK, orig(), agi()], Level.OK),
    ([DB_OK, orig("a"), orig("b", age=40.0, beating=False), agi()], Level.DEGRADED),  # one box of two died
    ([DB_OK, orig(), agi("x:1"), agi("y:1", age=9.0, alive=False)], Level.DEGRADED),  # one server of two died
    ([DB_OK, orig(age=9.0, beating=False), agi()], Level.DOWN),  # the only originator was killed
    ([DB_OK, orig(ami=False), agi()], Level.DOWN),  # it beats, but cannot reach Asterisk
    ([DB_OK, orig(), agi(age=9.0, alive=False)], Level.DOWN),  # nobody takes the answered calls
    ([DB_OK, orig()], Level.DOWN),  # an originator and no FastAGI server ever
    ([DB_OK, orig(stopped=True, beating=False), agi()], Level.DOWN),  # every originator stopped: nothing dials
    ([health.database(False, None, "0005", "refused")], Level.DOWN),
    ([DB_OK, orig("a"), orig("b", stopped=True, beating=False), agi()], Level.OK),  # a graceful stop is no failure
])
def test_the_whole_is_down_when_no_call_can_be_made_or_taken_degraded_when_a_part_is_down(checks, expected):
    assert health.overall(checks) is expected
