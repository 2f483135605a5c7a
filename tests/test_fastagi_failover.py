"""FastAGI failover: the dialplan names two servers (``__DIALER_AGI=a&b``); the first dies
mid-campaign; calls go on through the second, nothing is lost, and a call counts as dropped only
if a person was really left unserved (their flow was cut by the death), never for the failover.

The simulator runs dialplan/dialer.conf itself (CUT/FIELDQTY, the retry steps, the h extension)."""

from __future__ import annotations

import pytest

import asyncio
import datetime as dt
import signal

from sqlalchemy import func, select, update

from agi.ami.client import AMIClient
from agi.db.models import Attempt, Campaign, CampaignContact
from agi.local import OPEN_STATES, LocalStack
from agi.originator.dialer import AMI_EVENTS, Originator
from agi.outcomes import Result, Routing
from agi.sim.scenarios import ScenarioPlan
from agi.sim.simulator import Simulator
from db_seed import seed_campaign
from test_agi_presence import _beats, _free_port, _spawn_serve, start_and_assign
from test_originator_e2e import truth
from tests.waiting import until

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

CONTACTS = 80


def played_drop_message(rec) -> bool:
    """The drop message played (a Playback run, not an ExecIf whose condition was false)."""
    return any(step.startswith(("Playback(acme/", "ExecIf(1?Playback(acme/")) for step in rec.dialplan)


async def _count(engine, *where) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(Attempt.__table__).where(*where))).scalar_one()


async def _campaign(engine, contacts: int) -> int:
    async with engine.begin() as conn:
        campaign_id, _ = await seed_campaign(conn, contacts, first_number=2025554000, max_attempts=1)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
            window_start=dt.time(0, 0), window_end=dt.time(0, 0), lines=10, cps=20,
            drop_message="acme/sorry-we-will-call-back"))
    return campaign_id


async def test_the_first_fastagi_server_dies_calls_go_on_through_the_second(db_engine):
    a = Attempt.__table__
    campaign_id = await _campaign(db_engine, CONTACTS)
    async with LocalStack(db_engine, plan=ScenarioPlan.mix(seed=5), speed=100.0, lines=10, cps=20,
                          agi_servers=2) as stack:
        first, second = (f"127.0.0.1:{s.port}" for s in stack.servers)
        await stack.assign(campaign_id)
        stack.start()
        while await _count(db_engine, a.c.result.is_not(None)) < 20:
            await asyncio.sleep(0.05)
        finished_before = await _count(db_engine, a.c.result.is_not(None))
        await stack.kill_agi_server(0)
        # the answered calls not finished when it died: the flows it cut are among them
        async with db_engine.connect() as conn:
            in_flow = set((await conn.execute(select(a.c.id).where(
                a.c.answered_at.is_not(None), a.c.result.is_(None)))).scalars())
        await stack.settle(campaign_id, timeout=120)
        record = list(stack.sim.record)
    rows = await check_failover(db_engine, campaign_id, record, CONTACTS, (first, second), in_flow,
                                went_on=len(record) - finished_before >= 30)
    assert {Result(r.result) for r in rows.values()} >= {Result.LIVE_ANSWER, Result.BUSY}


async def check_failover(engine, campaign_id: int, record, contacts: int, servers: tuple[str, str],
                         in_flow: set[str], *, went_on: bool) -> dict:
    """What a failover must leave, checked against the simulator's ``record``: returns the attempts."""
    a = Attempt.__table__
    first, second = servers
    async with engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(a).where(a.c.campaign_id == campaign_id))).all()}
    assert all(r.result is not None for r in rows.values())
    # one attempt per dial, none dialed twice (a service error's retry is a dial of its own)
    assert len(record) == len({rec.channel_id for rec in record}) == len(rows)
    assert len({r.membership_id for r in rows.values()}) == contacts
    assert went_on  # the calls went on after the death, answered ones served by the second server
    tried = [(f"AGI(agi://{first}/outbound" in " ".join(rec.dialplan),
              f"AGI(agi://{second}/outbound" in " ".join(rec.dialplan)) for rec in record]
    assert (True, True) in tried  # the first refused, the second took the call: the failover ran
    assert (True, False) in tried  # before the death the first served alone
    # no result lost: each as the simulator says it happened
    wrong = [(rec.scenario, truth(rec).value, rows[rec.channel_id].result, rows[rec.channel_id].detail)
             for rec in record if truth(rec).value != rows[rec.channel_id].result]
    assert not wrong, wrong
    # dropped only where a person's flow was cut by the death; the drop message never played:
    # the failover reached the second server every time
    dropped = {i for i, r in rows.items() if r.routing == Routing.DROPPED.value}
    assert dropped <= in_flow, (dropped - in_flow, [rows[i].detail for i in dropped - in_flow])
    assert not [rec.dialplan for rec in record if played_drop_message(rec)]
    return rows


async def test_a_dialer_serve_process_killed_with_sigkill_mid_campaign_the_calls_go_on_through_the_other(db_engine):
    """The same with two real `dialer serve` processes, the first killed with SIGKILL (no goodbye:
    its sockets reset by the kernel, its heartbeat just stops) while calls are in its flows."""
    a, cc = Attempt.__table__, CampaignContact.__table__
    url = db_engine.url.render_as_string(hide_password=False)
    contacts = 60
    campaign_id = await _campaign(db_engine, contacts)
    first, second = (f"127.0.0.1:{_free_port()}" for _ in range(2))
    serves = [await _spawn_serve(url, first), await _spawn_serve(url, second)]
    sim = Simulator(speed=20.0, plan=ScenarioPlan.mix(seed=5), ami_port=0, ami_read=LocalStack.AMI_READ)
    await sim.start()
    ami = AMIClient("127.0.0.1", sim.ami_port, "dialer", "secret", action_timeout=5.0, backoff=(0.1, 2.0),
                    events=AMI_EVENTS)
    await ami.connect()
    orig = Originator(db_engine, ami, "box", agi_address=f"{first},{second}", clock=sim.clock.now, tick=0.05,
                      lines=10, cps=20, dial_template="PJSIP/{number}@trunk")
    stop = asyncio.Event()
    task = None
    try:
        for address in (first, second):
            await until(lambda address=address: _beats(db_engine, address), 20, f"{address}'s first heartbeat")
        await start_and_assign(db_engine, orig, campaign_id)
        task = asyncio.create_task(orig.run(stop, drain_deadline=30.0))

        async def finished(n):
            return await _count(db_engine, a.c.campaign_id == campaign_id, a.c.result.is_not(None)) >= n

        async def in_flow_now():  # answered, not finished: people in the first server's flows among them
            async with db_engine.connect() as conn:
                return set((await conn.execute(select(a.c.id).where(
                    a.c.campaign_id == campaign_id, a.c.answered_at.is_not(None), a.c.result.is_(None)))).scalars())

        await until(lambda: finished(15), 60, "15 calls finished through the first server")
        in_flow: set[str] = set()

        async def people_in_flows():
            in_flow.update(await in_flow_now())
            return bool(in_flow)

        await until(people_in_flows, 30, "people in the first server's flows")
        serves[0].send_signal(signal.SIGKILL)  # with them in it
        await serves[0].wait()
        in_flow |= await in_flow_now()
        finished_before = await _count(db_engine, a.c.campaign_id == campaign_id, a.c.result.is_not(None))

        async def settled():
            async with db_engine.connect() as conn:
                still = (await conn.execute(select(func.count()).where(
                    cc.c.campaign_id == campaign_id, cc.c.state.in_(OPEN_STATES)))).scalar_one()
            return still == 0 and not orig.tracker.calls

        await until(settled, 120, "every contact dialed and settled")
        stop.set()
        await asyncio.wait_for(task, 40)
    finally:
        stop.set()
        if task is not None and not task.done():
            task.cancel()
        for serve in serves:
            if serve.returncode is None:
                serve.send_signal(signal.SIGTERM)
                await asyncio.wait_for(serve.wait(), 30)
        await ami.close()
        await sim.stop()
    record = list(sim.record)
    await check_failover(db_engine, campaign_id, record, contacts, (first, second), in_flow,
                         went_on=len(record) - finished_before >= 20)
