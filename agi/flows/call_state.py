"""What an answered call's channel says happened (AMD's verdict, what the agent queue did), and
how that is recorded: read alike by the outbound flow during the call and by the hangup flow
after it (``h`` extension), which finalises what the outbound flow could not."""

from __future__ import annotations

from dataclasses import dataclass

from agi.fastagi import AGICall
from agi.flows.context import CampaignSettings, FlowContext
from agi.outcomes import AmdStatus, Result, Routing, routing_broken


async def detection(call: AGICall, *, from_args: bool = True) -> tuple[AmdStatus | None, str | None]:
    """AMDSTATUS/AMDCAUSE from the dialplan's arguments (``from_args``), else from the channel."""
    status, cause = (call.arg(1), call.arg(2)) if from_args else ("", "")
    if not status:
        status = await call.get_variable("AMDSTATUS") or ""
        cause = await call.get_variable("AMDCAUSE") or cause
    try:
        return AmdStatus(status.strip().upper()), cause or None
    except ValueError:
        return None, cause or None


def answered_result(amd: AmdStatus | None, campaign: CampaignSettings) -> Result:
    """MACHINE -> machine_answer; HUMAN -> live_answer; NOTSURE as the campaign says;
    HANGUP (gone during detection) -> other: "answered then hung up at once" (seed 000)."""
    if amd is AmdStatus.MACHINE or (amd is AmdStatus.NOTSURE and campaign.notsure_as_machine):
        return Result.MACHINE_ANSWER
    if amd is AmdStatus.HANGUP:
        return Result.OTHER
    return Result.LIVE_ANSWER


@dataclass(frozen=True)
class QueueOutcome:
    """What ``Queue`` did with the call, read from the channel's variables."""

    routing: Routing
    agent: str | None = None
    caller_abandoned: bool = False
    status: str | None = None  # QUEUESTATUS as read: None when unset (bridged, or the caller hung up)


async def queue_outcome(call: AGICall, *, queued: bool) -> QueueOutcome | None:
    """What ``Queue`` did, from the channel's variables.

    docs/outcomes.md "Agents": bridged = QUEUESTATUS unset and MEMBERINTERFACE set; any QUEUESTATUS
    (TIMEOUT, JOINEMPTY, FULL, LEAVEEMPTY, JOINUNAVAIL, LEAVEUNAVAIL, UNKNOWN) = no agent in time;
    QUEUESTATUS unset without a member = the person hung up waiting (ABANDONED=TRUE). Without
    ``queued`` (the h extension) None when the channel never went through Queue.
    """
    status = await call.get_variable("QUEUESTATUS")
    member = await call.get_variable("MEMBERINTERFACE")
    if status is None and member:
        return QueueOutcome(Routing.AGENT_CONNECTED, await call.get_variable("MEMBERNAME") or member)
    if status is None and not queued and (await call.get_variable("ABANDONED") or "").upper() != "TRUE":
        return None
    return QueueOutcome(Routing.DROPPED, caller_abandoned=status is None, status=status or None)


async def record_routing(ctx: FlowContext, attempt_id: str, queue: str | None, outcome: QueueOutcome) -> None:
    """Write what the queue did (and QUEUESTATUS); a queue that cannot work is logged, once per queue."""
    await ctx.set_routing(attempt_id, outcome.routing, outcome.agent, caller_abandoned=outcome.caller_abandoned,
                          queue_status=outcome.status)
    if routing_broken(outcome.routing, outcome.status):
        ctx.log_broken_queue(queue or "?", outcome.status)
