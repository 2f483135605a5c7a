"""The admin CLI end to end through click's runner, on both backends (`--db <url>`)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select

from agi.cli import main
from agi.db.engine import make_engine
from agi.db.models import Attempt, Campaign, CampaignContact, Contact, DialerCampaign
from agi.outcomes import CampaignState, ContactState, Disposition, Result, Routing


def cli(db_url: str, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["--db", db_url, *args], input=input)


def ok(db_url: str, *args: str):
    result = cli(db_url, *args)
    assert result.exit_code == 0, result.output
    return result


def db(url: str, work):
    """Run ``work(conn)`` in a transaction on a fresh engine (the CLI opens its own)."""

    async def go():
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def _members(conn, campaign_id: int, states: list[tuple[ContactState, str | None, dict | None]]) -> list[int]:
    """Memberships in the given (state, last result, last attempt's routing/disposition)."""
    ids = []
    for i, (state, last, attempt) in enumerate(states):
        contact = (await conn.execute(insert(Contact).values(
            dedupe_key=f"m{campaign_id}-{i}", phone=f"+1212555{1000 + i}").returning(Contact.id))).scalar_one()
        attempt_id = None
        if attempt is not None:
            attempt_id = f"a{campaign_id}-{i}"
            await conn.execute(insert(Attempt).values(id=attempt_id, campaign_id=campaign_id, contact_id=contact,
                                                      result=last, **attempt))
        ids.append((await conn.execute(insert(CampaignContact).values(
            campaign_id=campaign_id, contact_id=contact, state=state.value, number=f"+1212555{1000 + i}",
            timezone="America/New_York", last_result=last, last_attempt_id=attempt_id, attempts=1 if last else 0,
        ).returning(CampaignContact.id))).scalar_one())
    return ids


def test_a_database_without_the_schema_says_to_upgrade_first(db_url):
    result = cli(db_url, "campaign", "list")
    assert result.exit_code == 1
    assert "run `dialer db upgrade` first" in result.output
    assert "Traceback" not in result.output


def test_campaign_create_and_show_round_trip_every_option(db_engine, db_url):
    ok(db_url, "campaign", "create", "spring", "--mode", "progressive", "--queue", "sales",
       "--phone-field", "cell", "--countries", "us,ca", "--region", "US", "--window", "09:00-20:00",
       "--lines", "12", "--cps", "2.5", "--ratio", "1.5", "--ring-timeout", "20", "--max-attempts", "4",
       "--retry", "busy=5,no_answer=60,dropped=30", "--drop-timeout", "2", "--message", "acme/hello",
       "--drop-message", "acme/sorry", "--voicemail-message", "acme/vm", "--caller-id", "+12125550000",
       "--target-seconds", "45", "--sales-cycle-days", "2", "--keys", "1=interested,2=not_interested,9=opt_out")
    data = json.loads(ok(db_url, "campaign", "show", "spring", "--json").output)
    c = data["campaign"]
    assert (c["mode"], c["queue_name"], c["phone_field"], c["allowed_countries"]) == ("progressive", "sales", "cell",
                                                                                      ["CA", "US"])
    assert (c["window_start"], c["window_end"]) == ("09:00:00", "20:00:00")
    assert (c["lines"], c["cps"], c["pacing_ratio"], c["ring_timeout"], c["max_attempts"]) == (12, 2.5, 1.5, 20, 4)
    assert c["retry_rules"] == {"busy": 5, "no_answer": 60, "dropped": 30}
    assert c["key_map"] == {"1": "interested", "2": "not_interested", "9": "opt_out"}
    assert (c["message"], c["drop_message"], c["voicemail_message"]) == ("acme/hello", "acme/sorry", "acme/vm")
    assert (c["target_seconds"], c["sales_cycle_days"], c["state"]) == (45, 2, CampaignState.UNSCHEDULED.value)
    assert data["contacts"][ContactState.PENDING.value] == 0
    # by id too, and as a table
    assert "spring" in ok(db_url, "campaign", "show", str(c["id"])).output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ring-timeout", "10"], "at least 15 s"),
        (["--keys", "1=maybe"], "unknown disposition"),
        (["--keys", "12=interested"], "single DTMF digit"),
        (["--countries", "US,XX"], "unknown country code"),
        (["--window", "07:00-21:00"], "outside 08:00-21:00"),
        (["--retry", "busy=five"], "must be a number"),
        (["--mode", "predictive"], "needs agents"),
        (["--phone-field", "fax"], "bad phone field"),
    ],
)
def test_campaign_create_rejects_bad_settings_with_a_clear_message(db_engine, db_url, args, message):
    result = cli(db_url, "campaign", "create", "bad", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert json.loads(ok(db_url, "campaign", "list", "--json").output) == []


def test_campaign_lifecycle_schedule_start_stop_and_admin_stop_cancels_waiting_contacts(db_engine, db_url):
    ok(db_url, "campaign", "create", "c1")
    ok(db_url, "dialers", "add", "box1", "--ami", "10.0.0.5:5038", "--lines", "20", "--cps", "4")
    ok(db_url, "campaign", "assign", "c1", "--dialer", "box1", "--lines", "8")
    over = cli(db_url, "campaign", "assign", "c1", "--dialer", "box1", "--lines", "21")
    assert over.exit_code == 1 and "only 20 lines" in over.output

    unscheduled = cli(db_url, "campaign", "start", "c1")
    assert unscheduled.exit_code == 1 and "campaign schedule" in unscheduled.output
    ok(db_url, "campaign", "schedule", "c1", "--start", "now", "--stop", "2099-12-31", "--days", "mon-fri",
       "--hours", "09:00-17:00", "--tz", "America/New_York")
    shown = json.loads(ok(db_url, "campaign", "show", "c1", "--json").output)
    assert shown["campaign"]["state"] == CampaignState.SCHEDULED.value
    assert shown["campaign"]["schedule"] == {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    assert shown["dialers"] == [{"dialer": "box1", "lines": 8, "state": CampaignState.SCHEDULED.value,
                                 "state_label": "Scheduled", "reason": "", "last_heartbeat": None}]

    cid = shown["campaign"]["id"]
    members = db(db_url, lambda conn: _members(conn, cid, [
        (ContactState.PENDING, None, None), (ContactState.PENDING, None, None),
        (ContactState.RETRY_SCHEDULED, Result.BUSY.value, {}), (ContactState.DIALING, None, None),
        (ContactState.IN_CALL, None, None), (ContactState.DONE, Result.MACHINE_ANSWER.value, {}),
    ]))
    assert len(members) == 6

    assert "Running" in ok(db_url, "campaign", "start", "c1").output
    ok(db_url, "campaign", "stop", "c1")
    state = json.loads(ok(db_url, "campaign", "show", "c1", "--json").output)
    assert state["campaign"]["state"] == CampaignState.STOPPED.value
    assert state["contacts"][ContactState.PENDING.value] == 2  # a plain stop cancels nothing

    out = ok(db_url, "campaign", "stop", "c1", "--admin").output
    assert "3 waiting contact(s) cancelled" in out
    state = json.loads(ok(db_url, "campaign", "show", "c1", "--json").output)
    assert state["campaign"]["state"] == CampaignState.STOPPED_BY_ADMIN.value
    assert state["dialers"][0]["state"] == CampaignState.STOPPED_BY_ADMIN.value
    counts = {k: v for k, v in state["contacts"].items() if v}
    # calls in progress are left to finish
    assert counts == {ContactState.CANCELLED.value: 3, ContactState.DIALING.value: 1,
                      ContactState.IN_CALL.value: 1, ContactState.DONE.value: 1}


def test_create_from_an_earlier_campaign_copies_settings_and_contacts_by_last_result(db_engine, db_url):
    ok(db_url, "campaign", "create", "old", "--ring-timeout", "30", "--countries", "US", "--keys", "5=interested")
    old_id = json.loads(ok(db_url, "campaign", "show", "old", "--json").output)["campaign"]["id"]
    db(db_url, lambda conn: _members(conn, old_id, [
        (ContactState.RETRY_SCHEDULED, Result.NO_ANSWER.value, {}),
        (ContactState.DONE, Result.NO_ANSWER.value, {}),
        (ContactState.RETRY_SCHEDULED, Result.BUSY.value, {}),
        (ContactState.DONE, Result.MACHINE_ANSWER.value, {}),
        (ContactState.DONE, Result.LIVE_ANSWER.value, {"routing": Routing.DROPPED.value}),
        (ContactState.DONE, Result.LIVE_ANSWER.value, {"disposition": Disposition.INTERESTED.value}),
        (ContactState.PENDING, None, None),
    ]))

    created = json.loads(ok(db_url, "campaign", "create", "redial", "--from", "old",
                            "--last-result", "no_answer,busy", "--json").output)
    assert created["contacts_copied"] == 3 and created["source_campaign_id"] == old_id
    new = json.loads(ok(db_url, "campaign", "show", "redial", "--json").output)
    assert (new["campaign"]["ring_timeout"], new["campaign"]["allowed_countries"], new["campaign"]["key_map"]) == (
        30, ["US"], {"5": "interested"})
    assert new["campaign"]["state"] == CampaignState.UNSCHEDULED.value
    assert {k: v for k, v in new["contacts"].items() if v} == {ContactState.PENDING.value: 3}

    def copied_contacts(name):
        async def work(conn):
            cid = (await conn.execute(select(Campaign.id).where(Campaign.name == name))).scalar_one()
            return sorted((await conn.execute(select(CampaignContact.contact_id, CampaignContact.attempts)
                                              .where(CampaignContact.campaign_id == cid))).all())
        return db(db_url, work)

    assert all(attempts == 0 for _c, attempts in copied_contacts("redial"))
    # routing codes work too: the dropped live answer
    dropped = json.loads(ok(db_url, "campaign", "create", "dropped-again", "--from", str(old_id),
                            "--last-result", "dropped", "--json").output)
    assert dropped["contacts_copied"] == 1

    bad = cli(db_url, "campaign", "create", "x", "--from", "old", "--last-result", "sunny")
    assert bad.exit_code == 1 and "unknown result 'sunny'" in bad.output
    needs_from = cli(db_url, "campaign", "create", "y", "--last-result", "busy")
    assert needs_from.exit_code == 1 and "--from" in needs_from.output


def test_dnc_add_check_remove_with_numbers_normalised_to_e164(db_engine, db_url):
    assert "+12125550100 added" in ok(db_url, "dnc", "add", "(212) 555-0100", "--source", "complaint").output
    assert "already" in ok(db_url, "dnc", "add", "+1 212-555-0100").output

    listed = cli(db_url, "dnc", "check", "212.555.0100")
    assert listed.exit_code == 1 and "+12125550100 is on the DNC list (source complaint" in listed.output
    clear = cli(db_url, "dnc", "check", "2125550101")
    assert clear.exit_code == 0 and "not on the DNC list" in clear.output
    invalid = cli(db_url, "dnc", "check", "212-CALL-NOW")
    assert invalid.exit_code == 2 and "not a valid phone number" in invalid.output
    uk = cli(db_url, "dnc", "check", "020 7946 0000", "--region", "GB", "--json")
    assert uk.exit_code == 0 and json.loads(uk.output)["number"] == "+442079460000"

    entries = json.loads(ok(db_url, "dnc", "list", "--json").output)
    assert [(e["number"], e["source"]) for e in entries] == [("+12125550100", "complaint")]
    ok(db_url, "dnc", "remove", "212 555 0100")
    assert cli(db_url, "dnc", "check", "2125550100").exit_code == 0
    gone = cli(db_url, "dnc", "remove", "2125550100")
    assert gone.exit_code == 1 and "not on the DNC list" in gone.output


def test_contacts_import_cli_reports_lines_and_a_second_run_changes_nothing(db_engine, db_url, tmp_path):
    ok(db_url, "campaign", "create", "imp", "--countries", "US")
    ok(db_url, "dnc", "add", "+13125550104")
    path = tmp_path / "list.csv"
    path.write_text(
        "Id,First,Last,Tel,Mobile,DNC\n"
        "1,Ann,Lee,+1 212 555 0101,,\n"          # 2 good
        "2,Bob,Ray,212-55X-0102,,\n"             # 3 invalid
        "3,Cy,Oh,,+13125550103,\n"               # 4 no phone (mobile is not dialed)
        "4,Di,Li,3125550104,,\n"                 # 5 on the DNC list
        "5,Ed,Ng,+44 20 7946 0105,,\n"           # 6 forbidden
        "6,Fay,Wu,2125550106,,yes\n"             # 7 DNC flag
        "7,Gus,Po,2125550107\n"                  # 8 short: imported, Mobile and DNC empty, a warning
        "1,Ann,Lee,+1 212 555 0101,,\n"          # 9 duplicate
    )
    first = ok(db_url, "contacts", "import", str(path), "--campaign", "imp", "--map", "Tel=phone")
    for line, label in [(3, "Invalid Record"), (4, "Contact No Phone"), (5, "Contact DNC"),
                        (6, "Forbidden Destination"), (7, "Contact DNC"), (8, "Warning"), (9, "Duplicate")]:
        assert f"{path}:{line}: {label}" in first.output
    summary = json.loads(ok(db_url, "report", "summary", "--campaign", "imp", "--json").output)["cells"]
    assert (summary[Result.NO_PHONE.value], summary[Result.DNC.value], summary["finished"]) == (1, 2, 0)

    def table_counts():
        async def work(conn):
            return [(await conn.execute(select(func.count()).select_from(m))).scalar_one()
                    for m in (Contact, CampaignContact, Attempt)]
        return db(db_url, work)

    before = table_counts()
    again = json.loads(ok(db_url, "contacts", "import", str(path), "--campaign", "imp", "--map", "Tel=phone",
                          "--json").output)
    assert table_counts() == before == [7, 7, 5]
    assert again["imported"] == 0 and again["duplicates"] == 8 and again["malformed"] == 0

    listed = json.loads(ok(db_url, "contacts", "list", "--campaign", "imp", "--state", "pending", "--json").output)
    assert [(c["external_id"], c["number"]) for c in listed] == [("1", "+12125550101"), ("7", "+12125550107")]
    out = tmp_path / "out.csv"
    ok(db_url, "contacts", "export", "--campaign", "imp", str(out))
    assert len(out.read_text().splitlines()) == 8
    nofile = cli(db_url, "contacts", "import", str(tmp_path / "none.csv"), "--campaign", "imp")
    assert nofile.exit_code == 2 and "does not exist" in nofile.output


def test_schedule_hours_ending_at_24_00_call_until_midnight_in_the_zone(db_engine, db_url):
    ok(db_url, "campaign", "create", "late")
    ok(db_url, "campaign", "schedule", "late", "--start", "2099-01-01", "--stop", "2099-01-31", "--days", "sat",
       "--hours", "18:00-24:00", "--tz", "Europe/Paris")
    c = json.loads(ok(db_url, "campaign", "show", "late", "--json").output)["campaign"]
    assert c["schedule"] == {"sat": [["18:00", "24:00"]]}  # not 23:59: the last minute is callable too
    # the stop date is the whole day in the zone: the next midnight, Paris time
    assert c["stop_at"] == "2099-01-31T23:00:00+00:00"
    bad = cli(db_url, "campaign", "schedule", "late", "--hours", "24:00-24:00")
    assert bad.exit_code == 1 and "24:00 only ends a range" in bad.output


def test_campaign_delete_asks_unless_yes_and_refuses_a_running_campaign(db_engine, db_url):
    ok(db_url, "campaign", "create", "gone")
    aborted = cli(db_url, "campaign", "delete", "gone", input="n\n")
    assert aborted.exit_code == 1 and json.loads(ok(db_url, "campaign", "list", "--json").output)
    ok(db_url, "campaign", "schedule", "gone", "--start", "now", "--stop", "2099-01-01")
    ok(db_url, "campaign", "start", "gone")
    running = cli(db_url, "campaign", "delete", "gone", "--yes")
    assert running.exit_code == 1 and "campaign stop gone" in running.output
    ok(db_url, "campaign", "stop", "gone")
    assert "Deleted campaign 'gone'" in ok(db_url, "campaign", "delete", "gone", "--yes").output
    assert json.loads(ok(db_url, "campaign", "list", "--json").output) == []
    missing = cli(db_url, "campaign", "show", "gone")
    assert missing.exit_code == 1 and "no campaign 'gone'" in missing.output


def test_campaign_set_changes_only_what_is_given(db_engine, db_url):
    ok(db_url, "campaign", "create", "s")
    changed = json.loads(ok(db_url, "campaign", "set", "s", "--lines", "5", "--queue", "q1", "--json").output)
    assert changed == {"lines": {"old": 10, "new": 5}, "queue_name": {"old": None, "new": "q1"}}
    assert json.loads(ok(db_url, "campaign", "set", "s", "--lines", "5", "--json").output) == {}
    nothing = cli(db_url, "campaign", "set", "s")
    assert nothing.exit_code == 1 and "nothing to change" in nothing.output
    ok(db_url, "campaign", "set", "s", "--name", "renamed")
    assert json.loads(ok(db_url, "campaign", "show", "renamed", "--json").output)["campaign"]["lines"] == 5


def test_a_new_window_makes_the_contacts_deferred_to_the_old_one_due_again(db_engine, db_url):
    """`campaign set --window` / `campaign schedule`: a contact the originator deferred to the old
    window's opening is due again (checked against the new window at its next claim); a retry
    keeps its time; other settings leave the deferral alone."""
    import datetime as dt

    from sqlalchemy import update

    ok(db_url, "campaign", "create", "w", "--window", "10:00-20:00")
    later = dt.datetime(2030, 1, 2, 15, 0, tzinfo=dt.timezone.utc)

    async def seed(conn):
        cid = (await conn.execute(select(Campaign.id).where(Campaign.name == "w"))).scalar_one()
        ids = await _members(conn, cid, [(ContactState.PENDING, None, None), (ContactState.RETRY_SCHEDULED, "busy", None)])
        await conn.execute(update(CampaignContact).where(CampaignContact.id.in_(ids)).values(next_attempt_at=later))
        return ids

    deferred, retry = db(db_url, seed)

    async def due(conn):
        rows = (await conn.execute(select(CampaignContact.id, CampaignContact.next_attempt_at))).all()
        return {i: at for i, at in rows}

    ok(db_url, "campaign", "set", "w", "--lines", "5")
    assert db(db_url, due)[deferred] is not None  # not the window: deferral kept
    ok(db_url, "campaign", "set", "w", "--window", "08:00-20:00")
    after = db(db_url, due)
    assert after[deferred] is None and after[retry] is not None
    db(db_url, lambda conn: conn.execute(update(CampaignContact).where(CampaignContact.id == deferred)
                                         .values(next_attempt_at=later)))
    ok(db_url, "campaign", "schedule", "w", "--hours", "09:00-18:00", "--start", "2029-12-01", "--stop", "2030-12-31")
    assert db(db_url, due)[deferred] is None


def test_dialers_add_and_list(db_engine, db_url):
    ok(db_url, "dialers", "add", "east", "--ami", "10.1.1.1:5039", "--lines", "40", "--template", "SIP/{number}@up")
    dup = cli(db_url, "dialers", "add", "east")
    assert dup.exit_code == 1 and "already exists" in dup.output
    bad = cli(db_url, "dialers", "add", "west", "--template", "SIP/trunk")
    assert bad.exit_code == 1 and "{number}" in bad.output
    rows = json.loads(ok(db_url, "dialers", "list", "--json").output)
    assert [(r["name"], r["ami"], r["lines"], r["template"]) for r in rows] == [
        ("east", "10.1.1.1:5039", 40, "SIP/{number}@up")]

    def assignments():
        async def work(conn):
            return (await conn.execute(select(func.count()).select_from(DialerCampaign))).scalar_one()
        return db(db_url, work)

    ok(db_url, "campaign", "create", "c")
    ok(db_url, "campaign", "assign", "c", "--dialer", "east")
    assert assignments() == 1
    ok(db_url, "campaign", "assign", "c", "--dialer", "east", "--remove")
    assert assignments() == 0
    nodialer = cli(db_url, "campaign", "assign", "c", "--dialer", "nowhere")
    assert nodialer.exit_code == 1 and "dialers add nowhere" in nodialer.output


@pytest.mark.parametrize("group", ["campaign", "contacts", "dnc", "report", "dialers"])
def test_every_command_has_help(group):
    runner = CliRunner()
    top = runner.invoke(main, [group, "--help"])
    assert top.exit_code == 0
    for name in main.commands[group].commands:
        result = runner.invoke(main, [group, name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, (group, name)


def test_a_drop_target_under_the_cap_is_stored_and_one_above_it_refused(db_engine, db_url):
    ok(db_url, "campaign", "create", "steer", "--mode", "predictive", "--queue", "sales", "--drop-target", "2.5")
    shown = json.loads(ok(db_url, "campaign", "show", "steer", "--json").stdout)
    assert shown["campaign"]["drop_target_pct"] == 2.5
    bad = cli(db_url, "campaign", "set", "steer", "--drop-target", "3.5")
    assert bad.exit_code != 0 and "under the cap" in bad.output
    assert json.loads(ok(db_url, "campaign", "show", "steer", "--json").stdout)["campaign"]["drop_target_pct"] == 2.5
    ok(db_url, "campaign", "set", "steer", "--drop-target", "default")  # back to the rule's default share
    assert json.loads(ok(db_url, "campaign", "show", "steer", "--json").stdout)["campaign"]["drop_target_pct"] is None
