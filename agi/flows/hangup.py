"""After hang-up (the ``h`` extension): cause and talk time, and a final result if nothing else wrote one."""

from __future__ import annotations

from agi.db import attempts as db
from agi.fastagi import AGICall
from agi.flows.context import FlowContext, log, utcnow
from agi.flows.outbound import answered_result, detection
from agi.outcomes import Result


async def hangup(ctx: FlowContext, call: AGICall) -> None:
    """agi://…/hangup?campaign=N,HANGUPCAUSE: only GET/SET VARIABLE work here (media: 511)."""
    attempt = await ctx.find_attempt(call)
    if attempt is None:
        log.warning("hangup %s: no attempt with this id; nothing written", call.uniqueid)
        return
    cause = _int(call.arg(1)) or _int(await call.get_variable("HANGUPCAUSE"))
    talk = _int(await call.get_variable("CDR(billsec)"))
    result, detail = attempt.result, None
    if result is None:
        # the outbound flow never finished this call (FastAGI unreachable, server restarted)
        amd, _ = await detection(call)
        campaign = await ctx.campaign(attempt.campaign_id)
        result = answered_result(amd, campaign) if amd else Result.OTHER
        detail = "finalised at hang-up: the outbound flow did not report"
    await ctx.write(db.finish_attempt, attempt.id, result, ended_at=utcnow(),
                    hangup_cause=cause, talk_seconds=talk, detail=detail)


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None
