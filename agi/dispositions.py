"""An agent's disposition of a call after it (from a CRM: `dialer dispose`, the API's
``POST /attempts/{id}/disposition``): which codes an agent may set, on which attempts.

The write itself is agi.db.attempts.set_disposition (override: the agent's word replaces a key
pressed in the IVR; opt_out lists the number at once; call_back re-dials at ``callback_at``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncConnection

from agi.errors import AdminError
from agi.db import attempts as db
from agi.outcomes import Disposition, Result

# IVR outcomes, not something an agent decides
NOT_AN_AGENTS = (Disposition.NO_KEY, Disposition.WRONG_KEY)
DEFAULT_CALLBACK = dt.timedelta(days=1)


def parse_agent_disposition(text: str) -> Disposition:
    try:
        choice = Disposition.parse(text)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if choice in NOT_AN_AGENTS:
        raise AdminError("no_key/wrong_key are IVR outcomes, not an agent's disposition")
    return choice


async def dispose(conn: AsyncConnection, attempt_id: str, choice: Disposition,
                  callback_at: dt.datetime | None = None, *, now: dt.datetime) -> db.AttemptInfo:
    """Set the attempt's disposition; LookupError when there is no such attempt, AdminError when
    the attempt did not reach a person or ``callback_at`` comes without call_back."""
    if choice in NOT_AN_AGENTS:
        raise AdminError("no_key/wrong_key are IVR outcomes, not an agent's disposition")
    if callback_at is not None and choice is not Disposition.CALL_BACK:
        raise AdminError("only a call_back takes a call-back time")
    if choice is Disposition.CALL_BACK and callback_at is None:
        callback_at = now + DEFAULT_CALLBACK
    if callback_at is not None and callback_at <= now:
        raise AdminError(f"the call-back time {callback_at:%Y-%m-%d %H:%M} UTC is in the past: give a later "
                         "one ('+2h', 'tomorrow', or a date and time)")
    attempt = await db.get_attempt(conn, attempt_id)
    if attempt is None:
        raise LookupError(attempt_id)
    if attempt.result is not None and attempt.result is not Result.LIVE_ANSWER:
        # docs/outcomes.md: a disposition is what a person chose; counting one on a busy line skews the summary
        raise AdminError(f"attempt {attempt_id} ended as {attempt.result.label}: only a live answer "
                         f"takes a disposition")
    await db.set_disposition(conn, attempt_id, choice, callback_at, override=True, now=now)
    return await db.get_attempt(conn, attempt_id)
