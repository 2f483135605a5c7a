"""The outcome model holds every code of docs/outcomes.md, with its label, exactly once."""

import pytest

from agi.outcomes import (
    DIAL_RESULTS, PREDIAL_RESULTS, SUMMARY_ROWS, CampaignState, ContactState, Disposition,
    Result, Routing, parse_key_map, DEFAULT_KEY_MAP,
)

SPEC_RESULTS = {
    "live_answer": "Live Answer", "machine_answer": "Machine Answer", "fax": "Fax",
    "busy": "Line Busy", "no_answer": "No Answer", "rejected": "Rejected",
    "disconnected": "Disc. Number", "service_error": "Service Error", "other": "Other",
    "no_phone": "Contact No Phone", "dnc": "Contact DNC", "invalid_number": "Invalid Record",
    "forbidden_destination": "Forbidden Destination",
}


def test_every_spec_result_has_its_label():
    assert {r.value: r.label for r in Result} == SPEC_RESULTS


def test_dial_and_predial_results_partition_the_results():
    assert DIAL_RESULTS | PREDIAL_RESULTS == set(Result)
    assert not DIAL_RESULTS & PREDIAL_RESULTS


def test_service_errors_and_predial_results_are_not_charged():
    charged = {r for r in Result if r.charged}
    assert charged == DIAL_RESULTS - {Result.SERVICE_ERROR}


def test_live_answer_outcomes_and_states_match_spec():
    assert {r.value for r in Routing} == {"agent_connected", "dropped"}
    assert {d.value for d in Disposition} == {
        "opt_out", "interested", "not_interested", "call_back", "no_key", "wrong_key"}
    assert {s.value for s in ContactState} == {
        "pending", "dialing", "in_call", "waiting_agent", "done", "retry_scheduled",
        "skipped", "cancelled", "deleted",
        # the agent-facing states of seed 004 (preview and after-call work)
        "operator_assigned", "bcw", "rejected_by_operator", "acw"}
    assert {s.value for s in CampaignState} == {
        "unscheduled", "scheduled", "running", "paused_no_agents", "stopped",
        "stopped_by_admin", "stopped_by_dialer", "completed",
        # ours: like paused_no_agents, a pause that ends by itself (no FastAGI server alive)
        "paused_no_agi_server"}


def test_summary_has_the_three_rows_of_the_seed():
    labels = [[label for _, label in row] for row in SUMMARY_ROWS]
    assert labels == [
        ["Finished", "Live Answer", "Machine Answer", "Contact No Phone", "Contact DNC"],
        ["Line Busy", "No Answer", "Fax", "Disc. Number", "Service Error", "Other"],
        ["Agent Connected", "Dropped", "Opt Out", "Interested", "Not Interested", "Call Back"],
    ]


@pytest.mark.parametrize("text,expected", [
    ("busy", Result.BUSY), ("Line Busy", Result.BUSY), ("NO-ANSWER", Result.NO_ANSWER),
    ("Disc. Number", Result.DISCONNECTED),
])
def test_results_parse_from_code_or_label(text, expected):
    assert Result.parse(text) is expected


def test_unknown_code_names_the_choices():
    with pytest.raises(ValueError, match="choose one of: live_answer"):
        Result.parse("answered")


def test_key_map_defaults_and_rejects_bad_keys():
    assert parse_key_map(None) == DEFAULT_KEY_MAP
    assert parse_key_map({"5": "opt_out"}) == {"5": Disposition.OPT_OUT}
    with pytest.raises(ValueError):
        parse_key_map({"12": "interested"})


def test_outcome_lists_parse_codes_and_labels_of_every_kind():
    from agi.outcomes import parse_outcomes

    assert parse_outcomes("no_answer, Dropped,interested") == [Result.NO_ANSWER, Routing.DROPPED, Disposition.INTERESTED]
    with pytest.raises(ValueError, match="unknown result 'answered'"):
        parse_outcomes("busy,answered")


# (result, routing, QUEUESTATUS, call-back attempt, target/repeat by length) -> the call log's class
CALL_CLASSES = {
    "queue_does_not_exist": ("live_answer", "dropped", "UNKNOWN", False, None, "routing_broken"),
    "no_member_reachable": ("live_answer", "dropped", "JOINUNAVAIL", False, None, "routing_broken"),
    "broken_routing_says_more_than_length": ("live_answer", "dropped", "UNKNOWN", False, "target", "routing_broken"),
    "no_agent_in_time_is_an_ordinary_drop": ("live_answer", "dropped", "TIMEOUT", False, None, None),
    "nobody_logged_in_is_an_ordinary_drop": ("live_answer", "dropped", "JOINEMPTY", False, None, None),
    "caller_hung_up_waiting": ("live_answer", "dropped", None, False, None, None),
    "call_back_rang_out": ("no_answer", None, None, True, None, "callback_no_answer"),
    "call_back_busy": ("busy", None, None, True, None, "callback_no_answer"),
    "call_back_voicemail": ("machine_answer", None, None, True, None, "callback_no_answer"),
    "call_back_answered": ("live_answer", None, None, True, "target", "target"),
    "call_back_trunk_down": ("service_error", None, None, True, None, None),
    "ordinary_no_answer": ("no_answer", None, None, False, None, None),
    "repeat": ("live_answer", "agent_connected", None, False, "repeat", "repeat"),
    "in_progress": (None, None, None, True, None, None),
}


@pytest.mark.parametrize("case", sorted(CALL_CLASSES))
def test_call_log_class_of_an_attempt(case):
    from agi.outcomes import CallClass, call_class

    result, routing, status, callback, by_length, expected = CALL_CLASSES[case]
    got = call_class(result, routing, status, callback, CallClass(by_length) if by_length else None)
    assert got == (CallClass(expected) if expected else None)
    if got is not None:
        assert got.label  # every class shows with a label
