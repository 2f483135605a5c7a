"""The process's own Prometheus instruments: what only this process sees as it happens.

Counters and histograms the code bumps where the thing happens (an Originate sent, its
OriginateResponse, a FastAGI session, one AGI command, one database write). Created unregistered:
each metrics endpoint (agi.metrics.http) registers them, with the figures read from the database
(agi.metrics.collectors), into its own registry.

Labels are bounded: campaign and dialer names (an admin creates them), result and reason codes,
flow and command names from our code; never an attempt id, a number or a peer address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from agi.rules.classify import (
    REASON_ANSWERED,
    REASON_BUSY,
    REASON_CONGESTION,
    REASON_FAILURE,
    REASON_HANGUP,
    REASON_RING_TIMEOUT,
)

disable_created_metrics()  # the OpenMetrics *_created series: noise in the text format Prometheus scrapes

# OriginateResponse ``Reason`` codes (Asterisk's AST_CONTROL_* values, docs/outcomes.md) as label values
REASON_LABELS = {
    REASON_FAILURE: "failure",
    REASON_HANGUP: "hung_up",
    REASON_RING_TIMEOUT: "no_answer",
    REASON_ANSWERED: "answered",
    REASON_BUSY: "busy",
    REASON_CONGESTION: "congestion",
}
NO_RESPONSE = "no_response"  # the AMI session was lost before the response: resolved from channel state
REFUSED = "refused"  # Asterisk answered the Originate action itself with an error

ORIGINATES = Counter(
    "dialer_originates", "Originate actions sent to Asterisk.", ["dialer", "campaign"], registry=None)
ORIGINATE_RESPONSES = Counter(
    "dialer_originate_responses",
    "How each Originate sent ended at Asterisk: the OriginateResponse Reason (answered, busy, no_answer, "
    "congestion, failure, hung_up, other), or no_response / refused.",
    ["dialer", "campaign", "reason"], registry=None)

AGI_SESSIONS_ACTIVE = Gauge(
    "dialer_agi_sessions_active", "FastAGI sessions being served now.", registry=None)
AGI_SESSIONS_STARTED = Counter(
    "dialer_agi_sessions_started", "FastAGI sessions whose flow started, by flow.", ["flow"], registry=None)
AGI_SESSIONS_FAILED = Counter(
    "dialer_agi_sessions_failed",
    "FastAGI sessions that failed: the flow raised, or the header block never came right (flow=\"none\").",
    ["flow"], registry=None)
AGI_CONNECTIONS_REFUSED = Counter(
    "dialer_agi_connections_refused", "FastAGI connections refused: not allowed, over max-sessions, shutting down.",
    ["reason"], registry=None)
# from a fraction of a millisecond (GET VARIABLE) to minutes (a prompt, Queue() with an agent)
AGI_COMMAND_SECONDS = Histogram(
    "dialer_agi_command_duration_seconds", "One AGI command, from sending it to Asterisk's reply, by command.",
    ["command"], registry=None,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
DB_WRITE_SECONDS = Histogram(
    "dialer_db_write_duration_seconds", "One database write (a transaction) of this process, by kind.",
    ["kind"], registry=None,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

INSTRUMENTS = (ORIGINATES, ORIGINATE_RESPONSES, AGI_SESSIONS_ACTIVE, AGI_SESSIONS_STARTED, AGI_SESSIONS_FAILED,
               AGI_CONNECTIONS_REFUSED, AGI_COMMAND_SECONDS, DB_WRITE_SECONDS)


def originate_sent(dialer: str, campaign: str) -> None:
    ORIGINATES.labels(dialer, campaign).inc()


def originate_response(dialer: str, campaign: str, reason: int | str | None) -> None:
    """An Originate's end: an OriginateResponse Reason code, or NO_RESPONSE / REFUSED."""
    label = reason if isinstance(reason, str) else REASON_LABELS.get(reason, "other")
    ORIGINATE_RESPONSES.labels(dialer, campaign, label).inc()


def observe_db_write(kind: str, seconds: float) -> None:
    """One database write of ``kind`` (a short fixed word: start_attempts, finish_attempt, ...)."""
    DB_WRITE_SECONDS.labels(kind).observe(seconds)


@contextmanager
def db_write(kind: str) -> Iterator[None]:
    """Time the write in the block (awaits inside included); a failed write is not observed."""
    t0 = time.perf_counter()
    yield
    observe_db_write(kind, time.perf_counter() - t0)
