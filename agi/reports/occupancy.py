"""Agent occupancy: the share of the agents' logged-in time spent talking or in after-call work,
from the agent time the originators store per hour (``campaign_agent_time``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import CampaignAgentTime, Dialer


async def agent_occupancy(
    conn: AsyncConnection, campaign_id: int, since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> float | None:
    """Percent of the agents' logged-in time spent talking or in after-call work while the
    campaign was worked, over the hours overlapping [since, until) (default: all); None when
    no agent was logged in."""
    busy, logged = await agent_seconds(conn, campaign_id, since, until)
    if not logged:
        return None
    return 100.0 * busy / logged


async def agent_seconds(
    conn: AsyncConnection, campaign_id: int, since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[float, float]:
    """(busy, logged-in) agent-seconds of the campaign's agents, each agent counted once.

    The originators store what each one measured, per hour (store.add_agent_time). Dialers
    on one Asterisk box (same AMI host and port) poll the same queue and see the same
    agents: per hour only the larger of their figures counts (max of busy, max of logged:
    busy never exceeds logged, so neither does the ratio). Dialers on different boxes have
    different agents: their figures add up.
    """
    at, d = CampaignAgentTime.__table__, Dialer.__table__
    q = (
        select(func.max(at.c.busy_agent_seconds).label("busy"),
               func.max(at.c.logged_agent_seconds).label("logged"))
        .select_from(at.join(d, d.c.id == at.c.dialer_id))
        .where(at.c.campaign_id == campaign_id)
        .group_by(at.c.hour, d.c.ami_host, d.c.ami_port)
    )
    if since is not None:
        q = q.where(at.c.hour > since - dt.timedelta(hours=1))
    if until is not None:
        q = q.where(at.c.hour < until)
    per_box = q.subquery()
    busy, logged = (await conn.execute(select(func.sum(per_box.c.busy), func.sum(per_box.c.logged)))).one()
    return float(busy or 0.0), float(logged or 0.0)
