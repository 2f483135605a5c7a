"""The console's agents on this dialer's Asterisk: their requests applied over AMI, their calls recorded.

Each tick: an agent whose console asked for something new (agi.agents.roster) is added to the queues
of their campaigns (``QueueAdd``, a dynamic member named after the user; "Already there" is fine),
paused or unpaused with the reason (``QueuePause``), or removed when logging out (``QueueRemove``;
"Not there" is fine): the same request applied twice leaves Asterisk as once. ``AgentConnect`` puts
the person in front of the agent (the console's screen pop), ``AgentComplete`` starts after-call
work (agi.agents.desk). Times written for the console are wall-clock.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from agi.agents import desk, roster
from agi.ami.client import AMIClient
from agi.ami.errors import AMIActionError, AMIError
from agi.ids import attempt_id_from_uniqueid
from agi.originator.clock import Clock

log = logging.getLogger("agi.originator.agents")

# app_queue.c answers these when the member is already as asked: not an error for us
ALREADY = ("Already there", "Not there")


class AgentDesk:
    def __init__(self, engine: AsyncEngine, ami: AMIClient, clock: Clock, *, dialer_id: int, dialer_name: str) -> None:
        self.engine = engine
        self.ami = ami
        self.clock = clock
        self.dialer_id = dialer_id
        self.name = dialer_name
        self.agents: list[roster.AgentRow] = []  # this dialer's agents, as last read

    @property
    def agent_ids(self) -> list[int]:
        return [a.id for a in self.agents]

    async def tick(self) -> None:
        """Read this dialer's agents, apply what their consoles asked, settle after-call work."""
        async with self.engine.connect() as conn:
            self.agents = await roster.agents_of_dialer(conn, self.dialer_id)
        if self.ami.connected:
            for agent in self.agents:
                if agent.pending:
                    await self.apply(agent)
        if self.agents:  # no agents here (broadcast, AMD-only dialers): no transaction twice a second
            async with self.engine.begin() as conn:
                await desk.settle_acw(conn, self.agent_ids, self.clock.wall())

    async def apply(self, agent: roster.AgentRow) -> None:
        """One request, in every queue of the agent's campaigns; the outcome written back."""
        async with self.engine.connect() as conn:
            queues = await roster.campaign_queues(conn, agent.campaigns)
        error = None
        try:
            for queue in queues:
                if agent.wanted == roster.LOGGED_OUT:
                    await self._send({"Action": "QueueRemove", "Queue": queue, "Interface": agent.interface})
                else:
                    await self._join(queue, agent)
        except AMIError as exc:
            error = f"Asterisk refused it: {exc}"
            log.warning("dialer %s: agent %s (%s) %s: %s", self.name, agent.user, agent.interface, agent.wanted, exc)
        async with self.engine.begin() as conn:
            await roster.applied(conn, agent, state=agent.wanted, error=error, now=self.clock.wall())
        if error is None:
            log.info("dialer %s: agent %s (%s) is %s in %s", self.name, agent.user, agent.interface, agent.wanted,
                     ", ".join(queues) or "no queue")

    async def _join(self, queue: str, agent: roster.AgentRow) -> None:
        paused = agent.wanted == roster.PAUSED
        await self._send({"Action": "QueueAdd", "Queue": queue, "Interface": agent.interface,
                          "MemberName": agent.user, "Paused": "true" if paused else "false"})
        headers = {"Action": "QueuePause", "Queue": queue, "Interface": agent.interface,
                   "Paused": "true" if paused else "false"}
        if paused and agent.wanted_reason:
            headers["Reason"] = agent.wanted_reason
        await self._send(headers)

    async def _send(self, headers: dict) -> None:
        try:
            await self.ami.action(headers)
        except AMIActionError as exc:
            if not any(word in str(exc) for word in ALREADY):
                raise

    # --- AMI events ------------------------------------------------------------------------

    async def on_agent_connect(self, event: dict) -> None:
        """AgentConnect: the queue bridged a person to a member; a console agent's screen pop."""
        attempt_id = attempt_id_from_uniqueid(event.get("Uniqueid") or "")
        interface = event.get("Interface") or ""
        if not attempt_id or not any(a.interface == interface for a in self.agents):
            return
        async with self.engine.begin() as conn:
            await desk.connected(conn, attempt_id, interface, self.clock.wall())

    async def on_agent_complete(self, event: dict) -> None:
        """AgentComplete: the conversation ended; the agent's after-call work starts."""
        attempt_id = attempt_id_from_uniqueid(event.get("Uniqueid") or "")
        if not attempt_id or not any(a.interface == event.get("Interface") for a in self.agents):
            return
        async with self.engine.begin() as conn:
            await desk.completed(conn, attempt_id, self.clock.wall())
