"""The attempt writes on a SQLAlchemy connection: the originator's, the reconciler's, the CLI's.

Each function runs the one definition of its write (``agi.db.attempt_writes``) statement by
statement on an AsyncConnection whose transaction the caller owns (``async with
engine.begin()``). The call flows reach the same definitions through ``agi.db.writer``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db import attempt_writes as w
from agi.db.attempt_sql import IVR_KEYS_MAX
from agi.db.attempt_writes import COUNT, DNC_SOURCE_OPT_OUT, ROW, SCALAR, AttemptInfo, Statement, T, Write
from agi.outcomes import Disposition, Result, Routing

__all__ = [
    "AttemptInfo", "DNC_SOURCE_OPT_OUT", "IVR_KEYS_MAX", "add_dnc", "finish_attempt", "finish_unreported",
    "get_attempt", "is_dnc", "mark_answered", "mark_originated", "mark_waiting_agent", "record_predial", "run",
    "set_disposition", "set_ivr_keys", "set_routing", "start_attempt",
]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def run(conn: AsyncConnection, write: Write[T]) -> T:
    """Run ``write`` on ``conn``: each Step's statements one after another, in the caller's transaction."""
    results = None
    while True:
        try:
            step = write.send(results)
        except StopIteration as done:
            return done.value
        results = [await _execute(conn, s) for s in step.statements]


async def _execute(conn: AsyncConnection, statement: Statement):
    stmt = statement.sql
    if isinstance(stmt, Mapping):
        stmt = stmt[conn.dialect.name]
    res = await conn.execute(stmt, statement.params)
    if statement.returns == ROW:
        return res.first()
    if statement.returns == COUNT:
        return res.rowcount
    if statement.returns == SCALAR:
        return res.scalar_one()
    return None


async def get_attempt(conn: AsyncConnection, attempt_id: str) -> AttemptInfo | None:
    return await run(conn, w.get_attempt(attempt_id))


async def is_dnc(conn: AsyncConnection, number: str) -> bool:
    return await run(conn, w.is_dnc(number))


async def add_dnc(conn: AsyncConnection, number: str, source: str, *, now: dt.datetime | None = None) -> bool:
    """Put an E.164 number on the DNC list; True if it was not there yet (never overwrites)."""
    return await run(conn, w.add_dnc(number, source, now or _utcnow()))


async def start_attempt(conn: AsyncConnection, membership_id: int, *, campaign_id: int, contact_id: int, dialer: str,
                        number: str, attempt_no: int, now: dt.datetime) -> str:
    """Insert a new attempt and make it the membership's current one; commit before Originate.
    Returns the attempt id (a uuid, sent as the Originate ChannelId)."""
    return await run(conn, w.start_attempt(membership_id, campaign_id=campaign_id, contact_id=contact_id,
                                           dialer=dialer, number=number, attempt_no=attempt_no, now=now))


async def mark_originated(conn: AsyncConnection, attempt_id: str, at: dt.datetime) -> None:
    """Originate was accepted (or the channel exists); first report wins."""
    await run(conn, w.mark_originated(attempt_id, at))


async def mark_answered(conn: AsyncConnection, attempt_id: str, at: dt.datetime, amd_status: str | None = None,
                        amd_cause: str | None = None) -> AttemptInfo | None:
    """The call was answered and reached the dialplan: membership -> in_call. Returns the attempt
    as it is now (None: no such attempt)."""
    return await run(conn, w.mark_answered(attempt_id, at, amd_status, amd_cause))


async def mark_waiting_agent(conn: AsyncConnection, attempt_id: str, at: dt.datetime | None = None) -> None:
    """The person is in the agent queue: membership -> waiting_agent."""
    await run(conn, w.mark_waiting_agent(attempt_id, at or _utcnow()))


async def set_ivr_keys(conn: AsyncConnection, attempt_id: str, keys: str) -> None:
    """The keys the person pressed, in order (the column keeps the first 40)."""
    await run(conn, w.set_ivr_keys(attempt_id, keys))


async def set_routing(conn: AsyncConnection, attempt_id: str, routing: Routing, agent: str | None = None,
                      caller_abandoned: bool = False, *, queue_status: str | None = None,
                      now: dt.datetime | None = None) -> bool:
    """What routing did with a live answer; the first report wins. True if set here. Arriving
    after the attempt is final, it re-runs the retry rule (a dropped call is retried)."""
    return await run(conn, w.set_routing(attempt_id, routing, agent, caller_abandoned, queue_status=queue_status,
                                         now=now or _utcnow()))


async def set_disposition(conn: AsyncConnection, attempt_id: str, disposition: Disposition,
                          callback_at: dt.datetime | None = None, override: bool = False, *,
                          now: dt.datetime | None = None) -> bool:
    """Record the person's choice: at most one; the first wins unless ``override`` (agents, CLI).
    opt_out puts the number on the DNC list at once; after the result, the retry rule runs again.
    True if this call set it."""
    return await run(conn, w.set_disposition(attempt_id, disposition, callback_at, override, now=now or _utcnow()))


async def finish_attempt(conn: AsyncConnection, attempt_id: str, result: Result, *, ended_at: dt.datetime,
                         hangup_cause: int | None = None, originate_reason: int | None = None,
                         talk_seconds: int | None = None, detail: str | None = None,
                         originated_at: dt.datetime | None = None) -> bool:
    """Set the attempt's final result if none is set yet, and move the contact on, once. True if
    this call set the result; either way the bookkeeping given fills the fields still empty."""
    return await run(conn, w.finish_attempt(
        attempt_id, result, ended_at=ended_at, hangup_cause=hangup_cause, originate_reason=originate_reason,
        talk_seconds=talk_seconds, detail=detail, originated_at=originated_at))


async def finish_unreported(conn: AsyncConnection, attempt_id: str, *, ended_at: dt.datetime,
                            hangup_cause: int | None = None, talk_seconds: int | None = None,
                            detail: str | None = None) -> bool:
    """An answered call whose FastAGI flow never reported: result ``other``, routing ``dropped``
    (retried as a dropped person). True if the result was set here."""
    return await run(conn, w.finish_unreported(attempt_id, ended_at=ended_at, hangup_cause=hangup_cause,
                                               talk_seconds=talk_seconds, detail=detail))


async def record_predial(conn: AsyncConnection, membership_id: int, campaign_id: int, contact_id: int,
                         result: Result, detail: str | None, now: dt.datetime, *, number: str | None = None,
                         dialer: str | None = None) -> str | None:
    """A contact that will not be dialed: a final attempt row, the membership moved on (skipped).
    Returns the new attempt id, or None when the membership was already settled."""
    return await run(conn, w.record_predial(membership_id, campaign_id, contact_id, result, detail, now,
                                            number=number, dialer=dialer))
