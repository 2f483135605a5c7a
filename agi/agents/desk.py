"""The contacts in front of an agent (``agent_calls``): a preview offer or a queue call, its
after-call work and the agent's disposition.

A preview offer:  offered (contact ``operator_assigned``) -> bcw once the console shows it (``bcw``)
-> calling (the agent clicked Call, or the countdown ran out: ``dialing``) -> connected -> acw -> done;
or -> rejected (contact ``rejected_by_operator``, or ``skipped`` when the campaign says so).
A queue call (AgentConnect): connected -> acw (contact ``acw`` once its attempt is final) -> done
(contact back to ``done``/``retry_scheduled`` by the retry rule, with the disposition).

Every transition is one guarded UPDATE (``WHERE state IN (...)``): a repeated click, a late event or
two processes doing the same thing change a row once. Queries that read for the console always
filter by the agent: an agent sees only the contacts offered or connected to them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import Agent, AgentCall, Attempt, Campaign, CampaignContact, Contact
from agi.dispositions import dispose as write_disposition
from agi.outcomes import ContactState, Disposition

_ac = AgentCall.__table__
_ag = Agent.__table__
_a = Attempt.__table__
_c = Campaign.__table__
_cc = CampaignContact.__table__
_ct = Contact.__table__

OFFERED, BCW, REJECTED, CALLING, CONNECTED, ACW, DONE = (
    "offered", "bcw", "rejected", "calling", "connected", "acw", "done")
OPEN = (OFFERED, BCW, CALLING, CONNECTED, ACW)
BEFORE_CALL = (OFFERED, BCW)
ON_REJECT = ("next_agent", "skip")
SETTLED = (ContactState.DONE.value, ContactState.RETRY_SCHEDULED.value)
HISTORY = 10  # earlier attempts shown on a card


@dataclass(frozen=True)
class Card:
    """What the console shows of the contact in front of an agent."""

    id: int
    kind: str
    state: str
    campaign: str
    attempt_id: str | None
    name: str
    number: str | None
    custom: dict
    history: list[dict]
    offered_at: dt.datetime
    bcw_until: dt.datetime | None
    acw_until: dt.datetime | None
    disposition: str | None
    result: str | None

    @property
    def key(self) -> str:
        """Changes whenever the console must redraw the card."""
        return f"{self.id}:{self.state}:{self.disposition or ''}:{self.result or ''}"


async def open_call(conn: AsyncConnection, agent_id: int):
    """The agent's call or offer still open (the newest), or None."""
    return (await conn.execute(select(_ac).where(_ac.c.agent_id == agent_id, _ac.c.state.in_(OPEN))
                               .order_by(_ac.c.id.desc()).limit(1))).first()


async def card(conn: AsyncConnection, agent_id: int) -> Card | None:
    """The open call of this agent as the console shows it: contact, custom fields, earlier attempts."""
    row = await open_call(conn, agent_id)
    if row is None:
        return None
    contact = (await conn.execute(select(_ct).where(_ct.c.id == row.contact_id))).first()
    camp = (await conn.execute(select(_c.c.name).where(_c.c.id == row.campaign_id))).scalar_one()
    number = None
    if row.membership_id is not None:
        number = (await conn.execute(select(_cc.c.number).where(_cc.c.id == row.membership_id))).scalar()
    earlier = (await conn.execute(
        select(_a.c.id, _a.c.queued_at, _a.c.result, _a.c.routing, _a.c.disposition, _a.c.number)
        .where(_a.c.contact_id == row.contact_id).order_by(_a.c.queued_at.desc()).limit(HISTORY + 1))).all()
    result = next((h.result for h in earlier if h.id == row.attempt_id), None)
    history = [{"at": h.queued_at, "result": h.result, "routing": h.routing, "disposition": h.disposition,
                "number": h.number} for h in earlier if h.id != row.attempt_id][:HISTORY]
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) if contact else ""
    return Card(row.id, row.kind, row.state, camp, row.attempt_id, name or "(no name)",
                number or (contact.phone if contact else None), dict(contact.custom or {}) if contact else {},
                history, row.offered_at, row.bcw_until, row.acw_until, row.disposition, result)


async def _move_contact(conn: AsyncConnection, membership_id: int | None, to: str, from_: tuple[str, ...],
                        now: dt.datetime, **extra) -> bool:
    if membership_id is None:
        return False
    res = await conn.execute(update(_cc).where(_cc.c.id == membership_id, _cc.c.state.in_(from_))
                             .values(state=to, updated_at=now, **extra))
    return res.rowcount == 1


# --- preview offers -------------------------------------------------------------------------------

async def offer(conn: AsyncConnection, agent_id: int, campaign_id: int, membership_id: int, contact_id: int,
                now: dt.datetime, *, claimed_from: tuple[str, ...]) -> int | None:
    """Offer a claimed contact to one agent: contact -> operator_assigned. None if the contact moved."""
    if not await _move_contact(conn, membership_id, ContactState.OPERATOR_ASSIGNED.value, claimed_from, now):
        return None
    res = await conn.execute(_ac.insert().values(agent_id=agent_id, campaign_id=campaign_id, contact_id=contact_id,
                                                 membership_id=membership_id, kind="preview", state=OFFERED,
                                                 offered_at=now).returning(_ac.c.id))
    return res.scalar_one()


async def mark_seen(conn: AsyncConnection, agent_id: int, call_id: int, now: dt.datetime) -> bool:
    """The console shows the offer: before call work starts (its countdown, when the campaign has one)."""
    row = (await conn.execute(select(_ac.c.membership_id, _c.c.bcw_seconds).join(_c, _c.c.id == _ac.c.campaign_id)
                              .where(_ac.c.id == call_id, _ac.c.agent_id == agent_id, _ac.c.state == OFFERED))).first()
    if row is None:
        return False
    until = now + dt.timedelta(seconds=row.bcw_seconds) if row.bcw_seconds > 0 else None
    res = await conn.execute(update(_ac).where(_ac.c.id == call_id, _ac.c.state == OFFERED)
                             .values(state=BCW, seen_at=now, bcw_until=until))
    await _move_contact(conn, row.membership_id, ContactState.BCW.value, (ContactState.OPERATOR_ASSIGNED.value,), now)
    return res.rowcount == 1


async def ask_call(conn: AsyncConnection, agent_id: int, call_id: int, now: dt.datetime) -> bool:
    """The agent clicked Call: the originator dials on its next tick."""
    res = await conn.execute(update(_ac).where(_ac.c.id == call_id, _ac.c.agent_id == agent_id,
                                               _ac.c.state.in_(BEFORE_CALL), _ac.c.call_at.is_(None))
                             .values(state=BCW, call_at=now, seen_at=func.coalesce(_ac.c.seen_at, literal(now, _ac.c.seen_at.type))))
    return res.rowcount == 1


async def reject(conn: AsyncConnection, agent_id: int, call_id: int, now: dt.datetime) -> str | None:
    """The agent refused the offer before its call started: the contact's new state, or None."""
    row = (await conn.execute(select(_ac.c.membership_id, _c.c.on_reject).join(_c, _c.c.id == _ac.c.campaign_id)
                              .where(_ac.c.id == call_id, _ac.c.agent_id == agent_id))).first()
    res = await conn.execute(update(_ac).where(_ac.c.id == call_id, _ac.c.agent_id == agent_id,
                                               _ac.c.state.in_(BEFORE_CALL), _ac.c.call_at.is_(None))
                             .values(state=REJECTED, done_at=now))
    if row is None or res.rowcount != 1:
        return None
    to = ContactState.SKIPPED if row.on_reject == "skip" else ContactState.REJECTED_BY_OPERATOR
    await _move_contact(conn, row.membership_id, to.value,
                        (ContactState.OPERATOR_ASSIGNED.value, ContactState.BCW.value), now,
                        claimed_by=None, claimed_at=None)
    return to.value


async def due_to_call(conn: AsyncConnection, agent_ids: list[int], now: dt.datetime) -> list:
    """Offers whose call should start now: the agent clicked Call, or the countdown ran out."""
    if not agent_ids:
        return []
    return (await conn.execute(select(_ac).where(
        _ac.c.agent_id.in_(agent_ids), _ac.c.state == BCW,
        (_ac.c.call_at.is_not(None)) | and_(_ac.c.bcw_until.is_not(None), _ac.c.bcw_until <= now)))).all()


async def to_dialing(conn: AsyncConnection, call_id: int, membership_id: int, now: dt.datetime) -> bool:
    """bcw -> calling (the click or the countdown, taken once); contact -> dialing."""
    res = await conn.execute(update(_ac).where(_ac.c.id == call_id, _ac.c.state == BCW)
                             .values(state=CALLING, call_at=func.coalesce(_ac.c.call_at, literal(now, _ac.c.call_at.type))))
    if res.rowcount != 1:
        return False
    await _move_contact(conn, membership_id, ContactState.DIALING.value,
                        (ContactState.BCW.value, ContactState.OPERATOR_ASSIGNED.value), now)
    return True


async def set_attempt(conn: AsyncConnection, call_id: int, attempt_id: str) -> None:
    """The call's attempt, committed before its Originate."""
    await conn.execute(update(_ac).where(_ac.c.id == call_id).values(attempt_id=attempt_id))


async def call_failed(conn: AsyncConnection, attempt_id: str, now: dt.datetime) -> None:
    """The preview call never reached the person (busy, no answer, ...): nothing to wrap up."""
    await conn.execute(update(_ac).where(_ac.c.attempt_id == attempt_id, _ac.c.state == CALLING)
                       .values(state=DONE, ended_at=now, done_at=now))


# --- calls the agent takes ---------------------------------------------------------------------------

async def connected(conn: AsyncConnection, attempt_id: str, interface: str, now: dt.datetime) -> bool:
    """AgentConnect (or the preview call answered): the person is with the agent at ``interface``.
    A queue call gets its row here; a second report changes nothing."""
    agent = (await conn.execute(select(_ag.c.id).where(_ag.c.interface == interface))).first()
    if agent is None:
        return False
    res = await conn.execute(update(_ac).where(_ac.c.attempt_id == attempt_id, _ac.c.state == CALLING)
                             .values(state=CONNECTED, connected_at=now))
    if res.rowcount:
        return True
    if (await conn.execute(select(_ac.c.id).where(_ac.c.attempt_id == attempt_id))).first() is not None:
        return False
    att = (await conn.execute(select(_a.c.campaign_id, _a.c.contact_id, _a.c.membership_id)
                              .where(_a.c.id == attempt_id))).first()
    if att is None:
        return False
    await conn.execute(_ac.insert().values(agent_id=agent.id, campaign_id=att.campaign_id, contact_id=att.contact_id,
                                           membership_id=att.membership_id, attempt_id=attempt_id, kind="queue",
                                           state=CONNECTED, offered_at=now, connected_at=now))
    return True


async def completed(conn: AsyncConnection, attempt_id: str, now: dt.datetime) -> bool:
    """The call ended (AgentComplete, or the preview call's hang-up): after-call work, with the
    campaign's countdown; straight to done when the agent disposed during the call."""
    row = (await conn.execute(select(_ac.c.id, _ac.c.disposition, _c.c.acw_seconds)
                              .join(_c, _c.c.id == _ac.c.campaign_id)
                              .where(_ac.c.attempt_id == attempt_id, _ac.c.state == CONNECTED))).first()
    if row is None:
        return False
    values = (dict(state=DONE, done_at=now) if row.disposition else
              dict(state=ACW, acw_until=now + dt.timedelta(seconds=max(0, row.acw_seconds))))
    res = await conn.execute(update(_ac).where(_ac.c.id == row.id, _ac.c.state == CONNECTED)
                             .values(ended_at=now, **values))
    return res.rowcount == 1


async def settle_acw(conn: AsyncConnection, agent_ids: list[int], now: dt.datetime) -> None:
    """After-call work as the contact shows it: ``acw`` once the call's attempt is final (the retry
    rule has moved it to done or retry_scheduled: that state is kept under acw); back to it when
    the countdown runs out without a disposition."""
    if not agent_ids:
        return
    rows = (await conn.execute(select(_ac.c.id, _ac.c.membership_id, _ac.c.attempt_id, _ac.c.acw_until,
                                      _ac.c.contact_state_before)
                               .where(_ac.c.agent_id.in_(agent_ids), _ac.c.state == ACW))).all()
    for r in rows:
        if r.contact_state_before is None and r.membership_id is not None:
            cc = (await conn.execute(select(_cc.c.state).where(
                _cc.c.id == r.membership_id, _cc.c.last_attempt_id == r.attempt_id))).first()
            if cc is not None and cc.state in SETTLED and await _move_contact(
                    conn, r.membership_id, ContactState.ACW.value, (cc.state,), now):
                await conn.execute(update(_ac).where(_ac.c.id == r.id).values(contact_state_before=cc.state))
        if r.acw_until is not None and r.acw_until <= now:
            await _end_acw(conn, r.id, now)


async def _end_acw(conn: AsyncConnection, call_id: int, now: dt.datetime) -> None:
    row = (await conn.execute(select(_ac.c.membership_id, _ac.c.contact_state_before)
                              .where(_ac.c.id == call_id))).first()
    res = await conn.execute(update(_ac).where(_ac.c.id == call_id, _ac.c.state.in_((CONNECTED, ACW)))
                             .values(state=DONE, done_at=now))
    if res.rowcount and row.contact_state_before:
        await _move_contact(conn, row.membership_id, row.contact_state_before, (ContactState.ACW.value,), now)


# --- the agent's disposition -------------------------------------------------------------------------

async def dispose(conn: AsyncConnection, attempt_id: str, choice: Disposition, callback_at: dt.datetime | None,
                  *, by: str, now: dt.datetime, agent_id: int | None = None, note: str | None = None) -> bool:
    """The agent's disposition of a call they took, from the console or keyed on the phone: the first
    one wins (False: one was given already). It replaces a key the person pressed in the IVR
    (agi.dispositions); the contact leaves after-call work and the retry rule runs again.

    ``agent_id`` (the console) limits it to that agent's call; AdminError for a choice the rules refuse."""
    guard = [_ac.c.attempt_id == attempt_id, _ac.c.disposition.is_(None), _ac.c.state.in_((CONNECTED, ACW, DONE))]
    if agent_id is not None:
        guard.append(_ac.c.agent_id == agent_id)
    row = (await conn.execute(select(_ac.c.id, _ac.c.state).where(_ac.c.attempt_id == attempt_id))).first()
    if row is None and agent_id is None:  # a call no console saw: the phone's word as before
        await write_disposition(conn, attempt_id, choice, callback_at, now=now)
        return True
    res = await conn.execute(update(_ac).where(*guard).values(
        disposition=choice.value, callback_at=callback_at, note=(note or None), disposed_by=by, disposed_at=now))
    if res.rowcount != 1:
        return False
    if row.state == ACW:
        await _end_acw(conn, row.id, now)
    await write_disposition(conn, attempt_id, choice, callback_at, now=now)
    return True


async def attempt_of_call(conn: AsyncConnection, agent_id: int, call_id: int) -> str | None:
    """The attempt of one of this agent's calls (None for another agent's, or an offer)."""
    return (await conn.execute(select(_ac.c.attempt_id).where(_ac.c.id == call_id,
                                                               _ac.c.agent_id == agent_id))).scalar()



async def busy_agents(conn: AsyncConnection, agent_ids: list[int]) -> set[int]:
    """Those of the agents with a call or offer open (no new offer for them)."""
    if not agent_ids:
        return set()
    return set((await conn.execute(select(_ac.c.agent_id).where(
        _ac.c.agent_id.in_(agent_ids), _ac.c.state.in_(OPEN)))).scalars())


async def next_rejected(conn: AsyncConnection, campaign_id: int, agent_id: int):
    """A contact another agent refused, waiting for one who has not (membership id, contact id)."""
    refused_here = select(_ac.c.id).where(_ac.c.membership_id == _cc.c.id, _ac.c.agent_id == agent_id,
                                          _ac.c.state == REJECTED).exists()
    return (await conn.execute(select(_cc.c.id, _cc.c.contact_id).where(
        _cc.c.campaign_id == campaign_id, _cc.c.state == ContactState.REJECTED_BY_OPERATOR.value, ~refused_here)
        .order_by(_cc.c.id).limit(1))).first()


async def close_offer(conn: AsyncConnection, call_id: int, now: dt.datetime) -> None:
    """An offer that was not dialed after all (a pre-dial result, outside the calling window)."""
    await conn.execute(update(_ac).where(_ac.c.id == call_id, _ac.c.state.in_(BEFORE_CALL + (CALLING,)))
                       .values(state=DONE, done_at=now))
