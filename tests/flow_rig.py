"""One call at a time through the real flows: the database, a FastAGI server with the real flows,
the simulator and an AMI client, all on loopback (the flow tests' rig)."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from agi.ami.client import AMIClient
from agi.db import attempts as db
from agi.db.models import Attempt, CampaignContact
from agi.fastagi import FastAGIServer
from agi.flows import build_router
from agi.settings import Settings
from agi.sim.simulator import Simulator
from db_seed import T0

NUMBER = "+12025550131"


class Rig:
    def __init__(self, engine, plan, queues=None, *, speed: float = 40.0, dialplan=None):
        self.engine = engine
        self.router = build_router(Settings(), engine)
        self.server = FastAGIServer(self.router, port=0)
        self.plan, self.queues, self.speed, self.dialplan = plan, queues or {}, speed, dialplan

    async def __aenter__(self) -> "Rig":
        await self.server.start()
        self.sim = Simulator(agi_port=self.server.port, speed=self.speed, plan=self.plan, queues=self.queues,
                             ami_port=0, dialplan=self.dialplan)
        await self.sim.start()
        self.ami = AMIClient("127.0.0.1", self.sim.ami_port, "dialer", "secret")
        await self.ami.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ami.close()
        await self.sim.stop()
        await self.server.shutdown(2.0)
        await self.router.aclose()

    async def call(self, campaign_id: int, membership_id: int, number: str = NUMBER, **variables) -> str:
        """Start an attempt for the membership and Originate it as the originator does; its id."""
        async with self.engine.begin() as conn:
            contact_id = (await conn.execute(select(CampaignContact.__table__.c.contact_id).where(
                CampaignContact.__table__.c.id == membership_id))).scalar_one()
            attempt_id = await db.start_attempt(
                conn, membership_id, campaign_id=campaign_id, contact_id=contact_id,
                dialer="test", number=number, attempt_no=1, now=T0)
        res = await self.ami.originate(
            channel=f"PJSIP/{number}@trunk", context="dialer-outbound", exten="s",
            channel_id=attempt_id, caller_id='"Acme" <15550001111>',
            variables={"__ATTEMPT_ID": attempt_id, "__CAMPAIGN_ID": campaign_id, "CONTACT_ID": contact_id,
                       "__DIALER_AGI": f"127.0.0.1:{self.server.port}", **variables})
        assert res.success, res
        return attempt_id

    async def settled(self, attempt_id: str, timeout: float = 20.0):
        """The attempt once its result and the hangup flow's cause are written and the call is over."""
        t = Attempt.__table__
        async with asyncio.timeout(timeout):
            while True:
                async with self.engine.connect() as conn:
                    row = (await conn.execute(select(t).where(t.c.id == attempt_id))).one()
                rec = self.sim.record.get(attempt_id)
                if row.result is not None and row.hangup_cause is not None and rec and rec.done \
                        and not self.server.sessions:
                    return row
                await asyncio.sleep(0.05)
