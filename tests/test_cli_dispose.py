"""`dialer dispose`: the agent's disposition replaces the IVR's, opt-out lands on DNC, call back reschedules."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner
from sqlalchemy import select

from agi.cli import main
from agi.db import attempts as db
from agi.db.models import CampaignContact, DncEntry
from agi.outcomes import ContactState, Disposition, Result
from db_seed import T0, seed_campaign


async def _answered_attempt(engine):
    async with engine.begin() as conn:
        campaign_id, (membership,) = await seed_campaign(conn, 1)
        contact_id = (await conn.execute(select(CampaignContact.__table__.c.contact_id))).scalar_one()
        attempt = await db.start_attempt(conn, membership, campaign_id=campaign_id, contact_id=contact_id,
                                         dialer="d1", number="+12025550000", attempt_no=1, now=T0)
        await db.set_disposition(conn, attempt, Disposition.INTERESTED)
        await db.finish_attempt(conn, attempt, Result.LIVE_ANSWER, ended_at=T0)
    return attempt, membership


async def _cli(url, *args):
    """The real command, in a thread: it runs its own event loop like in a shell."""
    return await asyncio.to_thread(CliRunner().invoke, main, ["--db", url, "dispose", *args])


async def test_agent_call_back_replaces_ivr_choice_and_reschedules(db_engine):
    attempt, membership = await _answered_attempt(db_engine)
    res = await _cli(db_engine.url.render_as_string(hide_password=False), attempt, "call_back", "--callback-at", "+3h")
    assert res.exit_code == 0, res.output
    async with db_engine.connect() as conn:
        got = await db.get_attempt(conn, attempt)
        state, when = (await conn.execute(select(CampaignContact.__table__.c.state, CampaignContact.__table__.c.next_attempt_at)
                                          .where(CampaignContact.__table__.c.id == membership))).one()
    assert got.disposition is Disposition.CALL_BACK and got.callback_at is not None
    assert state == ContactState.RETRY_SCHEDULED.value and when == got.callback_at


async def test_agent_opt_out_puts_the_number_on_dnc(db_engine):
    attempt, _ = await _answered_attempt(db_engine)
    res = await _cli(db_engine.url.render_as_string(hide_password=False), attempt, "Opt Out")
    assert res.exit_code == 0, res.output
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(DncEntry.__table__.c.number))).scalars().all() == ["+12025550000"]


async def test_unknown_attempt_and_bad_disposition_are_clear_errors(db_engine):
    url = db_engine.url.render_as_string(hide_password=False)
    res = await _cli(url, "nope", "interested")
    assert res.exit_code != 0 and "no attempt 'nope'" in res.output
    res = await _cli(url, "x", "maybe")
    assert res.exit_code != 0 and "choose one of" in res.output


async def test_call_back_tomorrow_works_as_the_help_says_and_a_past_time_is_refused(db_engine):
    import datetime as dt

    attempt, _ = await _answered_attempt(db_engine)
    url = db_engine.url.render_as_string(hide_password=False)
    res = await _cli(url, attempt, "call_back", "--callback-at", "2020-01-01 09:00")
    assert res.exit_code != 0 and "in the past" in res.output, res.output
    async with db_engine.connect() as conn:
        assert (await db.get_attempt(conn, attempt)).disposition is Disposition.INTERESTED  # nothing stored
    before = dt.datetime.now(dt.timezone.utc)
    res = await _cli(url, attempt, "call_back", "--callback-at", "tomorrow")
    assert res.exit_code == 0, res.output
    async with db_engine.connect() as conn:
        got = await db.get_attempt(conn, attempt)
    assert dt.timedelta(hours=23) < got.callback_at - before < dt.timedelta(hours=25)
