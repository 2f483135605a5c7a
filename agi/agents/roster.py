"""Who is an agent and what they asked for: a user's phone (Asterisk interface, e.g. PJSIP/agent1),
the campaigns they work, the dialer whose originator puts them in the queues; the console's request
(ready, paused with a reason, logged out) and the state the originator applied over AMI.

A request is a number (``wanted_seq``) the originator applies once (``applied_seq``): asking twice
queues two requests, applying one twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.admin.campaigns import find_campaign
from agi.auth.roles import Role
from agi.auth.users import get_user
from agi.db.models import Agent, Campaign, Dialer, User, utcnow
from agi.errors import AdminError

_ag = Agent.__table__
_u = User.__table__
_c = Campaign.__table__
_d = Dialer.__table__

READY, PAUSED, LOGGED_OUT = "ready", "paused", "logged_out"
AGENT_STATES = (READY, PAUSED, LOGGED_OUT)
# tech/resource of an Asterisk device: PJSIP/agent1, SIP/100, Local/agent1@agents/n
INTERFACE = re.compile(r"[A-Za-z0-9]+/[A-Za-z0-9_.@+/-]{1,110}")
PAUSE_REASONS = ("break", "lunch", "training", "meeting", "other")
PHONE_UNANSWERED = "phone_unanswered"  # the originator's own pause: the agent's phone rang out


@dataclass(frozen=True)
class AgentRow:
    id: int
    user: str
    interface: str
    dialer_id: int | None
    campaigns: tuple[int, ...]
    state: str
    state_since: dt.datetime | None
    pause_reason: str | None
    wanted: str
    wanted_reason: str | None
    wanted_seq: int
    applied_seq: int
    last_error: str | None

    @property
    def pending(self) -> bool:
        """The console asked for something the originator has not applied yet."""
        return self.wanted_seq > self.applied_seq


_COLUMNS = (_ag.c.id, _u.c.name.label("user"), _ag.c.interface, _ag.c.dialer_id, _ag.c.campaigns, _ag.c.state,
            _ag.c.state_since, _ag.c.pause_reason, _ag.c.wanted, _ag.c.wanted_reason, _ag.c.wanted_seq,
            _ag.c.applied_seq, _ag.c.last_error)
_SELECT = select(*_COLUMNS).join(_u, _u.c.id == _ag.c.user_id)


def _row(r) -> AgentRow:
    return AgentRow(r.id, r.user, r.interface, r.dialer_id, tuple(r.campaigns or ()), r.state, r.state_since,
                    r.pause_reason, r.wanted, r.wanted_reason, r.wanted_seq, r.applied_seq, r.last_error)


async def set_agent(conn: AsyncConnection, user: str, interface: str, campaigns: list[str],
                    dialer: str | None = None) -> dict:
    """Make (or change) user ``user`` an agent: their phone, campaigns and dialer."""
    owner = await get_user(conn, user)
    if owner.role != Role.AGENT.value:
        raise AdminError(f"user {owner.name!r} is {owner.role}: only an agent works the console's calls "
                         f"(`dialer users set {owner.name} --role agent`)")
    interface = interface.strip()
    if not INTERFACE.fullmatch(interface):
        raise AdminError(f"bad interface {interface!r}: give the agent's Asterisk device, e.g. PJSIP/agent1")
    ids = sorted({(await find_campaign(conn, ref, _c.c.id)).id for ref in campaigns if ref.strip()})
    dialer_id = None
    if dialer:
        row = (await conn.execute(select(_d.c.id).where(_d.c.name == dialer.strip()))).first()
        if row is None:
            raise AdminError(f"no dialer {dialer!r}; see `dialer dialers list`")
        dialer_id = row.id
    taken = (await conn.execute(select(_ag.c.user_id).where(_ag.c.interface == interface))).first()
    if taken is not None and taken.user_id != owner.id:
        raise AdminError(f"interface {interface} is another agent's phone already")
    values = dict(interface=interface, campaigns=ids, dialer_id=dialer_id)
    existing = (await conn.execute(select(_ag.c.id).where(_ag.c.user_id == owner.id))).first()
    if existing is None:
        await conn.execute(_ag.insert().values(user_id=owner.id, state=LOGGED_OUT, wanted=LOGGED_OUT, wanted_seq=0,
                                               applied_seq=0, **values))
    else:
        await conn.execute(update(_ag).where(_ag.c.id == existing.id).values(**values))
    return {"user": owner.name, "interface": interface, "campaigns": ids, "dialer": dialer}


async def list_agents(conn: AsyncConnection) -> list[AgentRow]:
    return [_row(r) for r in (await conn.execute(_SELECT.order_by(_u.c.name))).all()]


async def agent_of(conn: AsyncConnection, user: str) -> AgentRow | None:
    r = (await conn.execute(_SELECT.where(_u.c.name == user))).first()
    return None if r is None else _row(r)


async def agent_by_interface(conn: AsyncConnection, interface: str) -> AgentRow | None:
    r = (await conn.execute(_SELECT.where(_ag.c.interface == interface))).first()
    return None if r is None else _row(r)


async def agents_of_dialer(conn: AsyncConnection, dialer_id: int) -> list[AgentRow]:
    return [_row(r) for r in (await conn.execute(_SELECT.where(_ag.c.dialer_id == dialer_id))).all()]


async def request(conn: AsyncConnection, agent_id: int, wanted: str, reason: str | None = None) -> int:
    """The console asks to be ``wanted`` (ready, paused, logged_out); returns the request's number."""
    if wanted not in AGENT_STATES:
        raise ValueError(f"unknown agent state {wanted!r}: one of {', '.join(AGENT_STATES)}")
    if wanted == PAUSED and reason not in PAUSE_REASONS + (PHONE_UNANSWERED,):
        raise ValueError(f"a pause needs a reason: one of {', '.join(PAUSE_REASONS)}")
    await conn.execute(update(_ag).where(_ag.c.id == agent_id).values(
        wanted=wanted, wanted_reason=reason if wanted == PAUSED else None, wanted_seq=_ag.c.wanted_seq + 1))
    return (await conn.execute(select(_ag.c.wanted_seq).where(_ag.c.id == agent_id))).scalar_one()


async def applied(conn: AsyncConnection, agent: AgentRow, *, state: str, error: str | None,
                  now: dt.datetime | None = None) -> bool:
    """The originator applied request ``agent.wanted_seq``: the agent is ``state`` now (or still what
    they were, with ``error``). A request applied already changes nothing; False then."""
    now = now or utcnow()
    values: dict = dict(applied_seq=agent.wanted_seq, last_error=error)
    if error is None:
        values.update(state=state, pause_reason=agent.wanted_reason if state == PAUSED else None)
        if state != agent.state or agent.state_since is None:
            values["state_since"] = now
    res = await conn.execute(update(_ag).where(_ag.c.id == agent.id, _ag.c.applied_seq < agent.wanted_seq)
                             .values(**values))
    return res.rowcount == 1


async def campaign_queues(conn: AsyncConnection, campaign_ids: tuple[int, ...]) -> list[str]:
    """The agent queues of these campaigns (a preview campaign may have none)."""
    if not campaign_ids:
        return []
    rows = (await conn.execute(select(_c.c.queue_name).where(_c.c.id.in_(campaign_ids),
                                                             _c.c.queue_name.is_not(None)))).scalars()
    return sorted(set(rows))
