"""The whole product on one machine: Asterisk simulator + FastAGI server + originator, on loopback.

``dialer demo`` and the end-to-end tests use it; ``dialer run`` is the same minus the simulator.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.ami.client import AMIClient
from agi.db.models import Campaign, CampaignContact, DialerCampaign
from agi.fastagi import FastAGIServer
from agi.flows import build_router
from agi.originator.clock import Clock
from agi.originator.dialer import AMI_EVENTS, Originator
from agi.outcomes import CampaignState, ContactState
from agi.presence import AgiPresence
from agi.settings import Settings
from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator

log = logging.getLogger("agi.local")

OPEN_STATES = (ContactState.PENDING.value, ContactState.DIALING.value, ContactState.IN_CALL.value,
               ContactState.WAITING_AGENT.value)


class LocalStack:
    AMI_READ = "system,call,agent"  # the AMI user's read classes: dialplan/README.md's least-privilege user

    def __init__(self, engine: AsyncEngine, *, plan: ScenarioPlan, queues: dict | None = None,
                 speed: float = 100.0, dialer: str = "local", lines: int = 30, cps: float = 20.0,
                 ami_secret: str = "secret", tick: float = 0.05,
                 dial_template: str = "PJSIP/{number}@trunk", agi_servers: int = 1) -> None:
        self.engine = engine
        self.agi_servers = agi_servers  # FastAGI servers, tried in order by the dialplan (failover)
        self.plan, self.queues, self.speed = plan, queues or {}, speed
        self.dialer_name, self.lines, self.cps = dialer, lines, cps
        self.ami_secret = ami_secret
        self.tick = tick
        self.dial_template = dial_template  # "Local/{number}@callee": two legs per call, as the traces
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> LocalStack:
        self.sim = Simulator(speed=self.speed, plan=self.plan, queues=self.queues, ami_port=0,
                             ami_secret=self.ami_secret, ami_read=self.AMI_READ)
        # the flows and the originator write times from one clock: the simulator's
        router = build_router(Settings(), self.engine,
                              clock=lambda: dt.datetime.fromtimestamp(self.sim.clock.now(), dt.timezone.utc))
        self.router = router
        self.servers, self.presences = [], []
        for _ in range(self.agi_servers):  # one router (one writer, one pool) behind them all
            server = FastAGIServer(router, port=0, max_sessions=5000)
            await server.start()
            presence = AgiPresence(self.engine, f"127.0.0.1:{server.port}", lambda s=server: s.sessions)
            await presence.start()
            self.servers.append(server)
            self.presences.append(presence)
        self.server, self.presence = self.servers[0], self.presences[0]
        self.sim.agi_port = self.server.port
        await self.sim.start()
        self.ami = AMIClient("127.0.0.1", self.sim.ami_port, "dialer", self.ami_secret,
                             action_timeout=5.0, ping_interval=2.0, backoff=(0.1, 2.0), events=AMI_EVENTS)
        await self.ami.connect()
        self.originator = Originator(
            self.engine, self.ami, self.dialer_name,
            agi_address=",".join(f"127.0.0.1:{server.port}" for server in self.servers),
            clock=Clock(now=self.sim.clock.now), tick=self.tick, lines=self.lines, cps=self.cps,
            dial_template=self.dial_template)
        await self.originator.start()
        return self

    async def assign(self, campaign_id: int, lines: int | None = None) -> None:
        """Assign the campaign to this dialer and start it (as `campaign assign` + `campaign start`)."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(DialerCampaign.__table__).values(
                dialer_id=self.originator.dialer.id, campaign_id=campaign_id, lines=lines,
                state=CampaignState.SCHEDULED.value))
            await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
                               .values(state=CampaignState.RUNNING.value))

    async def kill_agi_server(self, i: int) -> None:
        """FastAGI server ``i`` dies: its port refuses, its sessions are cut, it beats no more."""
        server, presence = self.servers[i], self.presences[i]
        presence.abandon()
        if server._server is not None:
            server._server.close()
        server.abort_sessions()
        await asyncio.sleep(0)

    def start(self) -> None:
        self._task = asyncio.create_task(self.originator.run(self._stop, drain_deadline=30.0))

    async def open_contacts(self, campaign_id: int) -> int:
        cc = CampaignContact.__table__
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.count()).where(
                cc.c.campaign_id == campaign_id, cc.c.state.in_(OPEN_STATES)))).scalar_one()

    async def settle(self, campaign_id: int, *, timeout: float = 120.0, retry_horizon_s: float = 0.0,
                     progress: Callable[[int], None] | None = None) -> None:
        """Wait until no contact is pending or in a call, no call is up, and no retry falls due
        within ``retry_horizon_s`` simulated seconds."""
        cc = CampaignContact.__table__
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            horizon = dt.datetime.fromtimestamp(self.sim.clock.now() + retry_horizon_s, dt.timezone.utc)
            due_soon = and_(cc.c.state == ContactState.RETRY_SCHEDULED.value, cc.c.next_attempt_at <= horizon)
            # one statement, one snapshot: read apart, a retry claimed between the two reads (no
            # longer due, not yet open) looked settled, and its call went out after the "end"
            async with self.engine.connect() as conn:
                open_, due = (await conn.execute(select(
                    func.count().filter(cc.c.state.in_(OPEN_STATES)), func.count().filter(due_soon))
                    .where(cc.c.campaign_id == campaign_id))).one()
            if progress:
                progress(open_)
            if open_ == 0 and not due and not self.originator.tracker.calls:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"campaign {campaign_id} did not settle in {timeout:g} s "
                           f"({await self.open_contacts(campaign_id)} contacts still open)")

    async def __aexit__(self, *exc) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 40)
            except (TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                log.exception("originator did not stop cleanly")
        await self.ami.close()
        await self.sim.stop()
        for presence, server in zip(self.presences, self.servers):
            await presence.stop()
            await server.shutdown(5.0)
        await self.router.aclose()  # the flows' last final writes land, the writer's connections go back
