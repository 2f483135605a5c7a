"""The supervisor board's figures: the live views' snapshot (agi.live, the one query module of
`dialer top`, `dialer status` and the metrics) summed for the board, plus what only the board
shows: the console's agents with their state and time in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from agi.agents import desk
from agi.agents.roster import list_agents
from agi.live import CampaignView, Snapshot
from agi.outcomes import ContactState

# what an agent is doing, from their open call (else their applied state)
CALL_STATES = {desk.OFFERED: "offered", desk.BCW: "bcw", desk.CALLING: "calling", desk.CONNECTED: "on_call",
               desk.ACW: "acw"}


def live_figures(snap: Snapshot) -> dict[str, int]:
    """The board's headline: calls up now, people waiting for an agent, and the last hour's calls,
    persons answered and drops, over every campaign (the same figures `dialer top` shows per campaign)."""
    cs = snap.campaigns
    return {"calls_in_progress": sum(c.in_progress or 0 for c in cs),
            "waiting_for_agent": sum(c.contacts.get(ContactState.WAITING_AGENT.value, 0) for c in cs),
            "calls_last_hour": sum(c.attempts_last_hour for c in cs),
            "answered_last_hour": sum(c.drops_hour.live for c in cs),
            "dropped_last_hour": sum(c.drops_hour.dropped for c in cs),
            "lines_in_use": sum(o.lines_in_use for o in snap.originators if o.beating)}


def services(snap: Snapshot) -> dict[str, str]:
    """Originators beating and FastAGI servers alive, as `dialer status` counts them."""
    return {"originators": f"{sum(o.beating for o in snap.originators)} of {len(snap.originators)}",
            "fastagi_servers": f"{sum(s.alive for s in snap.agi_servers)} of {len(snap.agi_servers)}"}


@dataclass(frozen=True)
class CampaignLine:
    """One campaign row: `dialer top`'s view of it, its dialers' figures summed."""

    view: CampaignView
    reason: str
    lines_in_use: int
    lines_allowed: int
    ringing: int
    in_ivr: int
    waiting: int

    @property
    def id(self) -> int:
        return self.view.id

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def drop_rate(self) -> float | None:
        pct = self.view.drops_window.pct
        return None if pct is None else round(pct, 1)

    @property
    def over_cap(self) -> bool:
        return self.view.over_cap(self.view.drops_window)


def campaign_lines(snap: Snapshot) -> list[CampaignLine]:
    out = []
    for c in snap.campaigns:
        figures = [d.figures for d in c.dialers if d.figures is not None]
        reasons = sorted({f"{d.dialer}: {d.reason}" if len(c.dialers) > 1 else d.reason
                          for d in c.dialers if d.reason})
        out.append(CampaignLine(c, "; ".join(reasons), sum(f.lines_in_use for f in figures),
                                sum(f.lines_allowed for f in figures), sum(f.ringing for f in figures),
                                sum(f.in_ivr + f.detecting for f in figures), sum(f.waiting for f in figures)))
    return out


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
