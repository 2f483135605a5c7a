"""After hang-up (the ``h`` extension): cause and talk time, and a final result if nothing else wrote one."""

from __future__ import annotations

from agi.fastagi import AGICall
from agi.flows.call_state import answered_result, detection, queue_outcome, record_routing
from agi.flows.context import FlowContext, log
from agi.outcomes import Disposition, Result, Routing


async def hangup(ctx: FlowContext, call: AGICall) -> None:
    """agi://…/hangup?campaign=N,HANGUPCAUSE: only GET/SET VARIABLE work here (media: 511)."""
    attempt = await ctx.find_attempt(call)
    if attempt is None:
        log.warning("hangup %s: no attempt with this id; nothing written", call.uniqueid)
        return
    ended = ctx.now()  # the h extension runs as the call ends: the hang-up, as near as we see it
    cause = _int(call.arg(1)) or _int(await call.get_variable("HANGUPCAUSE"))
    # talk time is ours (answered_at to the hang-up); Asterisk's CDR(billsec) only when we never
    # saw the answer, as it misses the part of the call before a Queue() that rang nobody
    talk = None if attempt.answered_at else _int(await call.get_variable("CDR(billsec)"))
    result, detail = attempt.result, None
    if attempt.routing is None and attempt.disposition is Disposition.INTERESTED:
        # the outbound flow may not have read what Queue did (AGIEXITONHANGUP closed its session
        # with the bridge): the queue's variables are still on the channel here
        outcome = await queue_outcome(call, queued=False)
        if outcome is not None:
            campaign = await ctx.campaign(attempt.campaign_id)
            await record_routing(ctx, attempt.id, campaign.queue_name, outcome)
    if result is None:
        # the outbound flow never finished this call (FastAGI unreachable, server restarted);
        # our arguments are HANGUPCAUSE, not AMD's: AMDSTATUS is read from the channel
        amd, _ = await detection(call, from_args=False)
        campaign = await ctx.campaign(attempt.campaign_id)
        result = answered_result(amd, campaign) if amd else Result.OTHER
        detail = "finalised at hang-up: the outbound flow did not report"
        if (result is Result.LIVE_ANSWER or amd is None) and attempt.routing is None:
            # a person (or nobody knows who: no detection result) answered and nobody served
            # them (at best the dialplan's fallback drop message played): counted as a dropped
            # person, retried as one. AMDSTATUS=HANGUP is the person leaving during detection.
            await ctx.set_routing(attempt.id, Routing.DROPPED)
    await ctx.finish(attempt.id, result, ended_at=ended, answered_at=attempt.answered_at, hangup_cause=cause,
                     talk_seconds=talk, detail=detail)


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None
