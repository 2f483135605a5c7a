"""The call log's target/repeat classification of live answers (docs/outcomes.md "Reports", seed 002).

A call qualifies when its talk time is at or above the campaign's target duration.
Per number, a sales cycle is the half-open span [t, t + sales_cycle_days) opened by a
target call answered at t:
- a qualifying call while no cycle of its number is open is a TARGET and opens a cycle;
- a qualifying call inside its number's open cycle is a REPEAT (it does not extend the cycle);
- a call below the target duration is neither (None), and opens nothing.
Cycles are rolling from the target call's start, not calendar days (seed 002's Ringostat
counts calendar days and calls every later call that day a repeat; a rolling cycle needs no
time zone). A call's class depends on the number's whole history in the campaign: feed all
its live answers, not just a report's date range.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from collections.abc import Iterable

from agi.outcomes import CallClass, Result


class CallLike(Protocol):
    number: str | None
    answered_at: dt.datetime | None
    talk_seconds: int | None


@dataclass(frozen=True)
class Call:
    """One live-answer call of the log: the number dialed, when it was answered, how long they talked.

    The ORM Attempt has the same three attributes, so attempt rows can be passed as they are.
    """

    number: str | None
    answered_at: dt.datetime | None
    talk_seconds: int | None


def classify_calls(
    calls: Iterable[CallLike],
    target_seconds: float,
    sales_cycle_days: float,
) -> list[CallClass | None]:
    """The class of each call, in the order given. Calls are taken by answer time (ties keep
    the given order), so the input need not be sorted; give one campaign's live answers.
    A call without a number, answer time or talk time, or whose ``result`` (if it has one)
    is not a live answer, is neither (None)."""
    if target_seconds < 0:
        raise ValueError(f"target duration must be >= 0 seconds, got {target_seconds}")
    if sales_cycle_days <= 0:
        raise ValueError(f"sales cycle must be > 0 days, got {sales_cycle_days}")
    cycle = dt.timedelta(days=sales_cycle_days)
    calls = list(calls)
    classes: list[CallClass | None] = [None] * len(calls)
    cycle_end: dict[str, dt.datetime] = {}  # number -> end of its open (or last) cycle
    timed = [i for i, call in enumerate(calls) if call.answered_at is not None]
    for i in sorted(timed, key=lambda k: calls[k].answered_at):
        call = calls[i]
        if not call.number or call.talk_seconds is None or call.talk_seconds < target_seconds:
            continue
        if getattr(call, "result", None) not in (None, Result.LIVE_ANSWER):
            continue
        end = cycle_end.get(call.number)
        if end is not None and call.answered_at < end:
            classes[i] = CallClass.REPEAT
        else:
            classes[i] = CallClass.TARGET
            cycle_end[call.number] = call.answered_at + cycle
    return classes
