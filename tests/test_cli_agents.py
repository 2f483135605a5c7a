"""The agents' CLI and where the seed 004 states show: `dialer agents set/list` (a user with role agent
only, one phone per agent), `campaign set --mode preview --bcw-seconds --on-reject --acw-seconds`,
and `contacts list` / `campaign show` naming operator_assigned, bcw, rejected_by_operator and acw."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from agi.cli import main
from agi.db.engine import make_engine
from agi.db.models import Campaign, CampaignContact
from agi.outcomes import ContactState
from db_seed import seed_campaign

AGENT_STATES = (ContactState.OPERATOR_ASSIGNED, ContactState.BCW, ContactState.REJECTED_BY_OPERATOR,
                ContactState.ACW)


def cli(db_url: str, *args: str):
    return CliRunner().invoke(main, ["--db", db_url, *args])


def ok(db_url: str, *args: str):
    res = cli(db_url, *args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture
def seeded(db_url):
    ok(db_url, "db", "upgrade")

    async def go():
        engine = make_engine(db_url)
        async with engine.begin() as conn:
            _camp, members = await seed_campaign(conn, 4, name="pv")
            for m, state in zip(members, AGENT_STATES):
                await conn.execute(update(CampaignContact.__table__).where(CampaignContact.__table__.c.id == m)
                                   .values(state=state.value))
        await engine.dispose()

    asyncio.run(go())
    return db_url


def test_agents_set_and_list(seeded):
    ok(seeded, "users", "add", "ann", "--role", "agent")
    ok(seeded, "users", "add", "sue", "--role", "supervisor")
    res = cli(seeded, "agents", "set", "sue", "--interface", "PJSIP/agent2")
    assert res.exit_code != 0 and "only an agent" in res.output
    res = cli(seeded, "agents", "set", "ann", "--interface", "not a device")
    assert res.exit_code != 0 and "bad interface" in res.output
    ok(seeded, "agents", "set", "ann", "--interface", "PJSIP/agent1", "--campaign", "pv")
    rows = json.loads(ok(seeded, "agents", "list", "--json").output)
    assert [(r["user"], r["interface"], r["state"]) for r in rows] == [("ann", "PJSIP/agent1", "logged_out")]
    audit = json.loads(ok(seeded, "audit", "--json").output)
    assert any(e["action"] == "agent.set" for e in audit)


def test_preview_settings_on_a_campaign(seeded):
    ok(seeded, "campaign", "set", "pv", "--mode", "preview", "--bcw-seconds", "20", "--on-reject", "skip",
       "--acw-seconds", "15")

    async def read():
        engine = make_engine(seeded)
        async with engine.connect() as conn:
            row = (await conn.execute(select(Campaign.mode, Campaign.bcw_seconds, Campaign.on_reject,
                                             Campaign.acw_seconds))).one()
        await engine.dispose()
        return tuple(row)

    assert asyncio.run(read()) == ("preview", 20, "skip", 15)
    res = cli(seeded, "campaign", "set", "pv", "--on-reject", "later")
    assert res.exit_code != 0 and "next_agent, skip" in res.output


def test_contacts_list_and_campaign_show_name_the_agent_facing_states(seeded):
    listed = ok(seeded, "contacts", "list", "--campaign", "pv").output
    shown = ok(seeded, "campaign", "show", "pv").output
    for state in AGENT_STATES:
        assert state.label in listed and state.label in shown
    only = json.loads(ok(seeded, "contacts", "list", "--campaign", "pv", "--state", "bcw,acw", "--json").output)
    assert sorted(r["state"] for r in only) == ["acw", "bcw"]
