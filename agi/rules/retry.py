"""Call recycling: what an attempt's outcome means for the contact's next state and time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from collections.abc import Mapping

from agi.outcomes import ContactState, Disposition, Result, Routing

# docs/outcomes.md "Retry" defaults, minutes. Keys are Result, Routing or Disposition codes.
DEFAULT_RETRY_MINUTES: dict[str, int] = {
    Result.BUSY.value: 5,
    Result.NO_ANSWER.value: 60,
    Result.SERVICE_ERROR.value: 1,
    Routing.DROPPED.value: 30,
    Result.MACHINE_ANSWER.value: 240,
}
DEFAULT_MAX_ATTEMPTS = 3
# Attempts that were never really made do not count against the limit (seed 000).
UNCOUNTED = frozenset({Result.SERVICE_ERROR})
# A trunk that keeps failing: after three service errors at the campaign's delay (default 1 min) the
# delay doubles (at most 60 min), and a contact stops after this many, about three hours of
# failures, so a number that always fails is not redialed forever.
MAX_SERVICE_ERRORS = 12
SERVICE_ERRORS_BEFORE_BACKOFF = 3
SERVICE_ERROR_BACKOFF_CAP_MIN = 60
# Never called again, whatever the campaign's rules say.
NEVER_RETRIED = frozenset({Disposition.OPT_OUT.value, Result.DNC.value})


@dataclass(frozen=True)
class Outcome:
    """What an attempt ended as: the result, and for live answers routing and disposition."""

    result: Result
    routing: Routing | None = None
    disposition: Disposition | None = None
    callback_at: dt.datetime | None = None


@dataclass(frozen=True)
class RetryPolicy:
    minutes: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RETRY_MINUTES))
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @classmethod
    def from_campaign(cls, rules: Mapping[str, float] | None, max_attempts: int) -> RetryPolicy:
        """A campaign's stored rules replace the defaults entirely when given."""
        minutes = dict(DEFAULT_RETRY_MINUTES) if rules is None else dict(rules)
        return cls(minutes=minutes, max_attempts=max_attempts)


@dataclass(frozen=True)
class NextStep:
    state: ContactState
    next_attempt_at: dt.datetime | None
    attempts: int  # the contact's counted attempts after this one


def next_step(outcome: Outcome, attempts_before: int, now: dt.datetime, policy: RetryPolicy,
              service_errors_before: int = 0) -> NextStep:
    """The contact's next state after ``outcome``; ``attempts_before`` counts earlier attempts,
    ``service_errors_before`` the contact's earlier service errors (they back off, then stop)."""
    result = outcome.result
    counted = attempts_before + (0 if result in UNCOUNTED else 1)

    if not result.dialed:
        return NextStep(ContactState.SKIPPED, None, attempts_before)
    if outcome.disposition is not None and outcome.disposition.value in NEVER_RETRIED:
        return NextStep(ContactState.DONE, None, counted)
    if outcome.disposition is Disposition.CALL_BACK:
        # the person asked for it: honoured whatever the attempt count
        when = outcome.callback_at or now + dt.timedelta(days=1)
        return NextStep(ContactState.RETRY_SCHEDULED, when, counted)

    key = _rule_key(outcome)
    minutes = policy.minutes.get(key) if key else None
    if minutes is None:
        return NextStep(ContactState.DONE, None, counted)
    if result not in UNCOUNTED and counted >= policy.max_attempts:
        return NextStep(ContactState.DONE, None, counted)
    if result is Result.SERVICE_ERROR:
        if service_errors_before + 1 >= MAX_SERVICE_ERRORS:
            return NextStep(ContactState.DONE, None, counted)
        backoff = 2 ** max(0, service_errors_before - SERVICE_ERRORS_BEFORE_BACKOFF + 1)
        minutes = min(minutes * backoff, max(minutes, SERVICE_ERROR_BACKOFF_CAP_MIN))
    return NextStep(ContactState.RETRY_SCHEDULED, now + dt.timedelta(minutes=minutes), counted)


def _rule_key(outcome: Outcome) -> str | None:
    """Which retry rule applies: a dropped call by its routing (a live answer, or an answered
    call whose flow never reported: counted as dropped), a live answer by none, otherwise the result."""
    if outcome.routing is Routing.DROPPED:
        return Routing.DROPPED.value
    if outcome.result is Result.LIVE_ANSWER:
        return None
    return outcome.result.value
