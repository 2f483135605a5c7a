"""The call flows leave no ERROR in PostgreSQL's log: no write finds out by failing.

Every write reads what it needs in its own transaction and decides there, or its guards match
zero rows; none sends a statement meant to fail (which PostgreSQL logs, with the statement, as
an ERROR). Calls through the simulator and the real flows, then every write sequence of
tests/test_flow_writes.py, among them those that need what another writer did mid-call (a
retry policy edited, a choice or a result written by another process, a choice after the
result); then the lines the server logged meanwhile are read.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from agi.db.models import Attempt
from agi.outcomes import Disposition, Result, Routing
from agi.sim.queues import QueueConfig
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign
from test_flow_writes import SCENARIOS, play_scenario
from test_flows import Rig, set_queue

# a representative day: an agent, an opt-out, no key, a hang-up mid-message, a machine, a fax
CALLS = ["human_keypress", "human_wrong_key", "human", "human_hangs_up_during_message", "human_no_media",
         "machine", "fax"]
WRAP_UP = {"base": "human_keypress", "callee": {"keys": ["1@1.0/0"], "hangup_after_bridge": 1.0}}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_the_call_flows_leave_no_error_in_the_postgresql_log(db_engine, pg_server):
    logged_before = pg_server.log_path.stat().st_size
    first = 2025550600
    numbers = [f"+1{first + i}" for i in range(len(CALLS) + 1)]
    async with db_engine.begin() as conn:
        campaign_id, members = await seed_campaign(conn, len(numbers), name="day", first_number=first)
    await set_queue(db_engine, campaign_id, "sales")
    queue = QueueConfig("sales", agents=2, talk_seconds=(2.0, 3.0), acw_seconds=(1.0, 1.0),
                        dispositions={"3": 1.0}, wrapup_key_after=(0.5, 0.5), callback_hours=(2, 2))
    plan = ScenarioPlan.table({**dict(zip(numbers, CALLS)), numbers[-1]: WRAP_UP})
    async with Rig(db_engine, plan, {"sales": queue}) as rig:
        attempts = [await rig.call(campaign_id, m, n) for m, n in zip(members, numbers)]
        rows = await asyncio.gather(*(rig.settled(a, timeout=40) for a in attempts))
        async with asyncio.timeout(20):  # the agent keys a call-back in wrap-up after the person left
            while (await _attempt(db_engine, attempts[-1])).disposition != Disposition.CALL_BACK.value:
                await asyncio.sleep(0.05)
    assert [r.result for r in rows[-3:-1]] == [Result.MACHINE_ANSWER.value, Result.FAX.value]
    assert (rows[0].routing, rows[1].disposition) == (Routing.AGENT_CONNECTED.value, Disposition.OPT_OUT.value)
    for i, name in enumerate(SCENARIOS):
        await play_scenario(db_engine, name, 2025551700 + 10 * i)

    errors = [line for line in pg_server.log_since(logged_before).splitlines() if "ERROR:" in line]
    assert not errors, "\n".join(errors)


async def _attempt(engine, attempt_id: str):
    async with engine.connect() as conn:
        return (await conn.execute(select(Attempt.__table__).where(Attempt.__table__.c.id == attempt_id))).one()
