"""Target/repeat classification of the call log (docs/outcomes.md "Reports", seed 002)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi.db.models import Attempt
from agi.outcomes import CallClass, Result
from agi.rules.target import Call, classify_calls

UTC = dt.timezone.utc
TARGET, REPEAT = CallClass.TARGET, CallClass.REPEAT
DAVID, TOM = "+12125550101", "+12125550102"


def at(day, h, mi=0) -> dt.datetime:
    return dt.datetime(2026, 6, day, h, mi, tzinfo=UTC)


def test_labels():
    assert (TARGET.value, TARGET.label, REPEAT.value, REPEAT.label) == ("target", "Target", "repeat", "Repeat")


def test_seed_example_target_30_s_cycle_one_day():
    calls = [
        Call(DAVID, at(1, 9), 27),  # talks 27 s: below target
        Call(DAVID, at(1, 9, 30), 24),  # 24 s: below
        Call(DAVID, at(1, 11, 30), 180),  # 3 min: the target call
        Call(DAVID, at(1, 15), 45),  # later the same day, long enough: repeat
        Call(DAVID, at(1, 16), 10),  # short: neither
        Call(DAVID, at(2, 12), 31),  # a day after the target: a new cycle
    ]
    assert classify_calls(calls, 30, 1) == [None, None, TARGET, REPEAT, None, TARGET]


CASES = [
    # (calls as (number, answered_at, talk seconds), target s, cycle days, expected)
    ([(DAVID, at(1, 9), 30)], 30, 1, [TARGET]),  # exactly the target duration counts
    ([(DAVID, at(1, 9), 29)], 30, 1, [None]),
    ([(DAVID, at(1, 9), None)], 30, 1, [None]),  # talk time unknown
    ([(None, at(1, 9), 100)], 30, 1, [None]),  # no number
    ([(DAVID, None, 100)], 30, 1, [None]),  # never answered
    ([(DAVID, at(1, 9), 0)], 0, 1, [TARGET]),  # target 0: every live answer qualifies
    # the cycle is half-open: exactly one cycle later opens a new one
    ([(DAVID, at(1, 9), 60), (DAVID, at(2, 8, 59), 60), (DAVID, at(2, 9), 60)], 30, 1, [TARGET, REPEAT, TARGET]),
    # repeats do not extend the cycle
    ([(DAVID, at(1, 9), 60), (DAVID, at(1, 23), 60), (DAVID, at(2, 10), 60)], 30, 1, [TARGET, REPEAT, TARGET]),
    # short calls open nothing
    ([(DAVID, at(1, 9), 5), (DAVID, at(1, 10), 60), (DAVID, at(1, 11), 60)], 30, 1, [None, TARGET, REPEAT]),
    # numbers are independent
    ([(DAVID, at(1, 9), 60), (TOM, at(1, 10), 60), (DAVID, at(1, 11), 60), (TOM, at(1, 12), 5)], 30, 1, [TARGET, TARGET, REPEAT, None]),
    # a 7-day cycle
    ([(DAVID, at(1, 9), 60), (DAVID, at(5, 9), 60), (DAVID, at(8, 8), 60), (DAVID, at(8, 9), 60)], 30, 7, [TARGET, REPEAT, REPEAT, TARGET]),
    # a fractional cycle (12 hours)
    ([(DAVID, at(1, 9), 60), (DAVID, at(1, 20), 60), (DAVID, at(1, 21), 60)], 30, 0.5, [TARGET, REPEAT, TARGET]),
    # input out of time order: classified by answer time, returned in input order
    ([(DAVID, at(1, 15), 60), (DAVID, at(1, 9), 60)], 30, 1, [REPEAT, TARGET]),
    # equal answer times keep the given order
    ([(DAVID, at(1, 9), 60), (DAVID, at(1, 9), 60)], 30, 1, [TARGET, REPEAT]),
    ([], 30, 1, []),
]


@pytest.mark.parametrize("calls, target, cycle, expected", CASES)
def test_target_and_repeat_calls(calls, target, cycle, expected):
    assert classify_calls([Call(*c) for c in calls], target, cycle) == expected


def test_orm_attempt_rows_can_be_passed_and_non_live_answers_are_never_targets():
    rows = [
        Attempt(number=DAVID, answered_at=at(1, 9), talk_seconds=90, result=Result.MACHINE_ANSWER.value),
        Attempt(number=DAVID, answered_at=at(1, 10), talk_seconds=90, result=Result.LIVE_ANSWER.value),
        Attempt(number=DAVID, answered_at=at(1, 11), talk_seconds=90, result=Result.LIVE_ANSWER.value),
    ]
    assert classify_calls(rows, 60, 1) == [None, TARGET, REPEAT]


def test_any_object_with_the_three_attributes_works():
    assert classify_calls([SimpleNamespace(number=TOM, answered_at=at(1, 9), talk_seconds=61)], 60, 1) == [TARGET]


@pytest.mark.parametrize("target, cycle, message", [(-1, 1, "target duration"), (30, 0, "sales cycle"), (30, -1, "sales cycle")])
def test_bad_settings_are_refused(target, cycle, message):
    with pytest.raises(ValueError, match=message):
        classify_calls([], target, cycle)


_calls = st.lists(
    st.builds(
        Call,
        number=st.sampled_from([DAVID, TOM, "+442079460958"]),
        answered_at=st.integers(0, 14 * 24 * 60).map(lambda m: at(1, 0) + dt.timedelta(minutes=m)),
        talk_seconds=st.one_of(st.none(), st.integers(0, 300)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(calls=_calls, target=st.integers(0, 200), cycle=st.sampled_from([0.25, 1, 2, 7]))
def test_cycle_properties(calls, target, cycle):
    classes = classify_calls(calls, target, cycle)
    span = dt.timedelta(days=cycle)
    for call, cls in zip(calls, classes):
        qualifies = call.talk_seconds is not None and call.talk_seconds >= target
        assert (cls is not None) == qualifies
    by_number: dict[str, list[tuple[dt.datetime, CallClass]]] = {}
    for call, cls in sorted(zip(calls, classes), key=lambda p: p[0].answered_at):
        if cls is not None:
            by_number.setdefault(call.number, []).append((call.answered_at, cls))
    for events in by_number.values():
        assert events[0][1] is TARGET  # a number's first qualifying call is a target
        last_target = None
        for when, cls in events:
            if cls is TARGET:
                assert last_target is None or when >= last_target + span  # targets a cycle apart at least
                last_target = when
            else:
                assert when < last_target + span  # a repeat lies in the open cycle
    # the classes do not depend on the order calls are given in (ties aside)
    if len({c.answered_at for c in calls}) == len(calls):
        shuffled = list(reversed(calls))
        assert list(reversed(classify_calls(shuffled, target, cycle))) == classes
