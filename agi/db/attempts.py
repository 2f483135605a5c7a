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

from sqlalchemy import and_, case, func, insert, literal, select, update
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


def _fill(column, value):
    """SET column = COALESCE(column, value): fill an empty field, never overwrite one."""
    return func.coalesce(column, literal(value, column.type))


# --- reads ------------------------------------------------------------------------------


async def get_attempt(conn: AsyncConnection, attempt_id: str) -> AttemptInfo | None:
    row = (await conn.execute(select(_a).where(_a.c.id == attempt_id))).first()
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
    row = (await conn.execute(select(_dnc.c.number).where(_dnc.c.number == number))).first()
    return row is not None


# --- DNC --------------------------------------------------------------------------------


async def add_dnc(
    conn: AsyncConnection, number: str, source: str, *, now: dt.datetime | None = None
) -> bool:
    """Put an E.164 number on the DNC list; True if it was not there yet (never overwrites)."""
    added_at = now or dt.datetime.now(dt.timezone.utc)
    values = {"number": number, "source": source, "added_at": added_at}
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(_dnc).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(_dnc).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - the two backends we ship
        raise NotImplementedError(f"add_dnc: unsupported database {dialect}")
    res = await conn.execute(stmt.returning(_dnc.c.number))
    return res.first() is not None


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

    Returns the attempt id (a uuid, sent as the Originate ChannelId).
    """
    attempt_id = new_attempt_id()
    await conn.execute(
        insert(_a).values(
            id=attempt_id,
            campaign_id=campaign_id,
            contact_id=contact_id,
            membership_id=membership_id,
            dialer=dialer,
            number=number,
            attempt_no=attempt_no,
            queued_at=now,
        )
    )
    await conn.execute(
        update(_cc)
        .where(_cc.c.id == membership_id)
        .values(last_attempt_id=attempt_id, updated_at=now)
    )
    return attempt_id


async def mark_originated(conn: AsyncConnection, attempt_id: str, at: dt.datetime) -> None:
    """Originate was accepted (or the channel exists); first report wins."""
    await conn.execute(
        update(_a)
        .where(_a.c.id == attempt_id)
        .values(originated_at=_fill(_a.c.originated_at, at))
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
    row = (await conn.execute(
        update(_a)
        .where(_a.c.id == attempt_id)
        .values(
            originated_at=_fill(_a.c.originated_at, at),
            answered_at=_fill(_a.c.answered_at, at),
            amd_status=_fill(_a.c.amd_status, amd_status),
            amd_cause=_fill(_a.c.amd_cause, amd_cause),
        )
        .returning(*_a.c)
    )).first()
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
    limit = _a.c.ivr_keys.type.length
    await conn.execute(update(_a).where(_a.c.id == attempt_id).values(ivr_keys=keys[:limit]))


async def set_routing(
    conn: AsyncConnection,
    attempt_id: str,
    routing: Routing,
    agent: str | None = None,
    caller_abandoned: bool = False,
    *,
    now: dt.datetime | None = None,
) -> bool:
    """Record what routing did with a live answer; the first report wins. True if set here.

    Arriving after the attempt is final, it re-runs the retry rule (a dropped call is retried).
    """
    res = await conn.execute(
        update(_a)
        .where(_a.c.id == attempt_id, _a.c.routing.is_(None))
        .values(
            routing=routing.value,
            agent=_fill(_a.c.agent, agent),
            caller_abandoned=bool(caller_abandoned),
        )
        .returning(*_RULE_COLUMNS)
    )
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
    cond = [_a.c.id == attempt_id]
    if not override:
        cond.append(_a.c.disposition.is_(None))
    res = await conn.execute(
        update(_a)
        .where(*cond)
        .values(disposition=disposition.value, callback_at=callback_at)
        .returning(*_RULE_COLUMNS)
    )
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
) -> bool:
    """Set the attempt's final result if none is set yet, and move the contact on, once.

    True if this call set the result. Either way the bookkeeping fields given here fill
    the ones still empty, never overwriting.
    """
    bookkeeping = dict(
        ended_at=_fill(_a.c.ended_at, ended_at),
        hangup_cause=_fill(_a.c.hangup_cause, hangup_cause),
        originate_reason=_fill(_a.c.originate_reason, originate_reason),
        talk_seconds=_fill(_a.c.talk_seconds, talk_seconds),
        detail=_fill(_a.c.detail, detail),
    )
    res = await conn.execute(
        update(_a)
        .where(_a.c.id == attempt_id, _a.c.result.is_(None))
        .values(result=result.value, charged=result.charged, **bookkeeping)
        .returning(*_RULE_COLUMNS)
    )
    row = res.first()
    if row is None:
        if any(v is not None for v in (hangup_cause, originate_reason, talk_seconds, detail)):
            await conn.execute(update(_a).where(_a.c.id == attempt_id).values(**bookkeeping))
        return False
    if row.membership_id is not None:
        await _apply_rule(conn, row, ended_at, ended_at, counted_already=False)
    return True


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
        update(_cc)
        .where(_cc.c.id == membership_id, _cc.c.state.in_(_PREDIAL_FROM))
        .values(**_membership_values(step, result, attempt_id, now))
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
    # FOR NO KEY UPDATE OF the membership only: serialises the membership's writers, lets
    # attempts' FK checks pass, leaves the campaign row unlocked
    row = (
        await conn.execute(
            select(_cc.c.attempts, _camp.c.retry_rules, _camp.c.max_attempts)
            .join_from(_cc, _camp, _camp.c.id == campaign_id)
            .where(_cc.c.id == membership_id)
            .with_for_update(key_share=True, of=_cc)
        )
    ).first()
    if row is None:
        return None, None
    return RetryPolicy.from_campaign(row.retry_rules, row.max_attempts), row.attempts


def _membership_values(step: NextStep, result: Result, attempt_id: str, now: dt.datetime) -> dict:
    keep = _cc.c.state.in_(_ADMIN_STATES)
    return dict(
        state=case((keep, _cc.c.state), else_=step.state.value),
        next_attempt_at=case(
            (keep, _cc.c.next_attempt_at),
            else_=literal(step.next_attempt_at, _cc.c.next_attempt_at.type),
        ),
        attempts=step.attempts,
        last_result=result.value,
        last_attempt_id=attempt_id,
        claimed_by=None,
        claimed_at=None,
        updated_at=now,
    )


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
    outcome = _outcome(row)
    if counted_already:
        # this attempt is in the counter already: take it out before applying the rule again
        attempts = max(0, attempts - next_step(outcome, 0, ended, policy).attempts)
    service_errors = 0
    if outcome.result is Result.SERVICE_ERROR:  # the earlier ones back off the retry, then stop it
        service_errors = (await conn.execute(
            select(func.count()).where(_a.c.membership_id == row.membership_id, _a.c.id != row.id,
                                       _a.c.result == Result.SERVICE_ERROR.value)
        )).scalar_one()
    step = next_step(outcome, attempts, ended, policy, service_errors)
    where = [_cc.c.id == row.membership_id]
    if counted_already:
        where += [_cc.c.last_attempt_id == row.id, _cc.c.state.in_(_SETTLED_STATES)]
    else:
        where.append((_cc.c.last_attempt_id == row.id) | _cc.c.last_attempt_id.is_(None))
    values = _membership_values(step, outcome.result, row.id, now)
    await conn.execute(update(_cc).where(and_(*where)).values(**values))


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
    open_attempt = (
        select(_a.c.membership_id)
        .where(_a.c.id == attempt_id, _a.c.result.is_(None))
        .scalar_subquery()
    )
    await conn.execute(
        update(_cc)
        .where(
            _cc.c.id == open_attempt,
            _cc.c.last_attempt_id == attempt_id,
            _cc.c.state.in_([s.value for s in from_]),
        )
        .values(state=to.value, updated_at=now)
    )
