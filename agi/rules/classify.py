"""Failed originates: OriginateResponse Reason + the Q.850 causes of the attempt's channels -> result.

docs/outcomes.md "Asterisk facts": real Asterisk 22 codes, not seed 001's simplified Reason table. The
OriginateResponse and the call's own Newchannel/Hangup events come in no fixed order (under load
the response can come first: tests/traces/ami-originate-*-response-first.txt), so a failure is
classified only once ``cause_known`` says so, or after a grace the caller waits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from agi.outcomes import Result

# Q.850 cause -> result (ITU-T Q.850 table 1; Asterisk's causes.h)
Q850_RESULTS: dict[int, Result] = {
    1: Result.DISCONNECTED,  # unallocated (unassigned) number
    22: Result.DISCONNECTED,  # number changed
    28: Result.DISCONNECTED,  # invalid number format
    17: Result.BUSY,  # user busy
    18: Result.NO_ANSWER,  # no user responding
    19: Result.NO_ANSWER,  # no answer from user (user alerted)
    21: Result.REJECTED,  # call rejected
    27: Result.SERVICE_ERROR,  # destination out of order
    34: Result.SERVICE_ERROR,  # no circuit/channel available
    38: Result.SERVICE_ERROR,  # network out of order
    41: Result.SERVICE_ERROR,  # temporary failure
    42: Result.SERVICE_ERROR,  # switching equipment congestion
    44: Result.SERVICE_ERROR,  # requested circuit/channel not available
    47: Result.SERVICE_ERROR,  # resource unavailable, unspecified
    58: Result.SERVICE_ERROR,  # bearer capability not presently available
    66: Result.SERVICE_ERROR,  # channel type not implemented
    88: Result.SERVICE_ERROR,  # incompatible destination
}

# OriginateResponse Reason (Asterisk's AST_CONTROL_* codes) when no cause is known
REASON_FAILURE = 0  # no such tech/extension, or the far end failed the call
REASON_HANGUP = 1  # hung up before answer
REASON_RING_TIMEOUT = 3
REASON_ANSWERED = 4
REASON_BUSY = 5
REASON_CONGESTION = 8
REASON_RESULTS: dict[int, Result] = {
    REASON_BUSY: Result.BUSY,
    REASON_RING_TIMEOUT: Result.NO_ANSWER,
    REASON_CONGESTION: Result.SERVICE_ERROR,
    REASON_FAILURE: Result.SERVICE_ERROR,
    REASON_HANGUP: Result.NO_ANSWER,
}


def first_cause(causes: Iterable[int | None]) -> int | None:
    """The first non-zero cause among the attempt's channels, in event order."""
    for cause in causes:
        if cause:
            return cause
    return None


def cause_known(causes: Iterable[int | None], appeared: Collection[str], hung_up: Collection[str]) -> bool:
    """Whether a failed attempt's cause is in: a non-zero cause arrived, or every channel of the
    attempt that appeared (Uniqueids) has hung up, one at least.

    Not merely the first Hangup: a Local pair's ;1 half can hang up with Cause 0 before the ;2
    half brings the real cause (ami-originate-busy-response-first.txt: Cause 0, then 17).
    """
    if first_cause(causes) is not None:
        return True
    return bool(appeared) and set(appeared) <= set(hung_up)


def classify_failure(reason: int | None, causes: Iterable[int | None] = (), channel_created: bool = True) -> Result:
    """The result of an originate that did not reach the dialplan: the first non-zero cause, else
    the Reason (a busy Reason is busy even before any channel event), else "no channel at all"
    (``channel_created`` False, after the grace) is a service error, else other."""
    cause = first_cause(causes)
    if cause is not None:
        return Q850_RESULTS.get(cause, Result.OTHER)
    if reason in REASON_RESULTS:
        return REASON_RESULTS[reason]
    if not channel_created:
        return Result.SERVICE_ERROR
    return Result.OTHER
