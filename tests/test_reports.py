"""Reports: the summary equals direct SQL counts cell by cell; the call log's filters and
target/repeat classes (both backends)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random

import pytest
from click.testing import CliRunner
from sqlalchemy import bindparam, func, insert, or_, select, text

from agi import reports
from agi.cli import main
from agi.db import drops
from agi.db.models import Attempt, Campaign, Contact, UTCDateTime
from agi.outcomes import DIAL_RESULTS, FINISHED, SUMMARY_ROWS, CallClass, Disposition, Result, Routing

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
ANSWERED = {Result.LIVE_ANSWER, Result.MACHINE_ANSWER, Result.FAX}


async def _seed(conn, name: str, n: int, rng: random.Random, **campaign) -> int:
    cid = (await conn.execute(insert(Campaign).values(name=name, **campaign).returning(Campaign.id))).scalar_one()
    contact = (await conn.execute(
        insert(Contact).values(dedupe_key=f"k-{name}", phone="+12125550100").returning(Contact.id))).scalar_one()
    rows = []
    results = [None, *Result]
    for i in range(n):
        result = rng.choice(results)
        routing = disposition = None
        if result is Result.LIVE_ANSWER or (result is None and rng.random() < 0.3):
            routing = rng.choice([None, *Routing])
            disposition = rng.choice([None, *Disposition])
        queued = NOW - dt.timedelta(minutes=rng.randrange(0, 72 * 60))
        answered = queued + dt.timedelta(seconds=8) if result in ANSWERED else None
        rows.append({
            "id": f"{name}-{i:05d}", "campaign_id": cid, "contact_id": contact,
            "number": f"+1212555{rng.randrange(100, 120):04d}", "queued_at": queued, "answered_at": answered,
            "ended_at": None if result is None else queued + dt.timedelta(seconds=40),
            "result": result.value if result else None,
            "routing": routing.value if routing else None,
            "disposition": disposition.value if disposition else None,
            "talk_seconds": rng.randrange(0, 120) if answered else None,
            "charged": bool(result and result.charged),
        })
    await conn.execute(insert(Attempt), rows)
    return cid


async def _sql_count(conn, campaign_id: int, where: str, **params) -> int:
    """A COUNT written by hand, independent of agi.reports."""
    stmt = text(f"SELECT COUNT(*) FROM attempts WHERE campaign_id = :cid AND ({where})")
    binds = [bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, list)]
    binds += [bindparam(k, type_=UTCDateTime) for k, v in params.items() if isinstance(v, dt.datetime)]
    if binds:
        stmt = stmt.bindparams(*binds)
    return (await conn.execute(stmt, {"cid": campaign_id, **params})).scalar_one()


async def test_summary_equals_direct_sql_counts_cell_by_cell(db_engine):
    rng = random.Random(2)
    async with db_engine.begin() as conn:
        cid = await _seed(conn, "sum", 400, rng, drop_window_hours=48, drop_cap_pct=3.0)
        await _seed(conn, "other", 150, rng)  # must not leak into the first campaign's counts

    async with db_engine.connect() as conn:
        s = await reports.summary(conn, "sum", now=NOW)
        expected = {FINISHED: await _sql_count(conn, cid, "result IN :codes",
                                               codes=sorted(r.value for r in DIAL_RESULTS))}
        for row in SUMMARY_ROWS:
            for code, _label in row:
                if code == FINISHED:
                    continue
                column = ("routing" if code in {r.value for r in Routing}
                          else "disposition" if code in {d.value for d in Disposition} else "result")
                expected[code] = await _sql_count(conn, cid, f"{column} = :code", code=code)
        for result in (Result.REJECTED, Result.INVALID_NUMBER, Result.FORBIDDEN_DESTINATION):
            expected[result.value] = await _sql_count(conn, cid, "result = :code", code=result.value)
        since = NOW - dt.timedelta(hours=48)
        live = await _sql_count(conn, cid, "result = :live AND COALESCE(answered_at, queued_at) >= :since",
                                live=Result.LIVE_ANSWER.value, since=since)
        dropped = await _sql_count(
            conn, cid, "result = :live AND routing = :dropped AND COALESCE(answered_at, queued_at) >= :since",
            live=Result.LIVE_ANSWER.value, dropped=Routing.DROPPED.value, since=since)
        last_hour = await _sql_count(conn, cid, "(result IS NULL OR result IN :codes) AND queued_at >= :since",
                                     codes=sorted(r.value for r in DIAL_RESULTS), since=NOW - dt.timedelta(hours=1))
        open_ = await _sql_count(conn, cid, "result IS NULL")
        dialed = await _sql_count(conn, cid, "result IS NULL OR result IN :codes",
                                  codes=sorted(r.value for r in DIAL_RESULTS))
        span = (await conn.execute(select(func.min(Attempt.queued_at), func.max(Attempt.queued_at)).where(
            Attempt.campaign_id == cid, or_(Attempt.result.is_(None),
                                            Attempt.result.in_([r.value for r in DIAL_RESULTS]))))).one()

    assert s.cells == expected
    assert [[(c, lbl) for c, lbl, _n in row] for row in s.rows()] == [list(r) for r in SUMMARY_ROWS]
    assert all(n > 0 for n in expected.values()), "the seed should exercise every cell"
    assert (s.live_in_window, s.dropped_in_window) == (live, dropped) and live > 0
    assert s.drop_rate_pct == 100.0 * dropped / live
    assert s.attempts_last_hour == last_hour
    assert s.in_progress == open_
    first, last = (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc) for t in span)
    assert s.attempts_per_hour == pytest.approx(dialed / max((last - first).total_seconds() / 3600, 1.0))
    assert s.agent_occupancy_pct is None  # not known yet: the hook says so



async def test_summary_drop_counts_equal_the_originators_for_every_result_and_routing(db_engine):
    """The summary decides per (result, routing) group what counts as a live answer and a drop
    (agi.db.drops.counts_as_live ...); the originator's cap counts per attempt in SQL
    (drops.drop_counts). Every combination, in and out of the window: the two agree."""
    async with db_engine.begin() as conn:
        cid = (await conn.execute(insert(Campaign).values(name="drops", drop_window_hours=24)
                                  .returning(Campaign.id))).scalar_one()
        contact = (await conn.execute(insert(Contact).values(dedupe_key="k-drops", phone="+12125550100")
                                      .returning(Contact.id))).scalar_one()
        rows = []
        for result in (None, *Result):
            for routing in (None, *Routing):
                for age_h, answered in ((1, True), (1, False), (30, True), (30, False)):
                    queued = NOW - dt.timedelta(hours=age_h)
                    rows.append({"id": f"d-{len(rows):05d}", "campaign_id": cid, "contact_id": contact,
                                 "number": "+12125550100", "queued_at": queued,
                                 "answered_at": queued + dt.timedelta(seconds=8) if answered else None,
                                 "result": result.value if result else None,
                                 "routing": routing.value if routing else None})
        await conn.execute(insert(Attempt), rows)
    async with db_engine.connect() as conn:
        s = await reports.summary(conn, "drops", now=NOW)
        dropped, live = await drops.drop_counts(conn, cid, NOW - dt.timedelta(hours=24))
    assert (s.dropped_in_window, s.live_in_window) == (dropped, live)
    assert dropped > 0 and live > dropped

def test_report_summary_cli_json_matches_the_module(db_engine, db_url):
    import asyncio

    s = asyncio.run(_seed_and_sum(db_url))
    result = CliRunner().invoke(main, ["--db", db_url, "report", "summary", "--campaign", "cli", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["cells"] == s.cells
    table = CliRunner().invoke(main, ["--db", db_url, "report", "summary", "--campaign", "cli"])
    assert table.exit_code == 0, table.output
    assert "Finished" in table.output and "Drop rate" in table.output


async def _seed_and_sum(url):
    from agi.db.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await _seed(conn, "cli", 120, random.Random(5))
        async with engine.connect() as conn:
            return await reports.summary(conn, "cli")
    finally:
        await engine.dispose()


async def _live(conn, cid, contact, n, at, talk, number="+13125550199", **extra):
    await conn.execute(insert(Attempt).values(
        id=f"live-{n}", campaign_id=cid, contact_id=contact, number=number, queued_at=at - dt.timedelta(seconds=20),
        answered_at=at, ended_at=at + dt.timedelta(seconds=talk), result=Result.LIVE_ANSWER.value,
        talk_seconds=talk, charged=True, **extra))


async def test_call_log_classes_target_and_repeat_over_the_numbers_whole_history(db_engine):
    t0 = NOW - dt.timedelta(days=3)
    async with db_engine.begin() as conn:
        cid = (await conn.execute(insert(Campaign).values(name="tgt", target_seconds=30, sales_cycle_days=1)
                                  .returning(Campaign.id))).scalar_one()
        contact = (await conn.execute(insert(Contact).values(dedupe_key="t", phone="3125550199")
                                      .returning(Contact.id))).scalar_one()
        await _live(conn, cid, contact, 1, t0, 40)  # target: opens the cycle
        await _live(conn, cid, contact, 2, t0 + dt.timedelta(hours=2), 50, agent="alice",
                    routing=Routing.AGENT_CONNECTED.value, disposition=Disposition.INTERESTED.value)  # repeat
        await _live(conn, cid, contact, 3, t0 + dt.timedelta(hours=3), 10)  # too short: neither
        await _live(conn, cid, contact, 4, t0 + dt.timedelta(hours=25), 35)  # new cycle: target
        await conn.execute(insert(Attempt).values(
            id="busy-1", campaign_id=cid, contact_id=contact, number="+13125550100",
            queued_at=t0 + dt.timedelta(hours=1), result=Result.BUSY.value, hangup_cause=17))

    async with db_engine.connect() as conn:
        log = await reports.call_log(conn, campaign="tgt", number="(312) 555-0199")
        assert [(r.attempt_id, r.call_class) for r in log] == [
            ("live-4", CallClass.TARGET.value), ("live-3", None),
            ("live-2", CallClass.REPEAT.value), ("live-1", CallClass.TARGET.value)]
        # a date range that leaves the target call out still shows the repeat as a repeat
        later = await reports.call_log(conn, campaign="tgt", since=t0 + dt.timedelta(hours=1, minutes=30),
                                       until=t0 + dt.timedelta(hours=4))
        assert [(r.attempt_id, r.call_class) for r in later] == [("live-3", None), ("live-2", CallClass.REPEAT.value)]
        busy = await reports.call_log(conn, result="busy")
        assert [r.attempt_id for r in busy] == ["busy-1"]
        connected = await reports.call_log(conn, result="agent_connected,interested")
        assert [(r.attempt_id, r.agent) for r in connected] == [("live-2", "alice")]
        assert len(await reports.call_log(conn, campaign=str(cid), limit=2)) == 2
        assert await reports.call_log(conn, number="0100") == busy  # digits: a substring match


def test_report_calls_cli_exports_csv_and_json(db_engine, db_url, tmp_path):
    import asyncio

    async def seed():
        from agi.db.engine import make_engine

        engine = make_engine(db_url)
        try:
            async with engine.begin() as conn:
                await _seed(conn, "log", 30, random.Random(9))
        finally:
            await engine.dispose()

    asyncio.run(seed())
    out = tmp_path / "calls.csv"
    result = CliRunner().invoke(main, ["--db", db_url, "report", "calls", "--campaign", "log", "--csv", str(out)])
    assert result.exit_code == 0, result.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30 and {r["campaign"] for r in rows} == {"log"}
    as_json = CliRunner().invoke(main, ["--db", db_url, "report", "calls", "--result", "busy", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert all(r["result"] == Result.BUSY.value for r in json.loads(as_json.output))
    bad = CliRunner().invoke(main, ["--db", db_url, "report", "calls", "--result", "bogus"])
    assert bad.exit_code != 0 and "unknown result 'bogus'" in bad.output
    missing = CliRunner().invoke(main, ["--db", db_url, "report", "summary", "--campaign", "nope"])
    assert missing.exit_code == 1 and "no campaign 'nope'" in missing.output


def test_report_calls_from_and_to_read_dates_like_the_schedule(db_engine, db_url):
    import asyncio

    async def seed():
        from agi.db.engine import make_engine

        engine = make_engine(db_url)
        try:
            async with engine.begin() as conn:
                cid = (await conn.execute(insert(Campaign).values(name="days").returning(Campaign.id))).scalar_one()
                contact = (await conn.execute(insert(Contact).values(dedupe_key="d", phone="+12125550100")
                                              .returning(Contact.id))).scalar_one()
                for i, at in enumerate([dt.datetime(2026, 12, 1, 0, 0), dt.datetime(2026, 12, 1, 23, 59),
                                        dt.datetime(2026, 12, 2, 0, 0)]):
                    await conn.execute(insert(Attempt).values(
                        id=f"day-{i}", campaign_id=cid, contact_id=contact, number="+12125550100",
                        queued_at=at.replace(tzinfo=dt.timezone.utc), result=Result.BUSY.value))
        finally:
            await engine.dispose()

    def ids(*args):
        result = CliRunner().invoke(main, ["--db", db_url, "report", "calls", "--campaign", "days", "--json", *args])
        assert result.exit_code == 0, result.output
        return sorted(r["attempt_id"] for r in json.loads(result.output))

    asyncio.run(seed())
    assert ids("--from", "2026-12-01", "--to", "2026-12-01") == ["day-0", "day-1"]  # --to: the whole day
    assert ids("--from", "2026-12-01 23:00") == ["day-1", "day-2"]  # a time without offset is UTC
    assert ids("--to", "2026-12-01T23:59+00:00") == ["day-0"]
    assert ids("--to", "now") == ["day-0", "day-1", "day-2"]  # 'now', as campaign schedule takes it
    bad = CliRunner().invoke(main, ["--db", db_url, "report", "calls", "--from", "12/01/2026"])
    assert bad.exit_code == 1 and "use YYYY-MM-DD" in bad.output

