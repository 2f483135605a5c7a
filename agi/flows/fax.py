"""A fax machine answered: res_fax heard CNG and jumped to the ``fax`` extension."""

from __future__ import annotations

from agi.fastagi import AGICall
from agi.flows.context import FlowContext, unknown_call
from agi.outcomes import Result


async def fax(ctx: FlowContext, call: AGICall) -> None:
    """agi://…/fax?campaign=N,FAXEXTEN: the result is fax; hang up."""
    attempt = await ctx.find_attempt(call, answered_at=ctx.now())
    if attempt is None:
        return await unknown_call(call)
    await ctx.hang_up_and_finish(call, attempt.id, Result.FAX, ended_at=ctx.now(), answered_at=attempt.answered_at,
                                 detail=f"fax tone detected (FAXEXTEN={call.arg(1) or '?'})")
