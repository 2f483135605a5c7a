"""Failed originates: Q.850 causes and OriginateResponse Reason -> result (docs/outcomes.md "Asterisk facts")."""

from __future__ import annotations

import pytest
from conftest import TRACES

from agi.outcomes import DIAL_RESULTS, Result
from agi.rules.classify import (
    Q850_RESULTS,
    REASON_ANSWERED,
    REASON_BUSY,
    REASON_CONGESTION,
    REASON_FAILURE,
    REASON_HANGUP,
    REASON_RING_TIMEOUT,
    REASON_RESULTS,
    cause_known,
    classify_failure,
    first_cause,
)

# docs/outcomes.md, cause by cause
SPEC_CAUSES = {
    1: Result.DISCONNECTED,  # unallocated
    22: Result.DISCONNECTED,  # number changed
    28: Result.DISCONNECTED,  # invalid number format
    17: Result.BUSY,  # user busy
    18: Result.NO_ANSWER,  # no user responding
    19: Result.NO_ANSWER,  # no answer
    21: Result.REJECTED,  # call rejected
    27: Result.SERVICE_ERROR,
    34: Result.SERVICE_ERROR,
    38: Result.SERVICE_ERROR,
    41: Result.SERVICE_ERROR,
    42: Result.SERVICE_ERROR,
    44: Result.SERVICE_ERROR,
    47: Result.SERVICE_ERROR,
    58: Result.SERVICE_ERROR,
    66: Result.SERVICE_ERROR,
    88: Result.SERVICE_ERROR,
}


@pytest.mark.parametrize("cause, result", sorted(SPEC_CAUSES.items()))
def test_every_q850_cause_of_the_spec_gives_its_result(cause, result):
    assert classify_failure(REASON_FAILURE, [cause]) is result
    assert classify_failure(None, [cause]) is result


def test_the_cause_table_is_exactly_the_specs():
    assert Q850_RESULTS == SPEC_CAUSES


@pytest.mark.parametrize("cause", [2, 3, 16, 20, 31, 50, 57, 65, 69, 79, 81, 95, 99, 102, 111, 127, 500])
def test_any_other_cause_is_other(cause):
    assert classify_failure(REASON_FAILURE, [cause]) is Result.OTHER


@pytest.mark.parametrize(
    "reason, result",
    [
        (REASON_BUSY, Result.BUSY),
        (REASON_RING_TIMEOUT, Result.NO_ANSWER),
        (REASON_CONGESTION, Result.SERVICE_ERROR),
        (REASON_FAILURE, Result.SERVICE_ERROR),
        (REASON_HANGUP, Result.NO_ANSWER),
        (REASON_ANSWERED, Result.OTHER),  # answered but never reached the dialplan
        (2, Result.OTHER),
        (7, Result.OTHER),
        (None, Result.OTHER),
    ],
)
def test_reason_decides_when_no_cause_is_known(reason, result):
    assert classify_failure(reason, []) is result
    assert classify_failure(reason, [0, None, 0]) is result  # Cause: 0 (Unknown) is no cause


def test_reason_codes_are_asterisks():
    assert (REASON_FAILURE, REASON_HANGUP, REASON_RING_TIMEOUT, REASON_ANSWERED, REASON_BUSY, REASON_CONGESTION) == (0, 1, 3, 4, 5, 8)
    assert set(REASON_RESULTS) == {0, 1, 3, 5, 8}


@pytest.mark.parametrize(
    "reason, result",
    [
        (REASON_BUSY, Result.BUSY),  # a busy Reason is busy even if no channel event was seen yet
        (REASON_RING_TIMEOUT, Result.NO_ANSWER),
        (REASON_HANGUP, Result.NO_ANSWER),
        (REASON_CONGESTION, Result.SERVICE_ERROR),
        (REASON_FAILURE, Result.SERVICE_ERROR),
        (REASON_ANSWERED, Result.SERVICE_ERROR),  # no Reason of a failure, and no channel at all
        (7, Result.SERVICE_ERROR),
        (None, Result.SERVICE_ERROR),
    ],
)
def test_with_no_channel_at_all_the_reason_decides_before_the_no_channel_fallback(reason, result):
    assert classify_failure(reason, [], channel_created=False) is result


@pytest.mark.parametrize(
    "causes, first, result",
    [
        ([0, 34], 34, Result.SERVICE_ERROR),
        ([17, 0], 17, Result.BUSY),
        ([None, 0, 21, 17], 21, Result.REJECTED),
        ([19, 16], 19, Result.NO_ANSWER),
        ([16, 19], 16, Result.OTHER),
        ([], None, None),
        ([0, None], None, None),
    ],
)
def test_the_first_non_zero_cause_wins(causes, first, result):
    assert first_cause(causes) == first
    if result is not None:
        assert classify_failure(REASON_BUSY, causes) is result


def test_a_known_cause_beats_the_reason():
    assert classify_failure(REASON_BUSY, [21]) is Result.REJECTED
    assert classify_failure(REASON_RING_TIMEOUT, [17]) is Result.BUSY


def test_classification_only_gives_dial_results():
    results = {classify_failure(r, c, ch) for r in (None, 0, 1, 3, 4, 5, 8, 9) for c in ([], [1], [17], [34], [99]) for ch in (True, False)}
    assert results <= DIAL_RESULTS
    assert results == {Result.DISCONNECTED, Result.BUSY, Result.NO_ANSWER, Result.SERVICE_ERROR, Result.OTHER}


A, A2 = "ea237bae-9a85-48c2-8967-e3c7561072ee", "ea237bae-9a85-48c2-8967-e3c7561072ee;2"


@pytest.mark.parametrize(
    "causes, appeared, hung_up, known",
    [
        ([], [], [], False),  # the response came first: nothing seen yet
        ([], [A], [], False),  # a channel, still up
        ([], [A, A2], [], False),
        ([0], [A, A2], [A], False),  # the ;1 half went with Cause 0; the ;2 half's cause is to come
        ([0, 17], [A, A2], [A, A2], True),
        ([21], [A, A2], [A2], True),  # a non-zero cause settles it at once
        ([0], [A], [A], True),  # one channel, gone without a cause: the Reason decides
        ([0, 0], [A, A2], [A, A2], True),  # both halves gone (nonexistent extension)
        ([17], [], [], True),
    ],
)
def test_the_cause_is_known_once_every_channel_seen_hung_up_or_a_cause_came(causes, appeared, hung_up, known):
    assert cause_known(causes, appeared, hung_up) is known


# --- the real Asterisk 22 traces --------------------------------------------------------------


def _events(path):
    """AMI messages from Asterisk ('<' lines), as dicts, in order."""
    events, current = [], {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1] != "<":
            continue
        text = parts[2] if len(parts) == 3 else ""
        if not text.strip():
            if current:
                events.append(current)
            current = {}
        elif ": " in text:
            key, value = text.split(": ", 1)
            current.setdefault(key, value)
    if current:
        events.append(current)
    return events


TRACE_RESULTS = [
    ("ami-originate-busy.txt", Result.BUSY),
    ("ami-originate-congestion.txt", Result.SERVICE_ERROR),
    ("ami-originate-noanswer-timeout.txt", Result.NO_ANSWER),
    ("ami-originate-unallocated.txt", Result.DISCONNECTED),
    ("ami-originate-rejected.txt", Result.REJECTED),
    ("ami-originate-numberchanged.txt", Result.DISCONNECTED),
    ("ami-originate-nonexistent-exten.txt", Result.SERVICE_ERROR),
    ("ami-originate-nonexistent-tech.txt", Result.SERVICE_ERROR),
]


@pytest.mark.parametrize("name, result", TRACE_RESULTS + [
    ("ami-originate-busy-response-first.txt", Result.BUSY),
    ("ami-originate-rejected-response-first.txt", Result.REJECTED),
])
def test_real_failed_originates_classify_as_the_spec_says(name, result):
    events = _events(TRACES / name)
    (response,) = [e for e in events if e.get("Event") == "OriginateResponse"]
    assert response["Response"] == "Failure"
    attempt_id = response["Uniqueid"]
    hangups = [e for e in events if e.get("Event") == "Hangup" and e["Uniqueid"].split(";")[0] == attempt_id]
    causes = [int(e["Cause"]) for e in hangups]
    assert classify_failure(int(response["Reason"]), causes, channel_created=bool(hangups)) is result


def replay(events: list[dict], attempt_id: str) -> tuple[list[tuple[str, bool, bool]], list[int]]:
    """The attempt's events folded in wire order, as the originator sees them: after each one,
    (event and leg, is the cause known, was a channel seen); and the causes at the end."""
    appeared: list[str] = []
    hung_up: list[str] = []
    causes: list[int] = []
    steps = []
    for e in events:
        uniqueid = e.get("Uniqueid", "")
        if uniqueid.split(";")[0] != attempt_id:
            continue
        if e.get("Event") in ("Newchannel", "Hangup"):
            appeared.append(uniqueid)
        if e.get("Event") == "Hangup":
            hung_up.append(uniqueid)
            causes.append(int(e["Cause"]))
        label = f"{e['Event']} {uniqueid.removeprefix(attempt_id) or ';1'}"
        steps.append((label, cause_known(causes, appeared, hung_up), bool(appeared)))
    return steps, causes


# trace, the event the cause is known at, the result then, the result had it been decided at the response
RESPONSE_FIRST = [
    ("ami-originate-busy-response-first.txt", "Hangup ;2", Result.BUSY, Result.BUSY),
    ("ami-originate-rejected-response-first.txt", "Hangup ;2", Result.REJECTED, Result.SERVICE_ERROR),
]


@pytest.mark.parametrize("name, known_at, result, at_response", RESPONSE_FIRST)
def test_response_first_traces_are_decided_only_when_their_cause_is_known(name, known_at, result, at_response):
    events = _events(TRACES / name)
    response = events[0]
    assert response["Event"] == "OriginateResponse" and response["Response"] == "Failure"
    attempt_id, reason = response["Uniqueid"], int(response["Reason"])
    steps, causes = replay(events, attempt_id)
    assert steps[0] == ("OriginateResponse ;1", False, False)  # nothing known when the response comes
    first_known = next(i for i, (_, known, _) in enumerate(steps) if known)
    assert steps[first_known][0] == known_at
    assert all(known for _, known, _ in steps[first_known:])
    assert classify_failure(reason, causes, channel_created=True) is result
    # deciding at the response (no channel seen yet) would have said this, wrongly for the rejected one
    assert classify_failure(reason, [], channel_created=False) is at_response


def test_busy_response_first_is_not_settled_by_the_first_leg_hanging_up_without_a_cause():
    steps, _ = replay(_events(TRACES / "ami-originate-busy-response-first.txt"),
                      "ea237bae-9a85-48c2-8967-e3c7561072ee")
    hangups = [(label, known) for label, known, _ in steps if label.split()[0] == "Hangup"]
    assert hangups == [("Hangup ;1", False), ("Hangup ;2", True)]  # Cause 0 first, then Cause 17
