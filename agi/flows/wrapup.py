"""After-call work on the agent's leg: the agent keys what the person decided."""

from __future__ import annotations

import datetime as dt

from agi.db import attempts as db
from agi.fastagi import AGICall
from agi.flows.context import FlowContext, unknown_call, utcnow
from agi.outcomes import DEFAULT_KEY_MAP, Disposition

WRAPUP_PROMPT = "dialer/wrapup-menu"  # "1 interested, 2 not interested, 3 call back, 9 opt out"
HOURS_PROMPT = "dialer/wrapup-hours"  # "in how many hours should we call back?"
WRAPUP_TIMEOUT_S = 10


async def wrapup(ctx: FlowContext, call: AGICall) -> None:
    """agi://…/wrapup?campaign=N,ATTEMPT_ID: no key keeps agent_connected with no disposition."""
    attempt = await ctx.find_attempt(call, call.arg(1))
    if attempt is None:
        return await unknown_call(call)
    key, _ = await call.menu(WRAPUP_PROMPT, keys=DEFAULT_KEY_MAP, tries=2, timeout=WRAPUP_TIMEOUT_S)
    if key is None:
        return await call.hangup()
    disposition = DEFAULT_KEY_MAP[key]
    callback_at = None
    if disposition is Disposition.CALL_BACK:
        hours = await call.get_data(HOURS_PROMPT, 5000, 2)
        callback_at = utcnow() + dt.timedelta(hours=int(hours) if hours.isdigit() and int(hours) else 1)
    await ctx.write(db.set_disposition, attempt.id, disposition, callback_at, override=True)
    await call.hangup()
