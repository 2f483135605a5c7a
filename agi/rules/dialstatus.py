"""A preview call's result from what ``Dial()`` leaves on the agent's channel: DIALSTATUS, then the
Q.850 HANGUPCAUSE of the person's leg where the status alone does not say (pure: no I/O).

app_dial.c sets DIALSTATUS to ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL, DONTCALL,
TORTURE or INVALIDARGS. The same outcome model as an originated call: busy, no_answer, and the
Q.850 table of agi.rules.classify for congestion and unavailable channels.
"""

from __future__ import annotations

from agi.outcomes import Result
from agi.rules.classify import Q850_RESULTS

# DIALSTATUS values whose meaning does not depend on the cause (app_dial.c)
DIALSTATUS_RESULTS: dict[str, Result] = {
    "ANSWER": Result.LIVE_ANSWER,  # the person picked up and was bridged to the agent
    "BUSY": Result.BUSY,  # the far end signalled busy (Q.850 17)
    "NOANSWER": Result.NO_ANSWER,  # rang until Dial's timeout
    "CANCEL": Result.NO_ANSWER,  # the agent hung up while it rang: nobody answered in that time
    "INVALIDARGS": Result.SERVICE_ERROR,  # our dial string was wrong: not the person's doing
}
# CONGESTION / CHANUNAVAIL: the cause tells a number out of service from a trunk in trouble
CAUSE_DECIDES = frozenset({"CONGESTION", "CHANUNAVAIL"})


def dial_result(dialstatus: str | None, hangup_cause: int | None) -> Result:
    """DIALSTATUS (+ HANGUPCAUSE) -> the attempt's result.

    CONGESTION/CHANUNAVAIL go by the Q.850 cause (1 unallocated -> disconnected, 21 -> rejected,
    34 -> service_error, ...); without a cause they are a service error (not charged, retried).
    Anything else unknown is ``other``."""
    status = (dialstatus or "").strip().upper()
    if status in DIALSTATUS_RESULTS:
        return DIALSTATUS_RESULTS[status]
    if status in CAUSE_DECIDES:
        if hangup_cause:
            return Q850_RESULTS.get(hangup_cause, Result.SERVICE_ERROR)
        return Result.SERVICE_ERROR
    return Result.OTHER
