"""The call-back the person asked for, dialed again by the originator, through the simulator: when
they do not pick it up, the call log says "No answer from a customer (Callback)" (seed 002)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json

from click.testing import CliRunner
from sqlalchemy import select, update

from agi import reports
from agi.cli import main
from agi.db.models import Attempt, Campaign
from agi.local import LocalStack
from agi.outcomes import CallClass, Disposition, Result
from agi.sim.scenarios import ScenarioPlan, scenario
from db_seed import seed_campaign

NUMBER = "+12025550151"


class InTurn(ScenarioPlan):
    """Each number's dials in turn: the n-th dial of a number gets its n-th scenario (the last repeats)."""

    def __init__(self, dials: dict[str, list]) -> None:
        super().__init__()
        self.dials = {n: [scenario(s) for s in seq] for n, seq in dials.items()}

    def choose(self, number: str):
        n = self._dials.get(number, 0)
        self._dials[number] = n + 1
        seq = self.dials[number]
        return seq[min(n, len(seq) - 1)]


def _cli(db_url: str, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", db_url, *args])
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_call_back_the_person_does_not_pick_up_is_classed_so_in_the_call_log(db_engine, db_url, tmp_path):
    async with db_engine.begin() as conn:
        campaign_id, (membership,) = await seed_campaign(conn, 1, name="cb", first_number=2025550151)
        await conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id).values(
            window_start=dt.time(0, 0), window_end=dt.time(0, 0),  # 24/7: independent of the hour
            callback_delay_minutes=1, key_tries=1, key_timeout=2, max_attempts=3))
    # first dial: the person presses 3 (call me back); the call-back (a minute later) rings out
    plan = InTurn({NUMBER: [{"base": "human", "callee": {"keys": ["3@1.0/0"]}}, "no_answer"]})
    async with LocalStack(db_engine, plan=plan, speed=100.0) as stack:
        await stack.assign(campaign_id)
        stack.start()
        async with asyncio.timeout(60):
            while True:
                async with db_engine.connect() as conn:
                    rows = (await conn.execute(select(Attempt.__table__).where(
                        Attempt.__table__.c.membership_id == membership).order_by(
                        Attempt.__table__.c.attempt_no))).all()
                if len(rows) >= 2 and rows[1].result is not None:
                    break
                await asyncio.sleep(0.1)
    first, callback = rows[0], rows[1]
    assert (first.result, first.disposition, first.callback) == (
        Result.LIVE_ANSWER.value, Disposition.CALL_BACK.value, False)
    assert (callback.result, callback.callback) == (Result.NO_ANSWER.value, True)
    async with db_engine.connect() as conn:
        log = {r.attempt_id: r for r in await reports.call_log(conn, campaign=campaign_id)}
    assert log[callback.id].call_class == CallClass.CALLBACK_NO_ANSWER.value
    assert log[first.id].call_class != CallClass.CALLBACK_NO_ANSWER.value
    out = tmp_path / "calls.csv"
    await asyncio.to_thread(_cli, db_url, "report", "calls", "--campaign", "cb", "--csv", str(out))
    with out.open() as fh:
        exported = {r["attempt_id"]: r for r in csv.DictReader(fh)}
    assert (exported[callback.id]["class"], exported[callback.id]["class_label"]) == (
        "callback_no_answer", "No Answer from a Customer (Callback)")
    shown = json.loads(await asyncio.to_thread(_cli, db_url, "report", "calls", "--campaign", "cb", "--json"))
    assert {r["attempt_id"]: r["class"] for r in shown}[callback.id] == "callback_no_answer"
