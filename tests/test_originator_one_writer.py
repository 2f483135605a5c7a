"""One writer for each fact of a call: the FastAGI flows write that a call was answered (and
its AMD verdict), the originator when its Originate went out. Both marking the same call
answered at the same moment had up to 16 backends waiting on each other's row locks (issue 15).

The database counts the statements that set an attempt's answered_at (a trigger): one per
answered call. The writes each side sends are also recorded as they pass its AttemptWriter
(they still run)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import select, text, update

from agi.db.models import Attempt, Campaign
from agi.local import LocalStack
from agi.sim.scenarios import ScenarioPlan
from db_seed import seed_campaign

ANSWER_FACTS = {"mark_answered"}  # answered_at, amd_status, amd_cause

# a row per UPDATE whose SET names answered_at, per attempt row it touched (changed or not)
COUNT_ANSWER_WRITES = {
    "postgresql": [
        "CREATE TABLE answer_writes (attempt_id text)",
        "CREATE FUNCTION log_answer_write() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO answer_writes VALUES (NEW.id); RETURN NEW; END $$",
        "CREATE TRIGGER answer_writes AFTER UPDATE OF answered_at ON attempts "
        "FOR EACH ROW EXECUTE FUNCTION log_answer_write()",
    ],
    "sqlite": [
        "CREATE TABLE answer_writes (attempt_id text)",
        "CREATE TRIGGER answer_writes AFTER UPDATE OF answered_at ON attempts "
        "BEGIN INSERT INTO answer_writes VALUES (NEW.id); END",
    ],
}


def recording(writer, seen: Counter):
    """``writer``'s writes counted by name as they are sent (they run as before)."""
    run, run_all = writer.run, writer.run_all

    async def counted_run(write, attempt_id, *args, **kwargs):
        seen[write.__name__] += 1
        return await run(write, attempt_id, *args, **kwargs)

    async def counted_run_all(writes, retry_for=None):
        seen.update(getattr(getattr(w, "func", w), "__name__", "?") for w in writes)
        return await run_all(writes, retry_for)

    writer.run, writer.run_all = counted_run, counted_run_all


async def test_answered_is_written_by_the_flows_only_and_originated_by_the_originator_only(db_engine):
    async with db_engine.begin() as conn:
        campaign_id, _ = await seed_campaign(conn, 40, first_number=2025552000)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
            window_start=dt.time(0, 0), window_end=dt.time(0, 0), lines=10, cps=50, max_attempts=1))
        for ddl in COUNT_ANSWER_WRITES[db_engine.dialect.name]:
            await conn.execute(text(ddl))
    plan = ScenarioPlan.mix(seed=3)
    originator_writes: Counter = Counter()
    async with LocalStack(db_engine, plan=plan, speed=100.0, lines=10, cps=50) as stack:
        recording(stack.originator.writer, originator_writes)
        flow_writes: Counter = Counter()
        recording(stack.router.context.writer, flow_writes)
        await stack.assign(campaign_id)
        stack.start()
        await stack.settle(campaign_id, timeout=120)
        record = list(stack.sim.record)
    answered = {rec.channel_id for rec in record if rec.network == "answer"}
    assert answered, "the mix answered some calls"
    assert not ANSWER_FACTS & set(originator_writes), originator_writes
    assert flow_writes["mark_answered"] >= len(answered)
    a = Attempt.__table__
    async with db_engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(a).where(a.c.campaign_id == campaign_id))).all()}
        answer_writes = Counter((await conn.execute(text("SELECT attempt_id FROM answer_writes"))).scalars())
    assert answer_writes == Counter(answered)  # one statement wrote each answered call's answer: the flows'
    # the facts are all there, each from its one writer
    assert all(rows[i].answered_at is not None and rows[i].originated_at is not None for i in answered)
    assert all(r.result is not None for r in rows.values())
