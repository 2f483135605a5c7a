"""The SQL of the attempt writes: SQLAlchemy Core statements, built once at import.

Each statement carries its own guards (the result set once, the disposition once unless
overridden, bookkeeping only into empty fields, the membership moved only by its current
attempt, an admin's cancellation kept), so a write that finds nothing to do matches zero rows.
Values are bind parameters named ``p_<column>`` (``p_aid``: the attempt id): a call only binds
them; SQLAlchemy reuses the compiled form, and agi.db.writer compiles each once for psycopg.
The order of the statements and the retry step between them are agi.db.attempt_writes'.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, case, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from agi.db.models import Attempt, Campaign, CampaignContact, DncEntry
from agi.outcomes import ContactState, Disposition, Result

_a = Attempt.__table__
_cc = CampaignContact.__table__
_camp = Campaign.__table__
_dnc = DncEntry.__table__

# An admin's decision about a membership stands against late call reports.
ADMIN_STATES = (ContactState.CANCELLED.value, ContactState.DELETED.value)
# States a finished attempt leaves a dialed contact in: a late routing/disposition may redo it.
SETTLED_STATES = (ContactState.DONE.value, ContactState.RETRY_SCHEDULED.value)
# States from which a pre-dial result may still be recorded.
PREDIAL_FROM = (ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value, ContactState.DIALING.value)
IVR_KEYS_MAX = _a.c.ivr_keys.type.length


def p(column, name: str | None = None):
    """A bind parameter typed like ``column`` (UTCDateTime converts on the way in)."""
    return bindparam(name or f"p_{column.name}", type_=column.type)


def _fill(column, name: str | None = None):
    """SET column = COALESCE(column, :p_column): fill an empty field, never overwrite one."""
    return func.coalesce(column, p(column, name))


AID = bindparam("p_aid", type_=_a.c.id.type)
MEMBERSHIP = bindparam("p_membership", type_=_cc.c.id.type)

# --- reads --------------------------------------------------------------------------------

# What the call flows need to know about an attempt (attempt_writes.AttemptInfo)
INFO_COLUMNS = (_a.c.id, _a.c.campaign_id, _a.c.contact_id, _a.c.membership_id, _a.c.dialer, _a.c.number,
                _a.c.attempt_no, _a.c.result, _a.c.routing, _a.c.disposition, _a.c.callback_at, _a.c.answered_at,
                _a.c.ended_at, _a.c.amd_status, _a.c.agent)
GET_ATTEMPT = select(*INFO_COLUMNS).where(_a.c.id == AID)
IS_DNC = select(_dnc.c.number).where(_dnc.c.number == p(_dnc.c.number))

# What the retry rule reads of an attempt (``rule_move``)
RULE_COLUMNS = (_a.c.id, _a.c.campaign_id, _a.c.membership_id, _a.c.number, _a.c.result, _a.c.routing,
                _a.c.disposition, _a.c.callback_at, _a.c.ended_at)

# The retry rule's inputs for an attempt's membership: its attempt counter and the campaign's policy.
# FOR NO KEY UPDATE OF the membership only (attempt first, then membership, in every write):
# serialises the membership's writers, lets attempts' FK checks pass, leaves the campaign unlocked.
_of_attempt = _a.alias("of_attempt")
RULE_INPUTS = (
    select(_cc.c.attempts, _camp.c.retry_rules, _camp.c.max_attempts)
    .select_from(_of_attempt.join(_cc, _cc.c.id == _of_attempt.c.membership_id)
                 .join(_camp, _camp.c.id == _of_attempt.c.campaign_id))
    .where(_of_attempt.c.id == AID)
    .with_for_update(key_share=True, of=_cc)
)
# The same for a membership without an attempt yet (a pre-dial result)
POLICY_AND_ATTEMPTS = (
    select(_cc.c.attempts, _camp.c.retry_rules, _camp.c.max_attempts)
    .join_from(_cc, _camp, _camp.c.id == bindparam("p_campaign", type_=_camp.c.id.type))
    .where(_cc.c.id == MEMBERSHIP)
    .with_for_update(key_share=True, of=_cc)
)
# A service error's retry depends on the membership's earlier ones (they back off, then stop)
SERVICE_ERRORS = select(func.count()).where(
    _a.c.membership_id == select(_of_attempt.c.membership_id).where(_of_attempt.c.id == AID).scalar_subquery(),
    _a.c.id != AID, _a.c.result == Result.SERVICE_ERROR.value)

# --- DNC ----------------------------------------------------------------------------------

# Never overwrites; RETURNING says whether it was added. Per dialect: ON CONFLICT is each one's own.
ADD_DNC = {
    name: module.insert(_dnc)
    .values(number=p(_dnc.c.number), source=p(_dnc.c.source), added_at=p(_dnc.c.added_at))
    .on_conflict_do_nothing()
    .returning(_dnc.c.number)
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}

# An opt-out chosen while the call is on goes on the DNC list in the same step, just before the
# choice: only if the choice will be this one (the attempt locked, open, without a choice yet:
# what SET_DISPOSITION_OPEN, next, asks)
_CHOOSABLE = (
    select(_a.c.number, p(_dnc.c.source), p(_dnc.c.added_at))
    .where(_a.c.id == AID, _a.c.number.is_not(None), _a.c.disposition.is_(None), _a.c.result.is_(None))
    .with_for_update(key_share=True, of=_a)
)
OPT_OUT_WHILE_OPEN = {
    name: module.insert(_dnc).from_select(["number", "source", "added_at"], _CHOOSABLE).on_conflict_do_nothing()
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}

# --- the attempt's life -------------------------------------------------------------------

_previous = _a.alias("previous")
_START_VALUES = dict(
    id=AID, campaign_id=p(_a.c.campaign_id), contact_id=p(_a.c.contact_id), membership_id=MEMBERSHIP,
    dialer=p(_a.c.dialer), number=p(_a.c.number), attempt_no=p(_a.c.attempt_no), queued_at=p(_a.c.queued_at),
    # a call-back: the membership's previous attempt ended with the person asking for one (read
    # before MAKE_CURRENT moves last_attempt_id on)
    callback=exists().where(_cc.c.id == MEMBERSHIP, _previous.c.id == _cc.c.last_attempt_id,
                            _previous.c.disposition == Disposition.CALL_BACK.value),
    # the model's Python-side defaults, spelled out: agi.db.writer sends the statement as compiled
    caller_abandoned=False, ivr_keys="", charged=False,
)
# Sent again after a lost reply (the database dropped the connection at COMMIT), it adds nothing.
START_ATTEMPT = {
    name: module.insert(_a).values(**_START_VALUES).on_conflict_do_nothing(index_elements=[_a.c.id])
    for name, module in (("postgresql", postgresql), ("sqlite", sqlite))
}
MAKE_CURRENT = update(_cc).where(_cc.c.id == MEMBERSHIP).values(last_attempt_id=AID, updated_at=p(_cc.c.updated_at))
# A claimed contact not dialed after all (outside its calling window, its number in a call, no
# CPS token): back to the state it was claimed from, due at p_next_attempt_at; no attempt counted
RELEASE_CLAIM = (
    update(_cc).where(_cc.c.id == MEMBERSHIP, _cc.c.state == ContactState.DIALING.value)
    .values(state=_cc.c.claimed_from, next_attempt_at=p(_cc.c.next_attempt_at), claimed_by=None, claimed_at=None,
            updated_at=p(_cc.c.updated_at))
)

_AT = p(_a.c.answered_at, "p_at")
MARK_ORIGINATED = update(_a).where(_a.c.id == AID).values(originated_at=func.coalesce(_a.c.originated_at, _AT))
# answered_at and AMD are the FastAGI flow's to write, originated_at the originator's: one writer each
MARK_ANSWERED = (
    update(_a).where(_a.c.id == AID)
    .values(answered_at=func.coalesce(_a.c.answered_at, _AT), amd_status=_fill(_a.c.amd_status),
            amd_cause=_fill(_a.c.amd_cause))
    .returning(*INFO_COLUMNS)
)


def _move_live(to: ContactState, *from_: ContactState):
    """Advance the membership of a still-open attempt that is its current one (else: zero rows)."""
    open_attempt = select(_a.c.membership_id).where(_a.c.id == AID, _a.c.result.is_(None)).scalar_subquery()
    return (
        update(_cc)
        .where(_cc.c.id == open_attempt, _cc.c.last_attempt_id == AID, _cc.c.state.in_([s.value for s in from_]))
        .values(state=to.value, updated_at=p(_cc.c.updated_at))
    )


TO_IN_CALL = _move_live(ContactState.IN_CALL, ContactState.DIALING)
TO_WAITING_AGENT = _move_live(ContactState.WAITING_AGENT, ContactState.DIALING, ContactState.IN_CALL)

SET_IVR_KEYS = update(_a).where(_a.c.id == AID).values(ivr_keys=p(_a.c.ivr_keys))
# the first report wins; the _OPEN forms only while the attempt is open (else: zero rows, and the
# write goes on with the plain form and the retry rule, which a final attempt needs)
_OPEN = _a.c.result.is_(None)
_ROUTING_VALUES = dict(routing=p(_a.c.routing), agent=_fill(_a.c.agent), caller_abandoned=p(_a.c.caller_abandoned),
                       queue_status=p(_a.c.queue_status))
SET_ROUTING = (update(_a).where(_a.c.id == AID, _a.c.routing.is_(None)).values(**_ROUTING_VALUES)
               .returning(*RULE_COLUMNS))
SET_ROUTING_OPEN = (
    update(_a).where(_a.c.id == AID, _a.c.routing.is_(None), _OPEN).values(**_ROUTING_VALUES).returning(*RULE_COLUMNS)
)
_DISPOSITION_VALUES = dict(disposition=p(_a.c.disposition), callback_at=p(_a.c.callback_at))
SET_DISPOSITION = (
    update(_a).where(_a.c.id == AID, _a.c.disposition.is_(None))
    .values(**_DISPOSITION_VALUES).returning(*RULE_COLUMNS)
)
SET_DISPOSITION_OPEN = (
    update(_a).where(_a.c.id == AID, _a.c.disposition.is_(None), _OPEN)
    .values(**_DISPOSITION_VALUES).returning(*RULE_COLUMNS)
)
SET_DISPOSITION_OVERRIDE = update(_a).where(_a.c.id == AID).values(**_DISPOSITION_VALUES).returning(*RULE_COLUMNS)

_BOOKKEEPING = (_a.c.originated_at, _a.c.ended_at, _a.c.hangup_cause, _a.c.originate_reason, _a.c.talk_seconds)
_BOOKKEEPING_VALUES = {c.name: _fill(c) for c in _BOOKKEEPING}
# the final result, set once, with why (detail) when the code alone does not say
FINISH = (
    update(_a).where(_a.c.id == AID, _a.c.result.is_(None))
    .values(result=p(_a.c.result), charged=p(_a.c.charged), detail=_fill(_a.c.detail), **_BOOKKEEPING_VALUES)
    .returning(*RULE_COLUMNS)
)
# a report that did not set the result still fills the bookkeeping fields left empty (none: zero
# rows); never the detail, which explains the result someone else set
BOOKKEEPING = (
    update(_a)
    .where(_a.c.id == AID, or_(*(and_(c.is_(None), p(c).is_not(None)) for c in _BOOKKEEPING)))
    .values(**_BOOKKEEPING_VALUES)
)
PREDIAL_ATTEMPT = insert(_a).values(
    id=AID, campaign_id=p(_a.c.campaign_id), contact_id=p(_a.c.contact_id), membership_id=MEMBERSHIP,
    dialer=p(_a.c.dialer), number=p(_a.c.number), attempt_no=p(_a.c.attempt_no), queued_at=p(_a.c.queued_at),
    ended_at=p(_a.c.ended_at), result=p(_a.c.result), charged=False, detail=p(_a.c.detail),
    caller_abandoned=False, ivr_keys="", callback=False,
)

# --- the membership moved on by the retry rule ----------------------------------------------

_KEEP = _cc.c.state.in_(ADMIN_STATES)  # an admin's decision stands
_MEMBERSHIP_SET = dict(
    state=case((_KEEP, _cc.c.state), else_=p(_cc.c.state)),
    next_attempt_at=case((_KEEP, _cc.c.next_attempt_at), else_=p(_cc.c.next_attempt_at)),
    attempts=p(_cc.c.attempts),
    last_result=p(_cc.c.last_result),
    last_attempt_id=AID,
    claimed_by=None,
    claimed_at=None,
    updated_at=p(_cc.c.updated_at),
)
MOVE_PREDIAL = update(_cc).where(_cc.c.id == MEMBERSHIP, _cc.c.state.in_(PREDIAL_FROM)).values(**_MEMBERSHIP_SET)
# the attempt became final: move the membership if the attempt is (or may become) its last one
MOVE_FINAL = (
    update(_cc)
    .where(_cc.c.id == MEMBERSHIP, (_cc.c.last_attempt_id == AID) | _cc.c.last_attempt_id.is_(None))
    .values(**_MEMBERSHIP_SET)
)
# a final attempt changed (late routing or disposition): redo the step if it is still the last one
MOVE_AGAIN = (
    update(_cc)
    .where(_cc.c.id == MEMBERSHIP, _cc.c.last_attempt_id == AID, _cc.c.state.in_(SETTLED_STATES))
    .values(**_MEMBERSHIP_SET)
)
