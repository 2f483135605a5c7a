"""The agent queues of the campaigns being worked, polled over AMI every tick (QueueSummary +
QueueStatus, agi.ami.queues), and the agent time measured from them stored every few seconds.

Each campaign's ``AgentWatch`` (agi.originator.agents) keeps the numbers; agents whose wrap-up
ended go to its pacing history.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.ami.client import AMIClient
from agi.ami.errors import AMIError
from agi.metrics import db_write
from agi.originator import store
from agi.originator.campaigns import CampaignRun
from agi.originator.clock import Clock
from agi.rules.lifecycle import WORKING_STATES

log = logging.getLogger("agi.originator.agents")

POLLED_STATES = WORKING_STATES  # agent queues polled while the campaign is worked


class AgentPoll:
    def __init__(self, engine: AsyncEngine, ami: AMIClient, clock: Clock, runs: dict[int, CampaignRun], *,
                 dialer_id: int, dialer_name: str) -> None:
        self.engine = engine
        self.ami = ami
        self.clock = clock
        self.runs = runs
        self.dialer_id = dialer_id
        self.name = dialer_name

    async def poll(self) -> None:
        """Each worked agent campaign's queue, once. Agent time is counted only for campaigns
        worked (running or paused for agents) between two successful polls; campaigns sharing a
        queue all see its snapshot."""
        worked = {r.id for r in self.runs.values() if r.row.queue_name and r.state in POLLED_STATES}
        connected = self.ami.connected
        for run in self.runs.values():
            if run.id not in worked or not connected:
                run.agents.unobserved()
        queues = {self.runs[i].row.queue_name for i in worked}
        if not queues or not connected:
            return
        now = self.clock.now()
        for queue in queues:
            await self._poll_queue(queue, worked, now)

    async def _poll_queue(self, queue: str, worked: set[int], now: float) -> None:
        sharing = [r for r in self.runs.values() if r.row.queue_name == queue]
        try:
            snapshot = await self.ami.queue_snapshot(queue)
        except AMIError as exc:
            log.debug("queue %s: %s", queue, exc)
            for run in sharing:
                run.agents.unobserved()
            return
        for run in sharing:
            for freed in run.agents.observe(snapshot, now, counted=run.id in worked):
                run.history.agent_freed(now, freed.talk_s, freed.acw_s)

    async def flush(self) -> None:
        """Add the agent time measured since the last flush to this dialer's rows (every few
        seconds and at stop).

        Stored per dialer, as each dialer measured it. Dialers sharing one Asterisk poll the
        same queue and see the same agents: the report, not this writer, counts those once
        (agi.reports.agent_occupancy takes the larger figure per hour and Asterisk box), so
        no dialer needs to know how many others are polling. A campaign dropped from this
        dialer loses what it had not flushed yet (a few seconds at most).
        """
        taken = {run.id: run.agents.time.take() for run in self.runs.values() if run.agents.time.pending}
        if not taken:
            return
        try:
            with db_write("agent_time"):
                async with self.engine.begin() as conn:
                    for campaign_id, increments in taken.items():
                        await store.add_agent_time(conn, campaign_id, self.dialer_id, increments)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("dialer %s: agent time not stored (%s); kept for the next flush", self.name, exc)
            for campaign_id, increments in taken.items():
                run = self.runs.get(campaign_id)
                if run is not None:
                    run.agents.time.give_back(increments)
