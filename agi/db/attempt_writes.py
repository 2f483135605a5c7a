"""Each attempt write defined once: its statements in order, and the retry step between them.

The outbound and hangup flows, the originator and the reconciler may all report on one
attempt, in any order and more than once; every write is keyed by the attempt id and
idempotent. A write here is a generator that does no I/O: it yields a ``Step`` (statements
that do not depend on one another's results), receives their results, decides in Python what
follows (``agi.rules.retry``), and returns its answer. Guards that match zero rows are how a
write finds out; no statement is meant to fail. A Step marked ``commit`` may end the transaction:
the common case of a write is often one such Step (the person's choice while the call is on),
and the rarer rest (the attempt was final already) goes on after it. ``agi.db.attempts.run`` sends the
statements one by one over a SQLAlchemy connection; ``agi.db.writer`` sends each Step
pipelined over psycopg and the Steps of calls writing together in one transaction. So the
databases differ in how the statements travel, never in what they say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from agi.db import attempt_sql as sql
from agi.db.models import new_attempt_id
from agi.outcomes import Disposition, Result, Routing
from agi.rules.retry import NextStep, Outcome, RetryPolicy, next_step

T = TypeVar("T")
DNC_SOURCE_OPT_OUT = Disposition.OPT_OUT.value
ROW, COUNT, SCALAR, NOTHING = "row", "count", "scalar", "nothing"
UNREAD: Any = object()  # the retry rule's inputs not read yet (read, they may be None: no membership)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a write and its values; ``returns``: the first row (or None), the rows
    matched, one value, or nothing. ``sql`` may be a mapping of dialect name to statement."""

    sql: Any
    params: dict
    returns: str = NOTHING


@dataclass(frozen=True, slots=True)
class Step:
    """Statements sent together, in order. ``commit``: the transaction may end with them; what the
    write did so far stands on its own (if it goes on, the rest may be a transaction of its own)."""

    statements: tuple[Statement, ...]
    commit: bool = False


Write = Generator[Step, list, T]


def step(*statements: Statement) -> Step:
    return Step(statements)


def commit(*statements: Statement) -> Step:
    return Step(statements, commit=True)


def _row(stmt, **params) -> Statement:
    return Statement(stmt, params, ROW)


def _do(stmt, **params) -> Statement:
    return Statement(stmt, params)


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

    @classmethod
    def from_row(cls, row) -> AttemptInfo:
        return cls(
            id=row.id, campaign_id=row.campaign_id, contact_id=row.contact_id, membership_id=row.membership_id,
            dialer=row.dialer, number=row.number, attempt_no=row.attempt_no,
            result=Result(row.result) if row.result else None,
            routing=Routing(row.routing) if row.routing else None,
            disposition=Disposition(row.disposition) if row.disposition else None,
            callback_at=row.callback_at, answered_at=row.answered_at, ended_at=row.ended_at,
            amd_status=row.amd_status, agent=row.agent,
        )


# --- reads and DNC ------------------------------------------------------------------------

def get_attempt(attempt_id: str) -> Write[AttemptInfo | None]:
    [row] = yield commit(_row(sql.GET_ATTEMPT, p_aid=attempt_id))
    return None if row is None else AttemptInfo.from_row(row)


def is_dnc(number: str) -> Write[bool]:
    [row] = yield commit(_row(sql.IS_DNC, p_number=number))
    return row is not None


def _add_dnc(number: str, source: str, now: dt.datetime) -> Statement:
    return _row(sql.ADD_DNC, p_number=number, p_source=source, p_added_at=now)


def add_dnc(number: str, source: str, now: dt.datetime) -> Write[bool]:
    """Put an E.164 number on the DNC list; True if it was not there yet (never overwrites)."""
    [row] = yield commit(_add_dnc(number, source, now))
    return row is not None


# --- the attempt's life -------------------------------------------------------------------

def start_attempt(membership_id: int, *, campaign_id: int, contact_id: int, dialer: str, number: str,
                  attempt_no: int, now: dt.datetime, attempt_id: str | None = None) -> Write[str]:
    """Insert a new attempt and make it the membership's current one; commit before Originate.

    The attempt is a call-back (``callback``) when the membership's previous attempt ended with
    the person asking for one. Returns the attempt id (a uuid, sent as the Originate ChannelId).
    """
    attempt_id = attempt_id or new_attempt_id()
    yield commit(
        _do(sql.START_ATTEMPT, p_aid=attempt_id, p_campaign_id=campaign_id, p_contact_id=contact_id,
            p_membership=membership_id, p_dialer=dialer, p_number=number, p_attempt_no=attempt_no, p_queued_at=now),
        _do(sql.MAKE_CURRENT, p_membership=membership_id, p_aid=attempt_id, p_updated_at=now),
    )
    return attempt_id


def mark_originated(attempt_id: str, at: dt.datetime) -> Write[None]:
    """Originate was accepted (or the channel exists); first report wins."""
    yield commit(_do(sql.MARK_ORIGINATED, p_aid=attempt_id, p_at=at))


def mark_answered(attempt_id: str, at: dt.datetime, amd_status: str | None = None,
                  amd_cause: str | None = None) -> Write[AttemptInfo | None]:
    """The call was answered and reached the dialplan: membership -> in_call (while the attempt is
    open and its current one). Returns the attempt as it is now (None: no such attempt)."""
    row, _ = yield commit(
        _row(sql.MARK_ANSWERED, p_aid=attempt_id, p_at=at, p_amd_status=amd_status, p_amd_cause=amd_cause),
        _do(sql.TO_IN_CALL, p_aid=attempt_id, p_updated_at=at),
    )
    return None if row is None else AttemptInfo.from_row(row)


def mark_waiting_agent(attempt_id: str, at: dt.datetime) -> Write[None]:
    """The person is in the agent queue: membership -> waiting_agent."""
    yield commit(_do(sql.TO_WAITING_AGENT, p_aid=attempt_id, p_updated_at=at))


def _keys(attempt_id: str, keys: str) -> Statement:
    return _do(sql.SET_IVR_KEYS, p_aid=attempt_id, p_ivr_keys=keys[:sql.IVR_KEYS_MAX])


def set_ivr_keys(attempt_id: str, keys: str) -> Write[None]:
    """The keys the person pressed, in order (the column keeps the first 40)."""
    yield commit(_keys(attempt_id, keys))


def set_routing(attempt_id: str, routing: Routing, agent: str | None = None, caller_abandoned: bool = False, *,
                queue_status: str | None = None, now: dt.datetime) -> Write[bool]:
    """What routing did with a live answer, and QUEUESTATUS as the flow read it; the first report
    wins. True if set here. Arriving after the attempt is final, the retry rule runs again (a
    dropped call is retried)."""
    values = dict(p_aid=attempt_id, p_routing=routing.value, p_agent=agent,
                  p_caller_abandoned=bool(caller_abandoned), p_queue_status=queue_status)
    [row] = yield commit(_row(sql.SET_ROUTING_OPEN, **values))  # the call is still on: that is all
    if row is not None:
        return True
    [row] = yield step(_row(sql.SET_ROUTING, **values))
    if row is None:
        return False
    yield from _again(row, now)
    return True


def set_disposition(attempt_id: str, disposition: Disposition, callback_at: dt.datetime | None = None,
                    override: bool = False, *, now: dt.datetime, keys: str | None = None,
                    waiting_agent: bool = False) -> Write[bool]:
    """The person's choice: at most one; the first wins unless ``override`` (agents, CLI). With
    ``keys`` the keys pressed, with ``waiting_agent`` the contact waiting for an agent.

    opt_out puts the number on the DNC list at once. Arriving after the attempt is final, the
    retry rule runs again while this is the contact's last attempt (an agent's call_back
    reschedules the contact). True if this call set it.
    """
    values = dict(p_aid=attempt_id, p_disposition=disposition.value, p_callback_at=callback_at)
    pressed = () if keys is None else (_keys(attempt_id, keys),)
    waiting = (_do(sql.TO_WAITING_AGENT, p_aid=attempt_id, p_updated_at=now),) if waiting_agent else ()
    if not override:  # while the call is on, the choice is all there is (an opt-out goes on the DNC list with it)
        dnc = (_do(sql.OPT_OUT_WHILE_OPEN, p_aid=attempt_id, p_source=DNC_SOURCE_OPT_OUT, p_added_at=now),
               ) if disposition is Disposition.OPT_OUT else ()
        row = (yield commit(*dnc, *pressed, _row(sql.SET_DISPOSITION_OPEN, **values), *waiting))[-1 - len(waiting)]
        if row is not None:
            return True
        pressed = waiting = ()  # written; what follows is for an attempt final already, or chosen
    chosen = _row(sql.SET_DISPOSITION_OVERRIDE if override else sql.SET_DISPOSITION, **values)
    row = (yield step(*pressed, chosen, *waiting))[len(pressed)]
    if row is None:
        return False
    yield from _again(row, now, also=_opt_out(row, disposition, now))
    return True


def _opt_out(row, disposition: Disposition | None, now: dt.datetime) -> tuple[Statement, ...]:
    """An opt-out chosen here puts the attempt's number on the DNC list."""
    if disposition is Disposition.OPT_OUT and row.number:
        return (_add_dnc(row.number, DNC_SOURCE_OPT_OUT, now),)
    return ()


def finish_attempt(attempt_id: str, result: Result, *, ended_at: dt.datetime, now: dt.datetime | None = None,
                   keys: str | None = None, disposition: Disposition | None = None,
                   callback_at: dt.datetime | None = None, hangup_cause: int | None = None,
                   originate_reason: int | None = None, talk_seconds: int | None = None, detail: str | None = None,
                   originated_at: dt.datetime | None = None) -> Write[bool]:
    """Set the attempt's final result if none is set yet, and move the contact on, once; with
    ``keys`` and ``disposition`` (first wins) the person's choice first, all in one transaction.

    True if this call set the result. Either way the bookkeeping fields given here fill the
    ones still empty, never overwriting. What the retry rule needs (the membership locked, its
    counter, the campaign's policy) is read with the writes, so the contact moves in one more step.
    """
    now = now or ended_at
    kept = dict(p_originated_at=originated_at, p_hangup_cause=hangup_cause, p_originate_reason=originate_reason,
                p_talk_seconds=talk_seconds, p_detail=detail)
    batch = {} if keys is None else {"keys": _keys(attempt_id, keys)}
    if disposition is not None:
        batch["chosen"] = _row(sql.SET_DISPOSITION, p_aid=attempt_id, p_disposition=disposition.value,
                               p_callback_at=callback_at)
    batch["final"] = _row(sql.FINISH, p_aid=attempt_id, p_result=result.value, p_charged=result.charged,
                          p_ended_at=ended_at, **kept)
    filled = {k: v for k, v in kept.items() if k != "p_detail"}  # the detail explains a result: only with it
    if any(v is not None for v in filled.values()):
        # not set here (someone else's result): the bookkeeping still fills what is empty (after
        # FINISH, zero rows). Before the membership's lock, as every write goes attempt first,
        # then membership: sent after it, it deadlocked with a routing or choice on the attempt.
        batch["filled"] = _do(sql.BOOKKEEPING, p_aid=attempt_id, p_ended_at=ended_at, **filled)
    batch["inputs"] = _row(sql.RULE_INPUTS, p_aid=attempt_id)
    if result is Result.SERVICE_ERROR:
        batch["errors"] = Statement(sql.SERVICE_ERRORS, {"p_aid": attempt_id}, SCALAR)
    got = dict(zip(batch, (yield step(*batch.values()))))
    final, chosen = got["final"], got.get("chosen")
    also = () if chosen is None else _opt_out(chosen, disposition, now)
    if final is not None:
        yield from _rule(final, ended_at, ended_at, counted_already=False, inputs=got["inputs"],
                         service_errors=got.get("errors"), also=also)
        return True
    if chosen is not None:
        yield from _again(chosen, now, also=also, inputs=got["inputs"])
    return False


def finish_unreported(attempt_id: str, *, ended_at: dt.datetime, hangup_cause: int | None = None,
                      talk_seconds: int | None = None, detail: str | None = None) -> Write[bool]:
    """An answered call whose FastAGI flow never reported: result ``other``, counted as a dropped
    person (routing ``dropped``: nobody knows whether a person answered and waited) and retried
    as one. True if the result was set here.

    Only while the attempt is open: a flow that did report, however late, keeps its result and
    routing untouched (nothing is filled in either), and finding that out is one step."""
    routing = _row(sql.SET_ROUTING_OPEN, p_aid=attempt_id, p_routing=Routing.DROPPED.value, p_agent=None,
                   p_caller_abandoned=False, p_queue_status=None)
    final = _row(sql.FINISH, p_aid=attempt_id, p_result=Result.OTHER.value, p_charged=Result.OTHER.charged,
                 p_ended_at=ended_at, p_originated_at=None, p_hangup_cause=hangup_cause, p_originate_reason=None,
                 p_talk_seconds=talk_seconds, p_detail=detail)
    _, final, inputs = yield step(routing, final, _row(sql.RULE_INPUTS, p_aid=attempt_id))
    if final is None:
        return False
    yield from _rule(final, ended_at, ended_at, counted_already=False, inputs=inputs)
    return True


def release_claim(membership_id: int, *, next_attempt_at: dt.datetime | None, now: dt.datetime) -> Write[bool]:
    """Give back a claimed membership that was not dialed (outside its calling window, its number
    in a call): back to the state it was claimed from, due at ``next_attempt_at``; no attempt
    counted. True if it was still claimed."""
    [count] = yield commit(Statement(sql.RELEASE_CLAIM, {"p_membership": membership_id,
                                                        "p_next_attempt_at": next_attempt_at, "p_updated_at": now},
                                     COUNT))
    return count == 1


def record_predial(membership_id: int, campaign_id: int, contact_id: int, result: Result, detail: str | None,
                   now: dt.datetime, *, number: str | None = None, dialer: str | None = None) -> Write[str | None]:
    """A contact that will not be dialed (no_phone, dnc, invalid_number, forbidden_destination).

    Writes a final attempt row (no line used, not charged) and moves the membership on by the
    retry rule (skipped). Returns the new attempt id, or None when the membership was already
    settled (a repeated call records nothing twice).
    """
    if result.dialed:
        raise ValueError(f"{result.value} is a dial result, not a pre-dial result")
    [inputs] = yield step(_row(sql.POLICY_AND_ATTEMPTS, p_campaign=campaign_id, p_membership=membership_id))
    if inputs is None:
        return None
    before = inputs.attempts
    attempt_id = new_attempt_id()
    moved = next_step(Outcome(result), before, now, _policy(inputs))
    [count] = yield step(Statement(sql.MOVE_PREDIAL, {"p_membership": membership_id,
                                                      **_membership_values(moved, result, attempt_id, now)}, COUNT))
    if count != 1:
        return None
    yield commit(_do(sql.PREDIAL_ATTEMPT, p_aid=attempt_id, p_campaign_id=campaign_id, p_contact_id=contact_id,
                   p_membership=membership_id, p_dialer=dialer, p_number=number, p_attempt_no=before + 1,
                   p_queued_at=now, p_ended_at=now, p_result=result.value, p_detail=detail))
    return attempt_id


# --- the retry rule applied to a membership -------------------------------------------------

def _again(row, now: dt.datetime, *, also: tuple[Statement, ...] = (), inputs=UNREAD) -> Write[None]:
    """After a routing or a choice was set on attempt ``row``: if it is final already, the retry
    rule runs again with it (the attempt counted once); ``also`` goes out in the same steps."""
    if row.result is not None and Result(row.result).dialed and row.membership_id is not None:
        yield from _rule(row, row.ended_at or now, now, counted_already=True, inputs=inputs, also=also)
    elif also:
        yield commit(*also)


def _rule(row, ended: dt.datetime, now: dt.datetime, *, counted_already: bool, inputs=UNREAD,
          service_errors: int | None = None, also: tuple[Statement, ...] = ()) -> Write[None]:
    """Move the membership on after attempt ``row`` became (or changed while) final: the rule's
    inputs read under the membership's lock unless given, then its UPDATE. Retries are timed
    from ``ended``, the call's end. Only while the attempt is the membership's last one: a late
    report about an older attempt never moves a contact dialed again since."""
    needs_errors = row.result == Result.SERVICE_ERROR.value and service_errors is None
    if inputs is UNREAD or needs_errors:
        reads = (_row(sql.RULE_INPUTS, p_aid=row.id),) + (
            (Statement(sql.SERVICE_ERRORS, {"p_aid": row.id}, SCALAR),) if needs_errors else ())
        got = (yield step(*also, *reads))[len(also):]
        inputs, service_errors, also = got[0], got[1] if needs_errors else service_errors, ()
    if inputs is None:  # no membership (or no campaign): nothing to move
        if also:
            yield commit(*also)
        return
    yield commit(*also, rule_move(row, inputs, ended, now, counted_already=counted_already,
                                service_errors=service_errors or 0))


def rule_move(row, inputs, ended: dt.datetime, now: dt.datetime, *, counted_already: bool,
              service_errors: int = 0) -> Statement:
    """The membership UPDATE the retry rule asks for after attempt ``row``; ``inputs``: the
    membership's counter (read under its lock) and the campaign's policy (RULE_INPUTS)."""
    outcome = Outcome(
        result=Result(row.result),
        routing=Routing(row.routing) if row.routing else None,
        disposition=Disposition(row.disposition) if row.disposition else None,
        callback_at=row.callback_at,
    )
    policy, attempts = _policy(inputs), inputs.attempts
    if counted_already:
        # this attempt is in the counter already: take it out before applying the rule again
        attempts = max(0, attempts - next_step(outcome, 0, ended, policy).attempts)
    moved = next_step(outcome, attempts, ended, policy, service_errors)
    stmt = sql.MOVE_AGAIN if counted_already else sql.MOVE_FINAL
    return _do(stmt, p_membership=row.membership_id, **_membership_values(moved, outcome.result, row.id, now))


def _policy(inputs) -> RetryPolicy:
    return RetryPolicy.from_campaign(inputs.retry_rules, inputs.max_attempts)


def _membership_values(moved: NextStep, result: Result, attempt_id: str, now: dt.datetime) -> dict:
    """The values of the membership UPDATE for a step of the retry rule."""
    return {
        "p_state": moved.state.value, "p_next_attempt_at": moved.next_attempt_at, "p_attempts": moved.attempts,
        "p_last_result": result.value, "p_aid": attempt_id, "p_updated_at": now,
    }
