"""Why a running campaign is not starting calls now, as the originator publishes it for `dialer top`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agi.ami.queues import QueueSnapshot
from agi.originator.calls import CallStages
from agi.originator.campaigns import CampaignRun
from agi.originator.limits import RateLimiter
from agi.originator.publish import running_reason
from agi.outcomes import CampaignState


def run(queue: str | None = "sales", ready: int = 2, to_start: int | None = 1) -> CampaignRun:
    r = CampaignRun(row=SimpleNamespace(id=1, lines=10, lines_here=4, queue_name=queue),
                    state=CampaignState.RUNNING, bucket=RateLimiter(5))
    r.agents.snapshot = QueueSnapshot(queue=queue or "", logged_in=3, available=ready)
    r.calls_to_start = to_start
    return r


def calls(lines: int) -> CallStages:
    return CallStages(lines=lines, ringing_ages=(), detecting=0, waiting=0)


@pytest.mark.parametrize("campaign, stages, kw, reason", [
    (run(), calls(1), {"ami_connected": False}, "not dialing: AMI disconnected"),
    (run(), calls(1), {"nothing_due": True}, "nothing due now"),
    (run(), calls(4), {}, "all its lines in use"),
    (run(), calls(1), {"dialer_lines_free": 0}, "all its lines in use"),
    (run(ready=0, to_start=0), calls(1), {}, "no agent ready"),
    (run(queue=None, ready=0, to_start=0), calls(1), {}, None),  # broadcast: no agents to wait for
    (run(), calls(1), {}, None),  # dialing
])
def test_a_running_campaign_that_starts_no_call_says_why(campaign, stages, kw, reason):
    args = {"ami_connected": True, "nothing_due": False, "dialer_lines_free": 5, **kw}
    assert running_reason(campaign, stages, **args) == reason
