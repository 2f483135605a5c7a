"""Attempt writes on the hot path, keyed by the attempt id: idempotent and safe under races.

The outbound flow, the hangup flow, the originator and the reconciler may all report on
one attempt, in any order and more than once. Every write here is a guarded Core
statement: the final result is set once (``WHERE result IS NULL``), the disposition once
unless overridden, timestamps and bookkeeping only fill empty fields (COALESCE), and the
contact's membership moves once, by whichever call set the result. Each function takes
an AsyncConnection; the caller owns the transaction (``async with engine.begin()``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import functools

from sqlalchemy import bindparam, case, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import Attempt, Campaign, CampaignContact, DncEntry, new_attempt_id
from agi.outcomes import ContactState, Disposition, Result, Routing
from agi.rules.retry import NextStep, Outcome, RetryPolicy, next_step

_a = Attempt.__table__
_cc = CampaignContact.__table__
_camp = Campaign.__table__
_dnc = DncEntry.__table__

# An admin's decision about a membership stands against late call reports.
_ADMIN_STATES = (ContactState.CANCELLED.value, ContactState.DELETED.value)
# States a finished attempt leaves a dialed contact in: a late routing/disposition may redo it.
_SETTLED_STATES = (ContactState.DONE.value, ContactState.RETRY_SCHEDULED.value)
# States from which a pre-dial result may still be recorded.
_PREDIAL_FROM = (
    ContactState.PENDING.value,
    ContactState.RETRY_SCHEDULED.value,
    ContactState.DIALING.value,
)
DNC_SOURCE_OPT_OUT = Disposition.OPT_OUT.value


@dataclass(frozen=True)
class AttemptInfo:
    """What the call flows need to know about an attempt."""

    id: str
    campaign_id: int
    contact_id: int
    membership_id: int | None
    dialer: str | None
    number: str | None
    attempt_no: int
    result: Result | None
    routing: Routing | None
    disposition: Disposition | None
    callback_at: dt.datetime | None
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    amd_status: str | None
    agent: str | None

    @property
    def final(self) -> bool:
        return self.result is not None


def _fill(column, param: str | None = None):
    """SET column = COALESCE(column, :param): fill an empty field, never overwrite one.

    Statements are built once at import with bind parameters (named ``p_<column>`` unless
    given), so a call only binds values: SQLAlchemy reuses the compiled form from its cache.
    """
    return func.coalesce(column, bindparam(param or f"p_{column.name}", type_=column.type))


def _p(column, name: str | None = None):
    """A bind parameter typed like ``column`` (UTCDateTime converts on the way in)."""
    return bindparam(name or f"p_{column.name}", type_=column.type)


_AID = bindparam("p_aid", type_=_a.c.id.type)


# --- reads ------------------------------------------------------------------------------


_GET_ATTEMPT = select(_a).where(_a.c.id == _AID)
_IS_DNC = select(_dnc.c.number).where(_dnc.c.number == _p(_dnc.c.number))


async def get_attempt(conn: AsyncConnection, attempt_id: str) -> AttemptInfo | None:
    row = (await conn.execute(_GET_ATTEMPT, {"p_aid": attempt_id})).first()
    return None if row is None else _info(row)


def _info(row) -> AttemptInfo:
    return AttemptInfo(
        id=row.id,
        campaign_id=row.campaign_id,
        contact_id=row.contact_id,
        membership_id=row.membership_id,
        dialer=row.dialer,
        number=row.number,
        attempt_no=row.attempt_no,
        result=Result(row.result) if row.result else None,
        routing=Routing(row.routing) if row.routing else None,
        disposition=Disposition(row.disposition) if row.disposition else None,
        callback_at=row.callback_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        amd_status=row.amd_status,
        agent=row.agent,
    )


async def is_dnc(conn: AsyncConnection, number: str) -> bool:
    row = (await conn.execute(_IS_DNC, {"p_number": number})).first()
    return row is not None


# --- DNC --------------------------------------------------------------------------------


async def add_dnc(
    conn: AsyncConnection, number: str, source: str, *, now: dt.datetime | None = None
) -> bool:
    """Put an E.164 number on the DNC list; True if it was not there yet (never overwrites)."""
    added_at = now or dt.datetime.now(dt.timezone.utc)
    params = {"p_number": number, "p_source": source, "p_added_at": added_at}
    res = await conn.execute(_add_dnc_stmt(conn.dialect.name), params)
    return res.first() is not None


@functools.cache
def _add_dnc_stmt(dialect: str):
    module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:  # pragma: no cover - the two backends we ship
        raise NotImplementedError(f"add_dnc: unsupported database {dialect}")
    return (
        module.insert(_dnc)
        .values(number=_p(_dnc.c.number), source=_p(_dnc.c.source), added_at=_p(_dnc.c.added_at))
        .on_conflict_do_nothing()
        .returning(_dnc.c.number)
    )


# --- the attempt's life -----------------------------------------------------------------


async def start_attempt(
    conn: AsyncConnection,
    membership_id: int,
    *,
    campaign_id: int,
    contact_id: int,
    dialer: str,
    number: str,
    attempt_no: int,
    now: dt.datetime,
) -> str:
    """Insert a new attempt and make it the membership's current one; commit before Originate.

    The attempt is a call-back (``callback``) when the membership's previous attempt ended with
    the person asking for one (disposition call_back), read in the same statement.
    Returns the attempt id (a uuid, sent as the Originate ChannelId).
    """
    attempt_id = new_attempt_id()
    await conn.execute(_START_ATTEMPT, {
        "p_id": attempt_id, "p_campaign_id": campaign_id, "p_contact_id": contact_id,
        "p_membership_id": membership_id, "p_dialer": dialer, "p_number": number,
        "p_attempt_no": attempt_no, "p_queued_at": now,
    })
    await conn.execute(
        update(_cc)
        .where(_cc.c.id == membership_id)
        .values(last_attempt_id=attempt_id, updated_at=now)
    )
    return attempt_id


_previous = _a.alias("previous")
_START_ATTEMPT = insert(_a).values(
    id=_p(_a.c.id),
    campaign_id=_p(_a.c.campaign_id),
    contact_id=_p(_a.c.contact_id),
    membership_id=_p(_a.c.membership_id),
    dialer=_p(_a.c.dialer),
    number=_p(_a.c.number),
    attempt_no=_p(_a.c.attempt_no),
    queued_at=_p(_a.c.queued_at),
    callback=exists().where(
        _cc.c.id == _p(_a.c.membership_id),
        _previous.c.id == _cc.c.last_attempt_id,
        _previous.c.disposition == Disposition.CALL_BACK.value,
    ),
)


async def mark_originated(conn: AsyncConnection, attempt_id: str, at: dt.datetime) -> None:
    """Originate was accepted (or the channel exists); first report wins."""
    await conn.execute(_MARK_ORIGINATED, {"p_aid": attempt_id, "p_at": at})


_AT = _p(_a.c.answered_at, "p_at")
_MARK_ORIGINATED = update(_a).where(_a.c.id == _AID).values(
    originated_at=func.coalesce(_a.c.originated_at, _AT))
_MARK_ANSWERED = (
    update(_a)
    .where(_a.c.id == _AID)
    .values(
        originated_at=func.coalesce(_a.c.originated_at, _AT),
        answered_at=func.coalesce(_a.c.answered_at, _AT),
        amd_status=_fill(_a.c.amd_status),
        amd_cause=_fill(_a.c.amd_cause),
    )
    .returning(*_a.c)
)


async def mark_answered(
    conn: AsyncConnection,
    attempt_id: str,
    at: dt.datetime,
    amd_status: str | None = None,
    amd_cause: str | None = None,
) -> AttemptInfo | None:
    """The call was answered and reached the dialplan: membership -> in_call.

    Returns the attempt as it is now (None: no such attempt), so a flow finds and marks its
    attempt in one round trip.
    """
    row = (await conn.execute(_MARK_ANSWERED, {
        "p_aid": attempt_id, "p_at": at, "p_amd_status": amd_status, "p_amd_cause": amd_cause,
    })).first()
    if row is None:
        return None
    if row.result is None and row.membership_id is not None:  # what _move_live's guard asks too
        await _move_live(conn, attempt_id, ContactState.IN_CALL, (ContactState.DIALING,), at)
    return _info(row)


async def mark_waiting_agent(
    conn: AsyncConnection, attempt_id: str, at: dt.datetime | None = None
) -> None:
    """The person is in the agent queue: membership -> waiting_agent."""
    await _move_live(
        conn,
        attempt_id,
        ContactState.WAITING_AGENT,
        (ContactState.DIALING, ContactState.IN_CALL),
        at or dt.datetime.now(dt.timezone.utc),
    )


async def set_ivr_keys(conn: AsyncConnection, attempt_id: str, keys: str) -> None:
    """The keys the person pressed, in order (the column keeps the first 40)."""
    await conn.execute(_SET_IVR_KEYS, {"p_aid": attempt_id, "p_ivr_keys": keys[:IVR_KEYS_MAX]})


IVR_KEYS_MAX = _a.c.ivr_keys.type.length
_SET_IVR_KEYS = update(_a).where(_a.c.id == _AID).values(ivr_keys=_p(_a.c.ivr_keys))


async def set_routing(
    conn: AsyncConnection,
    attempt_id: str,
    routing: Routing,
    agent: str | None = None,
    caller_abandoned: bool = False,
    *,
    queue_status: str | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Record what routing did with a live answer, and QUEUESTATUS as the flow read it; the first
    report wins. True if set here.

    Arriving after the attempt is final, it re-runs the retry rule (a dropped call is retried).
    """
    res = await conn.execute(_SET_ROUTING, {
        "p_aid": attempt_id, "p_routing": routing.value, "p_agent": agent,
        "p_caller_abandoned": bool(caller_abandoned), "p_queue_status": queue_status,
    })
    row = res.first()
    if row is None:
        return False
    if row.result is not None:
        await _reapply_rule(conn, row, now or dt.datetime.now(dt.timezone.utc))
    return True


async def set_disposition(
    conn: AsyncConnection,
    attempt_id: str,
    disposition: Disposition,
    callback_at: dt.datetime | None = None,
    override: bool = False,
    *,
    now: dt.datetime | None = None,
) -> bool:
    """Record the person's choice: at most one; the first wins unless ``override`` (agents, CLI).

    opt_out puts the number on the DNC list at once. Arriving after the attempt is final,
    it re-runs the retry rule if this is still the contact's last attempt (an agent's
    call_back reschedules the contact). True if this call set it.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    stmt = _SET_DISPOSITION_OVERRIDE if override else _SET_DISPOSITION
    res = await conn.execute(stmt, {
        "p_aid": attempt_id, "p_disposition": disposition.value, "p_callback_at": callback_at,
    })
    row = res.first()
    if row is None:
        return False
    if disposition is Disposition.OPT_OUT and row.number:
        await add_dnc(conn, row.number, DNC_SOURCE_OPT_OUT, now=now)
    if row.result is not None:
        await _reapply_rule(conn, row, now)
    return True


async def finish_attempt(
    conn: AsyncConnection,
    attempt_id: str,
    result: Result,
    *,
    ended_at: dt.datetime,
    hangup_cause: int | None = None,
    originate_reason: int | None = None,
    talk_seconds: int | None = None,
    detail: str | None = None,
    originated_at: dt.datetime | None = None,
) -> bool:
    """Set the attempt's final result if none is set yet, and move the contact on, once.

    True if this call set the result. Either way the bookkeeping fields given here fill
    the ones still empty, never overwriting.
    """
    params = {
        "p_aid": attempt_id, "p_result": result.value, "p_charged": result.charged,
        "p_ended_at": ended_at, "p_hangup_cause": hangup_cause, "p_originate_reason": originate_reason,
        "p_talk_seconds": talk_seconds, "p_detail": detail, "p_originated_at": originated_at,
    }
    row = (await conn.execute(_FINISH, params)).first()
    if row is None:
        if any(v is not None for v in (hangup_cause, originate_reason, talk_seconds, detail, originated_at)):
            await conn.execute(_BOOKKEEPING, params)
        return False
    if row.membership_id is not None:
        await _apply_rule(conn, row, ended_at, ended_at, counted_already=False)
    return True


async def finish_unreported(conn: AsyncConnection, attempt_id: str, *, ended_at: dt.datetime,
                            hangup_cause: int | None = None, talk_seconds: int | None = None,
                            detail: str | None = None) -> bool:
    """An answered call whose FastAGI flow never reported: result ``other``, counted as a dropped
    person (routing ``dropped``: nobody knows whether a person answered and waited) and retried
    as one. True if the result was set here."""
    await set_routing(conn, attempt_id, Routing.DROPPED, now=ended_at)
    return await finish_attempt(conn, attempt_id, Result.OTHER, ended_at=ended_at, hangup_cause=hangup_cause,
                                talk_seconds=talk_seconds, detail=detail)


async def record_predial(
    conn: AsyncConnection,
    membership_id: int,
    campaign_id: int,
    contact_id: int,
    result: Result,
    detail: str | None,
    now: dt.datetime,
    *,
    number: str | None = None,
    dialer: str | None = None,
) -> str | None:
    """A contact that will not be dialed (no_phone, dnc, invalid_number, forbidden_destination).

    Writes a final attempt row (no line used, not charged) and moves the membership on by
    the retry rule (skipped). Returns the new attempt id, or None when the membership was
    already settled (a repeated call records nothing twice).
    """
    if result.dialed:
        raise ValueError(f"{result.value} is a dial result, not a pre-dial result")
    policy, before = await _policy_and_attempts(conn, campaign_id, membership_id)
    if before is None:
        return None
    step = next_step(Outcome(result), before, now, policy)
    attempt_id = new_attempt_id()
    moved = await conn.execute(
        _MOVE_PREDIAL, {"p_membership": membership_id, **_membership_params(step, result, attempt_id, now)}
    )
    if moved.rowcount != 1:
        return None
    await conn.execute(
        insert(_a).values(
            id=attempt_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
            membership_id=membership_id,
            dialer=dialer,
            number=number,
            attempt_no=before + 1,
            queued_at=now,
            ended_at=now,
            result=result.value,
            charged=False,
            detail=detail,
        )
    )
    return attempt_id


# --- the retry rule applied to a membership -----------------------------------------------

_RULE_COLUMNS = (
    _a.c.id,
    _a.c.campaign_id,
    _a.c.membership_id,
    _a.c.number,
    _a.c.result,
    _a.c.routing,
    _a.c.disposition,
    _a.c.callback_at,
    _a.c.ended_at,
)


def _outcome(row) -> Outcome:
    return Outcome(
        result=Result(row.result),
        routing=Routing(row.routing) if row.routing else None,
        disposition=Disposition(row.disposition) if row.disposition else None,
        callback_at=row.callback_at,
    )


async def _policy_and_attempts(
    conn: AsyncConnection, campaign_id: int, membership_id: int
) -> tuple[RetryPolicy | None, int | None]:
    """The campaign's retry policy and the membership's attempt count (row locked on PG).

    One statement; (None, None) when the membership (or the campaign) is not there.
    """
    params = {"p_campaign": campaign_id, "p_membership": membership_id}
    row = (await conn.execute(_POLICY_AND_ATTEMPTS, params)).first()
    if row is None:
        return None, None
    return RetryPolicy.from_campaign(row.retry_rules, row.max_attempts), row.attempts


def _membership_params(step: NextStep, result: Result, attempt_id: str, now: dt.datetime) -> dict:
    """The values of ``_MEMBERSHIP_SET`` for a step of the retry rule."""
    return {
        "p_state": step.state.value, "p_next_attempt_at": step.next_attempt_at,
        "p_attempts": step.attempts, "p_last_result": result.value, "p_aid": attempt_id,
        "p_updated_at": now,
    }


async def _apply_rule(
    conn: AsyncConnection, row, ended: dt.datetime, now: dt.datetime, *, counted_already: bool
) -> None:
    """Move the membership on after attempt ``row`` became (or changed while) final.

    Retries are timed from ``ended``, the call's end. Only while the attempt is the
    membership's last one: a late report about an older attempt never moves a contact
    that has been dialed again since.
    """
    policy, attempts = await _policy_and_attempts(conn, row.campaign_id, row.membership_id)
    if attempts is None:
        return
    service_errors = 0
    if needs_service_errors(row):
        service_errors = (await conn.execute(
            _SERVICE_ERRORS, {"p_membership": row.membership_id, "p_aid": row.id}
        )).scalar_one()
    stmt, params = rule_move(row, policy, attempts, ended, now,
                             counted_already=counted_already, service_errors=service_errors)
    await conn.execute(stmt, params)


def needs_service_errors(row) -> bool:
    """A service error's retry depends on the membership's earlier ones (they back off, then stop)."""
    return row.result == Result.SERVICE_ERROR.value


def rule_move(row, policy: RetryPolicy, attempts: int, ended: dt.datetime, now: dt.datetime, *,
              counted_already: bool, service_errors: int = 0):
    """The membership UPDATE (statement, parameters) the retry rule asks for after attempt ``row``.

    ``attempts`` is the membership's counter read under its row lock. Shared by the SQLAlchemy
    path above and the PostgreSQL fast path (agi.db.fastpath), which runs the same statement.
    """
    outcome = _outcome(row)
    if counted_already:
        # this attempt is in the counter already: take it out before applying the rule again
        attempts = max(0, attempts - next_step(outcome, 0, ended, policy).attempts)
    step = next_step(outcome, attempts, ended, policy, service_errors)
    stmt = _MOVE_AGAIN if counted_already else _MOVE_FINAL
    return stmt, {"p_membership": row.membership_id, **_membership_params(step, outcome.result, row.id, now)}


async def _reapply_rule(conn: AsyncConnection, row, now: dt.datetime) -> None:
    if row.membership_id is None or not Result(row.result).dialed:
        return
    await _apply_rule(conn, row, row.ended_at or now, now, counted_already=True)


async def _move_live(
    conn: AsyncConnection,
    attempt_id: str,
    to: ContactState,
    from_: tuple[ContactState, ...],
    now: dt.datetime,
) -> None:
    """Advance the membership of a still-open attempt that is its current one."""
    await conn.execute(_move_live_stmt(to, from_), {"p_aid": attempt_id, "p_updated_at": now})


@functools.cache
def _move_live_stmt(to: ContactState, from_: tuple[ContactState, ...]):
    open_attempt = (
        select(_a.c.membership_id).where(_a.c.id == _AID, _a.c.result.is_(None)).scalar_subquery()
    )
    return (
        update(_cc)
        .where(_cc.c.id == open_attempt, _cc.c.last_attempt_id == _AID,
               _cc.c.state.in_([s.value for s in from_]))
        .values(state=to.value, updated_at=_p(_cc.c.updated_at))
    )


# --- the statements, built once ------------------------------------------------------------

_SET_ROUTING = (
    update(_a)
    .where(_a.c.id == _AID, _a.c.routing.is_(None))
    .values(routing=_p(_a.c.routing), agent=_fill(_a.c.agent),
            caller_abandoned=_p(_a.c.caller_abandoned), queue_status=_p(_a.c.queue_status))
    .returning(*_RULE_COLUMNS)
)
_DISPOSITION_VALUES = dict(disposition=_p(_a.c.disposition), callback_at=_p(_a.c.callback_at))
_SET_DISPOSITION = (
    update(_a).where(_a.c.id == _AID, _a.c.disposition.is_(None))
    .values(**_DISPOSITION_VALUES).returning(*_RULE_COLUMNS)
)
_SET_DISPOSITION_OVERRIDE = (
    update(_a).where(_a.c.id == _AID).values(**_DISPOSITION_VALUES).returning(*_RULE_COLUMNS)
)
_BOOKKEEPING_VALUES = dict(
    originated_at=_fill(_a.c.originated_at),
    ended_at=_fill(_a.c.ended_at),
    hangup_cause=_fill(_a.c.hangup_cause),
    originate_reason=_fill(_a.c.originate_reason),
    talk_seconds=_fill(_a.c.talk_seconds),
    detail=_fill(_a.c.detail),
)
_FINISH = (
    update(_a)
    .where(_a.c.id == _AID, _a.c.result.is_(None))
    .values(result=_p(_a.c.result), charged=_p(_a.c.charged), **_BOOKKEEPING_VALUES)
    .returning(*_RULE_COLUMNS)
)
_BOOKKEEPING = update(_a).where(_a.c.id == _AID).values(**_BOOKKEEPING_VALUES)

_MEMBERSHIP = bindparam("p_membership", type_=_cc.c.id.type)
# FOR NO KEY UPDATE OF the membership only: serialises the membership's writers, lets
# attempts' FK checks pass, leaves the campaign row unlocked
_POLICY_AND_ATTEMPTS = (
    select(_cc.c.attempts, _camp.c.retry_rules, _camp.c.max_attempts)
    .join_from(_cc, _camp, _camp.c.id == bindparam("p_campaign", type_=_camp.c.id.type))
    .where(_cc.c.id == _MEMBERSHIP)
    .with_for_update(key_share=True, of=_cc)
)
_SERVICE_ERRORS = select(func.count()).where(
    _a.c.membership_id == _MEMBERSHIP, _a.c.id != _AID, _a.c.result == Result.SERVICE_ERROR.value)

_KEEP = _cc.c.state.in_(_ADMIN_STATES)  # an admin's decision stands
_MEMBERSHIP_SET = dict(
    state=case((_KEEP, _cc.c.state), else_=_p(_cc.c.state)),
    next_attempt_at=case((_KEEP, _cc.c.next_attempt_at), else_=_p(_cc.c.next_attempt_at)),
    attempts=_p(_cc.c.attempts),
    last_result=_p(_cc.c.last_result),
    last_attempt_id=_AID,
    claimed_by=None,
    claimed_at=None,
    updated_at=_p(_cc.c.updated_at),
)
_MOVE_PREDIAL = (
    update(_cc).where(_cc.c.id == _MEMBERSHIP, _cc.c.state.in_(_PREDIAL_FROM)).values(**_MEMBERSHIP_SET)
)
# the attempt became final: move the membership if the attempt is (or may become) its last one
_MOVE_FINAL = (
    update(_cc)
    .where(_cc.c.id == _MEMBERSHIP, (_cc.c.last_attempt_id == _AID) | _cc.c.last_attempt_id.is_(None))
    .values(**_MEMBERSHIP_SET)
)
# a final attempt changed (late routing or disposition): redo the step if it is still the last one
_MOVE_AGAIN = (
    update(_cc)
    .where(_cc.c.id == _MEMBERSHIP, _cc.c.last_attempt_id == _AID, _cc.c.state.in_(_SETTLED_STATES))
    .values(**_MEMBERSHIP_SET)
)
