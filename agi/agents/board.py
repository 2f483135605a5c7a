"""The supervisor board's figures: live counts, agents with their state and time in it, campaigns with
state and drop rate against the cap.

``live_figures`` stands in for the live-stats query module of ``dialer top`` (not merged yet): when it
is, the board takes its figures from there and this one function goes; the rest reads what only
the board shows (the console's agents).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.agents import desk
from agi.agents.roster import list_agents
from agi.db.drops import drop_counts
from agi.db.models import AgentCall, Attempt, Campaign, CampaignContact, DialerCampaign
from agi.outcomes import CampaignState, ContactState, Result, Routing
from agi.rules.lifecycle import overall_state

_a = Attempt.__table__
_ac = AgentCall.__table__
_c = Campaign.__table__
_cc = CampaignContact.__table__
_dc = DialerCampaign.__table__

# what an agent is doing, from their open call (else their applied state)
CALL_STATES = {desk.OFFERED: "offered", desk.BCW: "bcw", desk.CALLING: "calling", desk.CONNECTED: "on_call",
               desk.ACW: "acw"}


async def live_figures(conn: AsyncConnection, now: dt.datetime) -> dict[str, int]:
    """Calls in progress, people waiting for an agent, and the last hour's attempts, answers and drops."""
    hour_ago = now - dt.timedelta(hours=1)
    in_progress = (await conn.execute(select(func.count()).where(
        _a.c.result.is_(None), _a.c.dialer.is_not(None)))).scalar_one()
    waiting = (await conn.execute(select(func.count()).where(
        _cc.c.state == ContactState.WAITING_AGENT.value))).scalar_one()
    row = (await conn.execute(select(
        func.count(), func.count().filter(_a.c.result == Result.LIVE_ANSWER.value),
        func.count().filter(_a.c.routing == Routing.DROPPED.value))
        .where(_a.c.ended_at >= hour_ago, _a.c.result.is_not(None)))).one()
    return {"calls_in_progress": int(in_progress), "waiting_for_agent": int(waiting),
            "attempts_last_hour": int(row[0]), "live_answers_last_hour": int(row[1]),
            "dropped_last_hour": int(row[2])}


@dataclass(frozen=True)
class AgentLine:
    user: str
    interface: str
    state: str  # logged_out | ready | paused | offered | bcw | calling | on_call | acw
    since: dt.datetime | None
    reason: str | None


async def agent_lines(conn: AsyncConnection) -> list[AgentLine]:
    out = []
    for agent in await list_agents(conn):
        call = await desk.open_call(conn, agent.id)
        if call is not None:
            since = call.connected_at if call.state == desk.CONNECTED else (
                call.ended_at if call.state == desk.ACW else call.offered_at)
            out.append(AgentLine(agent.user, agent.interface, CALL_STATES[call.state], since, None))
        else:
            out.append(AgentLine(agent.user, agent.interface, agent.state, agent.state_since, agent.pause_reason))
    return out


@dataclass(frozen=True)
class CampaignLine:
    id: int
    name: str
    mode: str
    state: str
    dropped: int
    live: int
    drop_rate: float | None  # percent of live answers within the campaign's window
    drop_cap: float

    @property
    def over_cap(self) -> bool:
        return self.drop_rate is not None and self.drop_rate > self.drop_cap


async def campaign_lines(conn: AsyncConnection, now: dt.datetime) -> list[CampaignLine]:
    out = []
    for c in (await conn.execute(select(_c.c.id, _c.c.name, _c.c.mode, _c.c.state, _c.c.drop_cap_pct,
                                        _c.c.drop_window_hours).order_by(_c.c.name))).all():
        per_dialer = [CampaignState(s) for s in (await conn.execute(
            select(_dc.c.state).where(_dc.c.campaign_id == c.id))).scalars()]
        state = overall_state(per_dialer, CampaignState(c.state))
        dropped, live = await drop_counts(conn, c.id, now - dt.timedelta(hours=c.drop_window_hours))
        rate = round(100.0 * dropped / live, 1) if live else None
        out.append(CampaignLine(c.id, c.name, c.mode, state.value, dropped, live, rate, c.drop_cap_pct))
    return out
