"""QA: `dialer dispose` only on live answers: a disposition on a busy line would count in the summary."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from agi.cli import main
from agi.db import attempts as db
from agi.db.models import CampaignContact, DncEntry
from agi.outcomes import Result
from db_seed import T0, seed_campaign


@pytest.mark.parametrize("result", [Result.NO_ANSWER, Result.BUSY, Result.MACHINE_ANSWER])
async def test_dispose_refuses_an_attempt_nobody_answered(db_engine, result):
    async with db_engine.begin() as conn:
        campaign_id, (membership,) = await seed_campaign(conn, 1)
        contact_id = (await conn.execute(select(CampaignContact.__table__.c.contact_id))).scalar_one()
        attempt = await db.start_attempt(conn, membership, campaign_id=campaign_id, contact_id=contact_id,
                                         dialer="d1", number="+12025550000", attempt_no=1, now=T0)
        await db.finish_attempt(conn, attempt, result, ended_at=T0)
    url = db_engine.url.render_as_string(hide_password=False)
    for choice in ("interested", "opt_out"):
        res = await asyncio.to_thread(CliRunner().invoke, main, ["--db", url, "dispose", attempt, choice])
        assert res.exit_code == 1 and "only a live answer" in res.output, res.output
    async with db_engine.connect() as conn:
        got = await db.get_attempt(conn, attempt)
        assert (await conn.execute(select(DncEntry.__table__.c.number))).first() is None
    assert got.disposition is None and got.result is result
