"""What a campaign's own calls say about pacing it: the rates and durations ``dialer pacing
simulate`` feeds the pacing simulator, measured from its attempts (read-only queries).

- dial results as shares of the calls placed (live answers, machines and fax, busy, failures,
  no answer), counted over attempts dialed since a date;
- ring time of answered calls (``answered_at - originated_at``), the latest 5,000;
- talk time: the billed seconds (``talk_seconds``) of calls connected to an agent; they include
  the few seconds of detection and queueing before the agent, so talk is slightly over-stated;
- after-call work: the agents' busy time the originators store (talk + after-call work, see
  ``agi.reports.agent_seconds``) less that talk, per connected call; agents: their logged-in
  time per hour worked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.errors import AdminError
from agi.db.models import Attempt, Campaign, CampaignAgentTime
from agi.outcomes import DIAL_RESULTS, Result, Routing
from agi.reports import agent_seconds

_a = Attempt.__table__
_at = CampaignAgentTime.__table__

MACHINE_RESULTS = frozenset({Result.MACHINE_ANSWER, Result.FAX})
FAILED_RESULTS = frozenset({Result.REJECTED, Result.DISCONNECTED, Result.SERVICE_ERROR, Result.OTHER})
RING_SAMPLES = 5000


@dataclass(frozen=True)
class CampaignHistory:
    """A campaign's pacing settings and what its attempts since ``since`` measured."""

    campaign: str
    campaign_id: int
    mode: str
    has_agents: bool  # an agent queue is set (otherwise it dials broadcast)
    lines: int
    cps: float
    ratio: float
    ring_timeout: int
    drop_timeout: int
    drop_cap_pct: float
    drop_window_hours: int
    since: dt.datetime | None
    dials: int = 0  # attempts placed (a dial result)
    results: dict[str, int] = field(default_factory=dict)  # dial result code -> attempts
    connected: int = 0  # routing agent_connected
    dropped: int = 0  # routing dropped
    ring_times: tuple[float, ...] = ()  # sorted seconds from Originate to answer
    talk_mean: float | None = None  # seconds, calls connected to an agent
    acw_mean: float | None = None  # seconds of after-call work per connected call
    agents: float | None = None  # agents logged in, on average over the hours worked
    hours_worked: int = 0  # hours with an agent logged in

    def share(self, results: frozenset[Result] | set[Result]) -> float | None:
        """Share of the calls placed that ended as one of ``results``; None before any dial."""
        if not self.dials:
            return None
        return sum(self.results.get(r.value, 0) for r in results) / self.dials

    @property
    def person_rate(self) -> float | None:
        return self.share({Result.LIVE_ANSWER})

    @property
    def machine_rate(self) -> float | None:
        return self.share(MACHINE_RESULTS)

    @property
    def busy_rate(self) -> float | None:
        return self.share({Result.BUSY})

    @property
    def fail_rate(self) -> float | None:
        return self.share(FAILED_RESULTS)

    @property
    def no_answer_rate(self) -> float | None:
        return self.share({Result.NO_ANSWER})

    def ring_range(self, low: float = 0.1, high: float = 0.9) -> tuple[float, float] | None:
        """The ``low``..``high`` quantiles of the answered calls' ring time; None without any."""
        t = self.ring_times
        if not t:
            return None
        pick = lambda q: t[min(len(t) - 1, int(q * len(t)))]  # noqa: E731
        return pick(low), pick(high)


async def campaign_history(conn: AsyncConnection, ref: str | int, since: dt.datetime | None = None) -> CampaignHistory:
    """Read the campaign (by name or id) and measure its attempts dialed since ``since``."""
    c = Campaign.__table__
    text = str(ref).strip()
    row = (await conn.execute(select(c).where(c.c.name == text))).first()
    if row is None and text.isdigit():
        row = (await conn.execute(select(c).where(c.c.id == int(text)))).first()
    if row is None:
        raise AdminError(f"no campaign {text!r} (by name or id); see `dialer campaign list`")
    mine = [_a.c.campaign_id == row.id, _a.c.result.in_([r.value for r in DIAL_RESULTS])]
    if since is not None:
        mine.append(_a.c.queued_at >= since)
    groups = (await conn.execute(
        select(_a.c.result, _a.c.routing, func.count()).where(*mine).group_by(_a.c.result, _a.c.routing)
    )).all()
    results: dict[str, int] = {}
    routed = {Routing.AGENT_CONNECTED.value: 0, Routing.DROPPED.value: 0}
    for result, routing, n in groups:
        results[result] = results.get(result, 0) + n
        if routing in routed:
            routed[routing] += n
    rings = (await conn.execute(
        select(_a.c.originated_at, _a.c.answered_at)
        .where(*mine, _a.c.answered_at.is_not(None), _a.c.originated_at.is_not(None))
        .order_by(_a.c.answered_at.desc()).limit(RING_SAMPLES)
    )).all()
    ring_times = tuple(sorted(max(0.0, (ans - orig).total_seconds()) for orig, ans in rings))
    connected = [*mine, _a.c.routing == Routing.AGENT_CONNECTED.value, _a.c.talk_seconds.is_not(None)]
    talk_n, talk_sum = (await conn.execute(select(func.count(), func.sum(_a.c.talk_seconds)).where(*connected))).one()
    talk_mean = float(talk_sum) / talk_n if talk_n else None
    busy, logged = await agent_seconds(conn, row.id, since)
    hour_filter = [_at.c.campaign_id == row.id, _at.c.logged_agent_seconds > 0]
    if since is not None:
        hour_filter.append(_at.c.hour > since - dt.timedelta(hours=1))
    hours = (await conn.execute(select(func.count(func.distinct(_at.c.hour))).where(*hour_filter))).scalar_one()
    acw_mean = None
    if busy and talk_n:
        acw_mean = max(0.0, busy - float(talk_sum)) / talk_n
    return CampaignHistory(
        campaign=row.name, campaign_id=row.id, mode=row.mode, has_agents=bool(row.queue_name),
        lines=row.lines, cps=row.cps, ratio=row.pacing_ratio, ring_timeout=row.ring_timeout,
        drop_timeout=row.drop_timeout, drop_cap_pct=row.drop_cap_pct, drop_window_hours=row.drop_window_hours,
        since=since, dials=sum(results.values()), results=results,
        connected=routed[Routing.AGENT_CONNECTED.value], dropped=routed[Routing.DROPPED.value],
        ring_times=ring_times, talk_mean=talk_mean, acw_mean=acw_mean,
        agents=logged / (hours * 3600.0) if hours else None, hours_worked=hours,
    )
