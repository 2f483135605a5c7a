"""A queue's agents from QueueSummary + QueueStatus, read from the captured Asterisk replies
(tests/traces/ami-queuesummary.txt): one row per moment the rig captured."""

from __future__ import annotations

import pytest

from agi.ami.queues import QueueSnapshot
from test_ami_client_peer import load_trace, replies_to

TRACE = load_trace("ami-queuesummary.txt")


def events(action_id: str) -> list[dict]:
    """Asterisk's reply to one action of the trace, as the client hands it on (header -> value)."""
    out = []
    for msg in replies_to(TRACE, action_id):
        fields = {}
        for line in msg.lines:
            key, _, value = line.partition(": ")
            fields[key] = value
        out.append(fields)
    return out


@pytest.mark.parametrize("queue, summary, status, expected, in_acw", [
    # (a) the only member free, no calls
    ("sales", "qs-a-sales", "qst-a", QueueSnapshot("sales", logged_in=1, available=1), 0),
    # (b) the member on a queue call
    ("sales", "qs-b-sales", "qst-b", QueueSnapshot("sales", logged_in=1, in_call=1), 0),
    # (d) a caller waits and the member rings: not available, not in a call, not paused -> counted in wrap-up
    ("sales", "qs-d-sales", "qst-d", QueueSnapshot("sales", logged_in=1, callers=1), 1),
    # (c) the member paused
    ("sales", "qs-c-sales", "qst-c", QueueSnapshot("sales", logged_in=1, paused=1), 0),
    # every queue in one reply (no Queue: header): each queue reads its own rows only
    ("sales", "qs-a-all", "qst-a", QueueSnapshot("sales", logged_in=1, available=1), 0),
    ("empty", "qs-a-all", "qst-a", QueueSnapshot("empty"), 0),
    # a queue Asterisk does not know: an empty list, all zero
    ("nosuchqueue", "qs-nosuch", "qst-a", QueueSnapshot("nosuchqueue"), 0),
])
def test_a_queue_snapshot_counts_the_agents_asterisk_reports(queue, summary, status, expected, in_acw):
    snapshot = QueueSnapshot.from_events(queue, events(summary), events(status))
    assert snapshot == expected
    assert snapshot.in_acw == in_acw


def test_a_snapshot_takes_the_counters_as_the_client_returns_them_or_as_on_the_wire():
    as_ints = [{"Event": "QueueSummary", "Queue": "sales", "LoggedIn": 3, "Available": 1, "Callers": 2}]
    as_text = [{k: str(v) for k, v in as_ints[0].items()}]
    member = {"Event": "QueueMember", "Queue": "sales", "InCall": "1", "Paused": "1"}  # paused mid-call: in call
    for summary in (as_ints, as_text):
        snapshot = QueueSnapshot.from_events("sales", summary, [member])
        assert (snapshot.logged_in, snapshot.available, snapshot.callers) == (3, 1, 2)
        assert (snapshot.in_call, snapshot.paused, snapshot.in_acw) == (1, 0, 1)


def test_a_counter_that_is_not_a_number_is_an_error_that_names_it():
    with pytest.raises(ValueError, match="LoggedIn"):
        QueueSnapshot.from_events("sales", [{"Event": "QueueSummary", "Queue": "sales", "LoggedIn": "x"}], [])
