"""A preview call's result from DIALSTATUS and HANGUPCAUSE (agi.rules.dialstatus): the table."""

from __future__ import annotations

import pytest

from agi.outcomes import Result
from agi.rules.dialstatus import dial_result


@pytest.mark.parametrize("status, cause, expected", [
    ("ANSWER", 16, Result.LIVE_ANSWER),
    ("BUSY", 17, Result.BUSY),
    ("BUSY", None, Result.BUSY),
    ("NOANSWER", 19, Result.NO_ANSWER),
    ("CANCEL", 0, Result.NO_ANSWER),
    ("CONGESTION", 34, Result.SERVICE_ERROR),
    ("CONGESTION", 1, Result.DISCONNECTED),
    ("CHANUNAVAIL", 1, Result.DISCONNECTED),
    ("CHANUNAVAIL", 22, Result.DISCONNECTED),
    ("CHANUNAVAIL", 21, Result.REJECTED),
    ("CHANUNAVAIL", 17, Result.BUSY),
    ("CHANUNAVAIL", None, Result.SERVICE_ERROR),
    ("CONGESTION", 127, Result.SERVICE_ERROR),
    ("INVALIDARGS", None, Result.SERVICE_ERROR),
    ("", None, Result.OTHER),
    ("TORTURE", None, Result.OTHER),
    ("answer", None, Result.LIVE_ANSWER),
])
def test_dialstatus_and_cause_give_the_outcome_models_result(status, cause, expected):
    assert dial_result(status, cause) is expected
