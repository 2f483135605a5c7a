"""After-call work on the agent's leg: the agent keys what the person decided."""

from __future__ import annotations

import datetime as dt

from agi.fastagi import AGICall
from agi.flows.context import FlowContext, unknown_call
from agi.outcomes import DEFAULT_KEY_MAP, Disposition

WRAPUP_PROMPT = "dialer/wrapup-menu"  # "1 interested, 2 not interested, 3 call back, 9 opt out"
HOURS_PROMPT = "dialer/wrapup-hours"  # "in how many hours should we call back?"
WRAPUP_TIMEOUT_S = 10


async def wrapup(ctx: FlowContext, call: AGICall) -> None:
    """agi://…/wrapup,ATTEMPT_ID: no key keeps agent_connected with no disposition.

    The agent's leg inherits only ``__`` variables from the person's call (``__ATTEMPT_ID``,
    ``__DIALER_AGI``), so the campaign comes from the attempt, never from the channel or the URL.
    """
    attempt = await ctx.find_attempt(call, call.arg(1))
    if attempt is None:
        return await unknown_call(call)
    heard = await call.menu(WRAPUP_PROMPT, keys=DEFAULT_KEY_MAP, tries=2, timeout=WRAPUP_TIMEOUT_S)
    if heard.key is None:
        return await call.hangup()
    disposition = DEFAULT_KEY_MAP[heard.key]
    callback_at = None
    if disposition is Disposition.CALL_BACK:
        hours = await call.get_data(HOURS_PROMPT, 5000, 2)
        now = ctx.now()
        if hours.isdigit() and int(hours):
            callback_at = now + dt.timedelta(hours=int(hours))
        else:  # no hours keyed: the campaign's own call-back delay, as for a key press
            callback_at = (await ctx.campaign(attempt.campaign_id)).callback_at(now)
    await ctx.agent_disposition(attempt.id, disposition, callback_at)
    await call.hangup()
