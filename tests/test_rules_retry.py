"""Call recycling: result + attempt count -> next contact state and next_attempt_at (docs/outcomes.md "Retry")."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi.outcomes import PREDIAL_RESULTS, ContactState, Disposition, Result, Routing
from agi.rules.retry import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RETRY_MINUTES,
    NEVER_RETRIED,
    Outcome,
    RetryPolicy,
    next_step,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
CALLBACK_AT = dt.datetime(2026, 6, 3, 15, 30, tzinfo=dt.timezone.utc)
DEFAULT = RetryPolicy()
RETRY, DONE, SKIPPED = ContactState.RETRY_SCHEDULED, ContactState.DONE, ContactState.SKIPPED
LIVE = Result.LIVE_ANSWER


def test_spec_defaults():
    assert DEFAULT_RETRY_MINUTES == {"busy": 5, "no_answer": 60, "service_error": 1, "dropped": 30, "machine_answer": 240}
    assert DEFAULT_MAX_ATTEMPTS == 3
    assert DEFAULT == RetryPolicy.from_campaign(None, 3)
    assert NEVER_RETRIED == {Disposition.OPT_OUT.value, Result.DNC.value}


RULES = [
    # (outcome, attempts before, state, minutes later (or a datetime), attempts after)
    (Outcome(Result.BUSY), 0, RETRY, 5, 1),
    (Outcome(Result.BUSY), 1, RETRY, 5, 2),
    (Outcome(Result.BUSY), 2, DONE, None, 3),
    (Outcome(Result.NO_ANSWER), 0, RETRY, 60, 1),
    (Outcome(Result.NO_ANSWER), 1, RETRY, 60, 2),
    (Outcome(Result.NO_ANSWER), 2, DONE, None, 3),
    (Outcome(Result.SERVICE_ERROR), 0, RETRY, 1, 0),
    (Outcome(Result.SERVICE_ERROR), 2, RETRY, 1, 2),
    (Outcome(Result.SERVICE_ERROR), 3, RETRY, 1, 3),  # not counted: even at the limit
    (Outcome(LIVE, routing=Routing.DROPPED), 0, RETRY, 30, 1),
    (Outcome(LIVE, routing=Routing.DROPPED), 2, DONE, None, 3),
    (Outcome(LIVE, routing=Routing.DROPPED, disposition=Disposition.INTERESTED), 1, RETRY, 30, 2),
    (Outcome(Result.MACHINE_ANSWER), 0, RETRY, 240, 1),
    (Outcome(Result.MACHINE_ANSWER), 2, DONE, None, 3),
    (Outcome(LIVE, disposition=Disposition.CALL_BACK, callback_at=CALLBACK_AT), 0, RETRY, CALLBACK_AT, 1),
    (Outcome(LIVE, disposition=Disposition.CALL_BACK, callback_at=CALLBACK_AT), 2, RETRY, CALLBACK_AT, 3),
    (Outcome(LIVE, routing=Routing.AGENT_CONNECTED, disposition=Disposition.CALL_BACK, callback_at=CALLBACK_AT), 5, RETRY, CALLBACK_AT, 6),
    (Outcome(LIVE, disposition=Disposition.CALL_BACK), 0, RETRY, 24 * 60, 1),  # no time given: a day later
    (Outcome(LIVE, disposition=Disposition.OPT_OUT), 0, DONE, None, 1),
    (Outcome(LIVE, routing=Routing.DROPPED, disposition=Disposition.OPT_OUT), 0, DONE, None, 1),
    (Outcome(LIVE, routing=Routing.AGENT_CONNECTED, disposition=Disposition.OPT_OUT), 0, DONE, None, 1),
    (Outcome(LIVE, routing=Routing.AGENT_CONNECTED, disposition=Disposition.INTERESTED), 0, DONE, None, 1),
    (Outcome(LIVE, routing=Routing.AGENT_CONNECTED), 0, DONE, None, 1),
    (Outcome(LIVE, disposition=Disposition.NOT_INTERESTED), 0, DONE, None, 1),
    (Outcome(LIVE, disposition=Disposition.NO_KEY), 0, DONE, None, 1),
    (Outcome(LIVE, disposition=Disposition.WRONG_KEY), 0, DONE, None, 1),
    (Outcome(LIVE), 0, DONE, None, 1),
    (Outcome(Result.FAX), 0, DONE, None, 1),
    (Outcome(Result.REJECTED), 0, DONE, None, 1),
    (Outcome(Result.DISCONNECTED), 0, DONE, None, 1),
    (Outcome(Result.OTHER), 0, DONE, None, 1),
    # answered, but the FastAGI flow never reported: counted as a drop, retried as one
    (Outcome(Result.OTHER, routing=Routing.DROPPED), 0, RETRY, 30, 1),
    (Outcome(Result.OTHER, routing=Routing.DROPPED), 2, DONE, None, 3),
    (Outcome(Result.NO_PHONE), 0, SKIPPED, None, 0),
    (Outcome(Result.DNC), 1, SKIPPED, None, 1),
    (Outcome(Result.INVALID_NUMBER), 0, SKIPPED, None, 0),
    (Outcome(Result.FORBIDDEN_DESTINATION), 2, SKIPPED, None, 2),
]


def _name(rule):
    outcome, before, state = rule[0], rule[1], rule[2]
    parts = [outcome.result.value, outcome.routing and outcome.routing.value, outcome.disposition and outcome.disposition.value]
    return "-".join(p for p in parts if p) + f"-after-{before}-{state.value}"


@pytest.mark.parametrize("outcome, before, state, later, after", RULES, ids=[_name(r) for r in RULES])
def test_spec_default_retry_rules(outcome, before, state, later, after):
    step = next_step(outcome, before, NOW, DEFAULT)
    assert step.state is state
    assert step.attempts == after
    if later is None:
        assert step.next_attempt_at is None
    elif isinstance(later, dt.datetime):
        assert step.next_attempt_at == later
    else:
        assert step.next_attempt_at == NOW + dt.timedelta(minutes=later)


def test_the_table_covers_every_result_and_disposition():
    assert {r[0].result for r in RULES} == set(Result)
    assert {r[0].disposition for r in RULES} - {None} == set(Disposition)
    assert {r[0].routing for r in RULES} - {None} == set(Routing)


def test_busy_after_two_tries_is_retried_in_5_min():
    step = next_step(Outcome(Result.BUSY), 1, NOW, DEFAULT)
    assert (step.state, step.next_attempt_at, step.attempts) == (RETRY, NOW + dt.timedelta(minutes=5), 2)


def test_third_counted_attempt_ends_the_contact():
    assert next_step(Outcome(Result.NO_ANSWER), 2, NOW, DEFAULT).state is DONE


def test_service_errors_never_use_up_attempts():
    attempts = 0
    for _ in range(10):
        step = next_step(Outcome(Result.SERVICE_ERROR), attempts, NOW, DEFAULT)
        assert step.state is RETRY and step.next_attempt_at == NOW + dt.timedelta(minutes=1)
        attempts = step.attempts
    assert attempts == 0


def test_opt_out_is_never_retried_even_if_the_campaign_retries_live_answers():
    policy = RetryPolicy(minutes={Routing.DROPPED.value: 1, Disposition.OPT_OUT.value: 1, Result.DNC.value: 1}, max_attempts=99)
    assert next_step(Outcome(LIVE, routing=Routing.DROPPED, disposition=Disposition.OPT_OUT), 0, NOW, policy).state is DONE
    assert next_step(Outcome(Result.DNC), 0, NOW, policy).state is SKIPPED


def test_pre_dial_results_skip_the_contact_without_counting():
    for result in PREDIAL_RESULTS:
        step = next_step(Outcome(result), 1, NOW, DEFAULT)
        assert (step.state, step.next_attempt_at, step.attempts) == (SKIPPED, None, 1)


def test_campaign_rules_replace_the_defaults():
    policy = RetryPolicy.from_campaign({"busy": 10, "fax": 15}, max_attempts=5)
    assert next_step(Outcome(Result.BUSY), 3, NOW, policy).next_attempt_at == NOW + dt.timedelta(minutes=10)
    assert next_step(Outcome(Result.BUSY), 4, NOW, policy).state is DONE
    assert next_step(Outcome(Result.FAX), 0, NOW, policy).next_attempt_at == NOW + dt.timedelta(minutes=15)
    assert next_step(Outcome(Result.NO_ANSWER), 0, NOW, policy).state is DONE  # not in the campaign's rules


def test_max_attempts_one_never_retries_a_counted_result():
    policy = RetryPolicy(max_attempts=1)
    for outcome in (Outcome(Result.BUSY), Outcome(Result.NO_ANSWER), Outcome(LIVE, routing=Routing.DROPPED), Outcome(Result.MACHINE_ANSWER)):
        assert next_step(outcome, 0, NOW, policy).state is DONE
    assert next_step(Outcome(Result.SERVICE_ERROR), 0, NOW, policy).state is RETRY


_outcomes = st.builds(
    Outcome,
    result=st.sampled_from(list(Result)),
    routing=st.one_of(st.none(), st.sampled_from(list(Routing))),
    disposition=st.one_of(st.none(), st.sampled_from(list(Disposition))),
    callback_at=st.one_of(st.none(), st.just(CALLBACK_AT)),
)


@settings(max_examples=500, deadline=None)
@given(outcome=_outcomes, before=st.integers(0, 10), max_attempts=st.integers(1, 6))
def test_retry_properties(outcome, before, max_attempts):
    policy = RetryPolicy(max_attempts=max_attempts)
    step = next_step(outcome, before, NOW, policy)
    # the count moves by at most one, and only for a counted dial
    counted = outcome.result.dialed and outcome.result is not Result.SERVICE_ERROR
    assert step.attempts == before + (1 if counted else 0)
    # scheduled <=> a time; never in the past
    assert (step.state is RETRY) == (step.next_attempt_at is not None)
    if step.next_attempt_at is not None:
        assert step.next_attempt_at > NOW
    assert step.state in (RETRY, DONE, SKIPPED)
    if not outcome.result.dialed:
        assert step.state is SKIPPED
    if outcome.result.dialed and outcome.disposition is Disposition.OPT_OUT:
        assert step.state is DONE
    # only a call-back (asked for by the person) or an uncounted service error goes past the limit
    if step.state is RETRY and step.attempts >= max_attempts:
        assert outcome.disposition is Disposition.CALL_BACK or outcome.result is Result.SERVICE_ERROR


def test_service_errors_back_off_after_three_and_stop_after_twelve():
    from agi.rules.retry import MAX_SERVICE_ERRORS

    delays = []
    for before in range(MAX_SERVICE_ERRORS):
        step = next_step(Outcome(Result.SERVICE_ERROR), 0, NOW, DEFAULT, service_errors_before=before)
        if step.state is DONE:
            break
        delays.append((step.next_attempt_at - NOW).total_seconds() / 60)
    assert delays == [1, 1, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert next_step(Outcome(Result.SERVICE_ERROR), 0, NOW, DEFAULT, service_errors_before=11).state is DONE
