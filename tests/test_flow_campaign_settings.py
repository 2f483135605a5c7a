"""The campaign settings a call needs (FlowContext.campaign): read from the database once, then
never waited for: past their freshness window they are re-read in the background, so an edit
reaches the calls within seconds and no call's next AGI command waits on that read."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, event, update

from agi.db.models import Campaign
from agi.flows.context import FlowContext
from db_seed import seed_campaign

_c = Campaign.__table__


async def _campaign(engine) -> int:
    async with engine.begin() as conn:
        campaign_id, _ = await seed_campaign(conn, 1)
        await conn.execute(update(_c).where(_c.c.id == campaign_id).values(message="dialer/old"))
    return campaign_id


async def _settled(ctx: FlowContext, campaign_id: int, want: str) -> str:
    async with asyncio.timeout(10):
        while (settings := await ctx.campaign(campaign_id)).message != want:
            await asyncio.sleep(0.01)
    return settings.message


async def test_an_edit_reaches_the_calls_after_the_window_without_a_call_waiting_for_it(db_engine):
    campaign_id = await _campaign(db_engine)
    ctx = FlowContext(db_engine, campaign_ttl=0.2)
    try:
        assert (await ctx.campaign(campaign_id)).message == "dialer/old"  # first call: read now
        async with db_engine.begin() as conn:
            await conn.execute(update(_c).where(_c.c.id == campaign_id).values(message="dialer/new"))
        assert (await ctx.campaign(campaign_id)).message == "dialer/old"  # still fresh: not re-read
        await asyncio.sleep(0.25)
        # past the window: this call gets what it had at once; the re-read runs behind it
        assert (await ctx.campaign(campaign_id)).message == "dialer/old"
        assert await _settled(ctx, campaign_id, "dialer/new") == "dialer/new"
    finally:
        await ctx.aclose()


async def test_a_failed_re_read_keeps_the_settings_and_says_so(db_engine, caplog):
    caplog.set_level(logging.WARNING, logger="agi.flows")
    campaign_id = await _campaign(db_engine)
    ctx = FlowContext(db_engine, campaign_ttl=0.05)
    try:
        await ctx.campaign(campaign_id)
        async with db_engine.begin() as conn:  # gone from under the running calls
            await conn.execute(delete(_c).where(_c.c.id == campaign_id))
        await asyncio.sleep(0.1)
        assert (await ctx.campaign(campaign_id)).message == "dialer/old"
        async with asyncio.timeout(10):
            while not any("could not re-read" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
        assert (await ctx.campaign(campaign_id)).message == "dialer/old"
    finally:
        await ctx.aclose()


async def test_calls_arriving_together_share_one_read(db_engine):
    """A server restarted under load: the first calls of a campaign wait for one read, not one each."""
    campaign_id = await _campaign(db_engine)
    reads = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM campaigns" in statement:
            reads.append(statement)

    event.listen(db_engine.sync_engine, "before_cursor_execute", count)
    ctx = FlowContext(db_engine)
    try:
        settings = await asyncio.gather(*(ctx.campaign(campaign_id) for _ in range(20)))
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", count)
        await ctx.aclose()
    assert {s.message for s in settings} == {"dialer/old"}
    assert len(reads) == 1, reads
