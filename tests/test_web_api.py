"""The public API over HTTP (httpx against the ASGI app), on SQLite and PostgreSQL: every group
works through the same functions as the CLI, and every refusal is a clear JSON error."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging

from click.testing import CliRunner
from sqlalchemy import func, inspect, select

from agi import admin, importer, reports
from agi.auth import keys as key_logic
from agi.cli import main
from agi.db.engine import make_sessionmaker
from agi.db.models import Attempt, AuditEntry, CampaignContact, utcnow
from agi.outcomes import ContactState, Result
from web_support import call, client, membership, new_key


async def make_campaign(engine, name: str = "spring", **settings: str) -> int:
    async with make_sessionmaker(engine)() as session:
        async with session.begin():
            c, _ = await admin.create_campaign(session, name, admin.parse_settings({"countries": "US,CA", **settings}))
            return c.id


async def cli(engine, *args: str):
    """A `dialer` command in-process (off the event loop: the CLI runs its own)."""
    url = engine.url.render_as_string(hide_password=False)
    return await asyncio.to_thread(CliRunner().invoke, main, ["--db", url, *args])


async def audit_rows(engine, action: str) -> list:
    t = AuditEntry.__table__
    async with engine.connect() as conn:
        return (await conn.execute(select(t).where(t.c.action == action).order_by(t.c.id))).all()


# --- keys, roles, scopes --------------------------------------------------------------------


async def test_no_key_bad_key_and_revoked_key_answer_401(db_engine):
    await make_campaign(db_engine)
    good = await new_key(db_engine)
    async with client(db_engine) as api:
        none = await api.get("/campaigns")
        bad = await api.get("/campaigns", headers={"Authorization": "Bearer dk_000000000000_" + "x" * 43})
        ok = await api.get("/campaigns", headers=good)
        async with db_engine.begin() as conn:
            await key_logic.revoke_key(conn, good["Authorization"].split("_")[1])
        revoked = await api.get("/campaigns", headers=good)
    assert ok.status_code == 200
    for r in (none, bad, revoked):
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"


async def test_the_key_also_goes_in_an_x_api_key_header(db_engine):
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        r = await api.get("/campaigns", headers={"X-API-Key": headers["Authorization"].removeprefix("Bearer ")})
    assert r.status_code == 200


async def test_a_disabled_user_s_keys_stop_working(db_engine):
    headers = await new_key(db_engine, "bob", "supervisor")
    async with client(db_engine) as api:
        assert (await api.get("/campaigns", headers=headers)).status_code == 200
        res = await cli(db_engine, "users", "set", "bob", "--disable")
        assert res.exit_code == 0, res.output
        assert (await api.get("/campaigns", headers=headers)).status_code == 401


async def test_a_role_that_may_not_answers_403(db_engine):
    await make_campaign(db_engine)
    agent = await new_key(db_engine, "ann", "agent")
    supervisor = await new_key(db_engine, "sue", "supervisor")
    async with client(db_engine) as api:
        refused = [await api.post("/campaigns/spring/start", headers=agent),
                   await api.get("/campaigns/spring/summary", headers=agent),
                   await api.post("/campaigns/spring/cancel", headers=supervisor),
                   await api.post("/campaigns", json={"name": "x"}, headers=supervisor),
                   await api.delete("/dnc/2025550100", headers=supervisor),
                   await api.get("/audit", headers=supervisor)]
        allowed = await api.get("/campaigns/spring/summary", headers=supervisor)
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all(r.json()["error"] == "forbidden" for r in refused)
    assert allowed.status_code == 200


async def test_a_key_never_outranks_its_user(db_engine):
    await new_key(db_engine, "ann", "agent")
    async with db_engine.begin() as conn:
        try:
            await key_logic.create_key(conn, "ann", "sneaky", "admin")
        except admin.AdminError as exc:
            assert "cannot be admin" in str(exc)
        else:
            raise AssertionError("an agent got an admin key")


async def test_a_key_scoped_to_a_campaign_gets_404_for_other_campaigns_objects(db_engine):
    own = await make_campaign(db_engine, "own")
    other = await make_campaign(db_engine, "other")
    admin_key = await new_key(db_engine)
    scoped = await new_key(db_engine, campaigns=["own"], name="scoped")
    async with client(db_engine) as api:
        added = await api.post("/campaigns/other/contacts", json={"phone": "2025550101"}, headers=admin_key)
        contact = added.json()["contact_id"]
        aid = await call(db_engine, other, contact, Result.LIVE_ANSWER, at=utcnow())
        listed = await api.get("/campaigns", headers=scoped)
        answers = [await api.get("/campaigns/other", headers=scoped),
                   await api.get(f"/campaigns/{other}", headers=scoped),
                   await api.get("/campaigns/other/summary", headers=scoped),
                   await api.get(f"/campaigns/other/contacts/{contact}", headers=scoped),
                   await api.post("/campaigns/other/contacts", json={"phone": "2025550102"}, headers=scoped),
                   await api.post(f"/attempts/{aid}/disposition", json={"disposition": "interested"}, headers=scoped),
                   await api.get("/calls?campaign=other", headers=scoped),
                   await api.get("/campaigns/other/webhooks", headers=scoped)]
        mine = await api.get("/calls", headers=scoped)
    assert [c["id"] for c in listed.json()] == [own]
    assert [r.status_code for r in answers] == [404] * len(answers)
    assert all(r.json()["error"] == "not_found" for r in answers)
    assert mine.status_code == 200 and mine.json() == []  # its own campaign by default


async def test_the_rate_limit_per_key_answers_429_with_retry_after(db_engine):
    one = await new_key(db_engine, name="one")
    two = await new_key(db_engine, name="two")
    async with client(db_engine, rate=1, burst=3) as api:
        codes = [(await api.get("/campaigns", headers=one)).status_code for _ in range(5)]
        other = await api.get("/campaigns", headers=two)
        limited = await api.get("/campaigns", headers=one)
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    assert other.status_code == 200  # per key
    assert limited.json()["error"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1


async def test_no_key_secret_reaches_the_log(db_engine, caplog):
    headers = await new_key(db_engine)
    secret = headers["Authorization"].removeprefix("Bearer ")
    caplog.set_level(logging.DEBUG)
    async with client(db_engine) as api:
        await api.get("/campaigns", headers=headers)
        await api.post("/campaigns", json={"name": 1}, headers=headers)
        await api.get("/campaigns", headers={"Authorization": headers["Authorization"] + "x"})
    assert caplog.records and secret not in caplog.text


# --- bad input --------------------------------------------------------------------------------


async def test_every_validation_failure_names_the_field_and_the_reason(db_engine):
    await make_campaign(db_engine)
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        typed = await api.post("/campaigns/spring/contacts/batch", headers=headers,
                               json={"contacts": [{"phone": "2025550100"}, {"phone": ["x"], "colour": "red"}]})
        setting = await api.post("/campaigns", headers=headers,
                                 json={"name": "c2", "settings": {"window": "07:00-22:00", "lines": "many", "speed": 3}})
        broken = await api.post("/campaigns", headers={**headers, "Content-Type": "application/json"}, content=b"{nope")
        query = await api.get("/calls?limit=0", headers=headers)
        number = await api.get("/dnc/call-me-maybe", headers=headers)
    assert typed.status_code == 422
    assert {e["field"] for e in typed.json()["errors"]} == {"contacts.1.phone", "contacts.1.colour"}
    assert setting.status_code == 422
    # unknown keys first (the schema), then the CLI's checks, each naming its setting
    assert {e["field"] for e in setting.json()["errors"]} == {"settings.speed"}
    async with client(db_engine) as api:
        setting = await api.post("/campaigns", headers=headers,
                                 json={"name": "c2", "settings": {"window": "07:00-22:00", "lines": "many"}})
    errors = {e["field"]: e["reason"] for e in setting.json()["errors"]}
    assert "08:00-21:00" in errors["settings.window"] and "whole number" in errors["settings.lines"]
    assert broken.status_code == 422 and broken.json()["errors"][0]["reason"]
    assert query.status_code == 422 and query.json()["errors"][0]["field"] == "query.limit"
    assert number.status_code == 422 and number.json()["errors"] == [
        {"field": "number", "reason": number.json()["message"]}]


async def test_a_body_over_the_limit_is_refused_with_413_before_anything_is_written(db_engine):
    await make_campaign(db_engine)
    headers = await new_key(db_engine)
    big = {"contacts": [{"phone": f"20255{i:05d}", "first_name": "x" * 100} for i in range(2000)]}
    async with client(db_engine, max_body=64 * 1024) as api:
        r = await api.post("/campaigns/spring/contacts/batch", json=big, headers=headers)

        async def chunks():
            for _ in range(100):
                yield b" " * 1024
        streamed = await api.post("/campaigns/spring/contacts/batch", content=chunks(),
                                  headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert streamed.status_code == 413
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(CampaignContact))).scalar_one() == 0


async def test_sql_injection_shaped_input_is_stored_as_text_and_harms_nothing(db_engine):
    headers = await new_key(db_engine)
    evil = "x'; DROP TABLE contacts; --"
    async with client(db_engine) as api:
        created = await api.post("/campaigns", headers=headers, json={"name": evil, "settings": {"message": evil}})
        cid = created.json()["campaign"]["id"]
        added = await api.post(f"/campaigns/{cid}/contacts", headers=headers,
                               json={"external_id": evil, "first_name": "Robert'); DROP TABLE attempts;--",
                                     "phone": "2025550100", "custom": {evil: evil}})
        found = await api.get(f"/campaigns/{cid}/contacts", params={"external_id": evil}, headers=headers)
        odd = [await api.get(f"/campaigns/{cid}/contacts", params={"state": evil}, headers=headers),
               await api.get("/calls", params={"number": "1' OR '1'='1", "campaign": cid}, headers=headers),
               await api.get("/calls", params={"result": evil}, headers=headers),
               await api.get("/audit", params={"actor": "%' OR 1=1 --"}, headers=headers)]
    assert created.status_code == 201 and created.json()["campaign"]["name"] == evil
    assert added.status_code == 201 and added.json()["custom"] == {evil: evil}
    assert [c["external_id"] for c in found.json()] == [evil]
    assert [r.status_code for r in odd] == [422, 200, 422, 200]
    assert odd[1].json() == [] and odd[3].json() == []
    async with db_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"contacts", "attempts", "campaigns"} <= tables


# --- contacts: one path with the CSV import ----------------------------------------------------

ROWS = [
    {"external_id": "c1", "first_name": "Ann", "cell": "(202) 555-0111"},  # dialable
    {"external_id": "c2", "first_name": "Bob", "cell": "202-555-0112", "dnc": True},  # own DNC flag
    {"external_id": "c3", "first_name": "Cy", "cell": "202 555 0113"},  # on the DNC list
    {"external_id": "c4", "first_name": "Di", "cell": "1-800-FLOWERS"},  # invalid
    {"external_id": "c5", "first_name": "Ed", "cell": "+44 20 7946 0958"},  # forbidden country
    {"external_id": "c6", "first_name": "Flo", "home": "2025550116"},  # no cell: no phone
    {"external_id": "c1", "first_name": "Ann again", "cell": "2025550199"},  # same id: duplicate
    {"external_id": "c7", "first_name": "Gus", "cell": "2025550117", "dnc": "maybe"},  # malformed
]


def _csv(path, rows) -> None:
    fields = ["external_id", "first_name", "cell", "home", "dnc"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("yes" if v is True else v) for k, v in r.items()})


async def _memberships(engine, campaign_id: int) -> list[tuple]:
    cc, a = CampaignContact.__table__, Attempt.__table__
    async with engine.connect() as conn:
        members = (await conn.execute(select(cc.c.contact_id, cc.c.state, cc.c.number, cc.c.last_result, cc.c.attempts)
                                      .where(cc.c.campaign_id == campaign_id).order_by(cc.c.contact_id))).all()
        tries = (await conn.execute(select(a.c.contact_id, a.c.result, a.c.number).where(a.c.campaign_id == campaign_id)
                                    .order_by(a.c.contact_id))).all()
    return [tuple(m) for m in members] + [tuple(t) for t in tries]


async def test_batch_add_gives_exactly_what_the_csv_import_gives_for_the_same_rows(db_engine, tmp_path):
    by_csv = await make_campaign(db_engine, "by-csv", phone_field="cell")
    by_api = await make_campaign(db_engine, "by-api", phone_field="cell")
    headers = await new_key(db_engine)
    async with db_engine.begin() as conn:
        await admin.dnc_add(conn, "+12025550113")
    path = tmp_path / "rows.csv"
    _csv(path, ROWS)
    async with db_engine.begin() as conn:
        file_report = await importer.import_contacts(conn, "by-csv", path)
    async with client(db_engine) as api:
        r = await api.post("/campaigns/by-api/contacts/batch", json={"contacts": ROWS}, headers=headers)
    assert r.status_code == 200
    body = r.json()
    expected = file_report.as_dict()
    for key in ("rows", "imported", "predial", "duplicates", "malformed"):
        assert body[key] == expected[key], key
    assert body["new_contacts"] == 0  # the same people: the CSV made them, the API found them
    assert [(i["index"], i["reason"]) for i in body["issues"]] == [
        (1, "dnc"), (2, "dnc"), (3, "invalid_number"), (4, "forbidden_destination"), (5, "no_phone"),
        (6, "duplicate"), (7, "malformed")]
    assert [(i.line - 2, i.reason) for i in file_report.issues] == [(i["index"], i["reason"]) for i in body["issues"]]
    assert body["contact_ids"][6] == body["contact_ids"][0] and body["contact_ids"][7] is None
    assert await _memberships(db_engine, by_api) == await _memberships(db_engine, by_csv)


async def test_adding_the_same_contacts_again_changes_nothing(db_engine):
    cid = await make_campaign(db_engine, phone_field="cell")
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        first = await api.post("/campaigns/spring/contacts/batch", json={"contacts": ROWS[:6]}, headers=headers)
        before = await _memberships(db_engine, cid)
        again = await api.post("/campaigns/spring/contacts/batch", json={"contacts": ROWS[:6]}, headers=headers)
        one = await api.post("/campaigns/spring/contacts", json=ROWS[0], headers=headers)
    assert first.json()["imported"] == 2  # c1, c3; the others skipped with their pre-dial result
    assert again.json()["duplicates"] == 6 and again.json()["imported"] == 0
    assert one.status_code == 200 and one.json()["status"] == "duplicate"
    assert await _memberships(db_engine, cid) == before


async def test_one_contact_added_is_pending_or_skipped_with_its_pre_dial_result(db_engine):
    await make_campaign(db_engine, phone_field="cell")
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        good = await api.post("/campaigns/spring/contacts", json=ROWS[0], headers=headers)
        flagged = await api.post("/campaigns/spring/contacts", json=ROWS[1], headers=headers)
        malformed = await api.post("/campaigns/spring/contacts", json=ROWS[7], headers=headers)
    assert good.status_code == 201
    assert (good.json()["state"], good.json()["number"], good.json()["predial"]) == ("pending", "+12025550111", None)
    assert flagged.status_code == 201
    assert (flagged.json()["state"], flagged.json()["predial"]) == ("skipped", "dnc")
    assert [a["result"] for a in flagged.json()["attempts"]] == ["dnc"]  # counted in the summary
    assert malformed.status_code == 422 and "not yes/no" in malformed.json()["message"]


async def test_get_one_contact_with_its_attempts(db_engine):
    cid = await make_campaign(db_engine)
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        contact = (await api.post("/campaigns/spring/contacts", json={"phone": "2025550120"}, headers=headers)).json()
        first = await call(db_engine, cid, contact["contact_id"], Result.BUSY, at=utcnow() - dt.timedelta(hours=1))
        second = await call(db_engine, cid, contact["contact_id"], Result.LIVE_ANSWER, at=utcnow(), talk=42)
        got = await api.get(f"/campaigns/spring/contacts/{contact['contact_id']}", headers=headers)
        missing = await api.get("/campaigns/spring/contacts/999999", headers=headers)
    body = got.json()
    assert [(a["id"], a["result"]) for a in body["attempts"]] == [(first, "busy"), (second, "live_answer")]
    assert body["attempts"][1]["talk_seconds"] == 42 and body["state"] == "done"
    assert missing.status_code == 404


async def test_update_changes_the_fields_and_the_waiting_contact_s_number(db_engine):
    cid = await make_campaign(db_engine)
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        c = (await api.post("/campaigns/spring/contacts", json={"phone": "2025550130", "first_name": "A"},
                            headers=headers)).json()
        r = await api.patch(f"/campaigns/spring/contacts/{c['contact_id']}", headers=headers,
                            json={"first_name": "Anna", "phone": "2025550131", "custom": {"tier": "gold"}})
        too_long = await api.patch(f"/campaigns/spring/contacts/{c['contact_id']}", headers=headers,
                                   json={"last_name": "x" * 500})
        unknown = await api.patch(f"/campaigns/spring/contacts/{c['contact_id']}", headers=headers,
                                  json={"external_id": "new-id"})
    assert r.status_code == 200
    assert r.json()["changed"] == ["custom", "first_name", "phone"]
    assert (r.json()["first_name"], r.json()["number"], r.json()["custom"]) == ("Anna", "+12025550131", {"tier": "gold"})
    assert (await membership(db_engine, cid, c["contact_id"])).state == "pending"
    assert too_long.status_code == 422 and "longer than 120" in too_long.json()["message"]
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "external_id"
    [row] = await audit_rows(db_engine, "contacts.update")
    assert row.details["first_name"] == {"old": "A", "new": "Anna"}


async def test_delete_makes_the_contact_deleted_and_it_is_never_claimed(db_engine):
    from agi.db.claim import claim_due

    cid = await make_campaign(db_engine)
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        c = (await api.post("/campaigns/spring/contacts", json={"phone": "2025550140"}, headers=headers)).json()
        r = await api.delete(f"/campaigns/spring/contacts/{c['contact_id']}", headers=headers)
        again = await api.delete(f"/campaigns/spring/contacts/{c['contact_id']}", headers=headers)
        gone = await api.delete("/campaigns/spring/contacts/424242", headers=headers)
    assert r.json() == {"contact_id": c["contact_id"], "was": "pending", "state": "deleted"}
    assert again.status_code == 200 and again.json()["was"] == "deleted"
    assert gone.status_code == 404
    async with db_engine.begin() as conn:
        assert await claim_due(conn, cid, "d1", 10, utcnow() + dt.timedelta(days=1)) == []
    assert [r.target for r in await audit_rows(db_engine, "contacts.delete")][0].endswith(f"contact {c['contact_id']}")


async def test_a_late_call_report_leaves_a_deleted_contact_deleted(db_engine):
    cid = await make_campaign(db_engine)
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        c = (await api.post("/campaigns/spring/contacts", json={"phone": "2025550141"}, headers=headers)).json()
        aid = await call(db_engine, cid, c["contact_id"], Result.LIVE_ANSWER, at=utcnow(), finish=False)
        await api.delete(f"/campaigns/spring/contacts/{c['contact_id']}", headers=headers)
    from agi.db import attempts as db

    async with db_engine.begin() as conn:
        await db.finish_attempt(conn, aid, Result.BUSY, ended_at=utcnow())
    assert (await membership(db_engine, cid, c["contact_id"])).state == ContactState.DELETED.value


# --- campaigns ----------------------------------------------------------------------------------


async def test_create_and_update_use_the_cli_s_settings_and_checks(db_engine):
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        made = await api.post("/campaigns", headers=headers, json={
            "name": "api-made", "settings": {"mode": "predictive", "queue": "sales", "countries": ["US", "CA"],
                                             "retry": {"busy": 5, "no_answer": 60}, "window": "09:00-20:00",
                                             "wait_for_beep": False, "lines": 40}})
        no_queue = await api.post("/campaigns", headers=headers, json={"name": "p2", "settings": {"mode": "predictive"}})
        changed = await api.patch("/campaigns/api-made", headers=headers, json={"settings": {"lines": 12}})
        same_name = await api.post("/campaigns", headers=headers, json={"name": "api-made"})
    assert made.status_code == 201
    c = made.json()["campaign"]
    assert (c["mode"], c["queue_name"], c["allowed_countries"], c["retry_rules"], c["window_start"], c["lines"],
            c["wait_for_beep"]) == ("predictive", "sales", ["CA", "US"], {"busy": 5, "no_answer": 60}, "09:00:00",
                                    40, False)
    assert no_queue.status_code == 422 and "needs agents" in no_queue.json()["message"]
    assert changed.json() == {"changed": {"lines": {"old": 40, "new": 12}}}
    assert same_name.status_code == 422 and "already exists" in same_name.json()["message"]


async def test_list_show_schedule_start_stop_and_cancel(db_engine):
    cid = await make_campaign(db_engine)
    headers = await new_key(db_engine)
    day = dt.date.today()
    async with client(db_engine) as api:
        await api.post("/campaigns/spring/contacts/batch", headers=headers,
                       json={"contacts": [{"phone": f"20255502{i:02d}"} for i in range(5)]})
        not_yet = await api.post("/campaigns/spring/start", headers=headers)
        sched = await api.post("/campaigns/spring/schedule", headers=headers, json={
            "start": str(day), "stop": str(day + dt.timedelta(days=30)), "days": "all", "hours": "09:00-17:00"})
        started = await api.post("/campaigns/spring/start", headers=headers)
        shown = await api.get(f"/campaigns/{cid}", headers=headers)
        stopped = await api.post("/campaigns/spring/stop", headers=headers)
        cancelled = await api.post("/campaigns/spring/cancel", headers=headers)
        listed = await api.get("/campaigns", headers=headers)
    assert not_yet.status_code == 409 and "not scheduled" in not_yet.json()["message"]
    assert sched.json()["state"] == "scheduled"
    assert (started.json()["state"], started.json()["was"]) == ("running", "scheduled")
    assert any("no dialer" in w for w in started.json()["warnings"])
    assert shown.json()["campaign"]["state"] == "running" and shown.json()["contacts"]["pending"] == 5
    assert stopped.json()["state"] == "stopped"
    assert (cancelled.json()["state"], cancelled.json()["cancelled"]) == ("stopped_by_admin", 5)
    assert listed.json()[0]["state"] == "stopped_by_admin"
    actions = [r.action for r in await audit_rows(db_engine, "campaign.cancel")]
    assert actions == ["campaign.cancel"]


# --- DNC ---------------------------------------------------------------------------------------


async def test_dnc_add_check_remove_and_bulk(db_engine):
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        added = await api.put("/dnc/(202) 555-0150", headers=headers, json={"source": "crm"})
        again = await api.put("/dnc/+12025550150", headers=headers)
        check = await api.get("/dnc/2025550150", headers=headers)
        bulk = await api.post("/dnc/batch", headers=headers,
                              json={"numbers": ["2025550151", "+12025550150", "not a number", "2025550152"]})
        removed = await api.delete("/dnc/2025550150", headers=headers)
        absent = await api.delete("/dnc/2025550150", headers=headers)
        after = await api.get("/dnc/2025550150", headers=headers)
    assert (added.status_code, added.json()) == (201, {"number": "+12025550150", "added": True})
    assert (again.status_code, again.json()["added"]) == (200, False)
    assert check.json()["listed"] is True and check.json()["source"] == "crm"
    assert bulk.json()["added"] == 2 and bulk.json()["already_listed"] == 1
    assert [(i["index"], i["reason"]) for i in bulk.json()["issues"]] == [(2, "invalid_number")]
    assert removed.status_code == 200 and absent.status_code == 404
    assert after.json()["listed"] is False


async def test_a_number_put_on_the_dnc_list_skips_contacts_added_after(db_engine):
    await make_campaign(db_engine)
    headers = await new_key(db_engine)
    async with client(db_engine) as api:
        await api.put("/dnc/2025550160", headers=headers)
        r = await api.post("/campaigns/spring/contacts", json={"phone": "202-555-0160"}, headers=headers)
    assert (r.json()["state"], r.json()["predial"]) == ("skipped", "dnc")


# --- reports ------------------------------------------------------------------------------------


async def test_summary_and_call_log_are_the_reports_of_the_cli(db_engine):
    cid = await make_campaign(db_engine)
    headers = await new_key(db_engine)
    t0 = utcnow() - dt.timedelta(hours=2)
    async with client(db_engine) as api:
        ids = (await api.post("/campaigns/spring/contacts/batch", headers=headers,
                              json={"contacts": [{"phone": f"20255503{i:02d}"} for i in range(4)]})).json()["contact_ids"]
        await call(db_engine, cid, ids[0], Result.BUSY, at=t0)
        await call(db_engine, cid, ids[1], Result.LIVE_ANSWER, at=t0 + dt.timedelta(minutes=1), talk=90)
        await call(db_engine, cid, ids[2], Result.NO_ANSWER, at=t0 + dt.timedelta(minutes=2))
        summary = await api.get("/campaigns/spring/summary", headers=headers)
        log = await api.get("/calls", params={"campaign": "spring", "result": "busy,live_answer"}, headers=headers)
        bad_date = await api.get("/calls", params={"from": "yesterday"}, headers=headers)
    async with db_engine.connect() as conn:
        expected = (await reports.summary(conn, cid)).as_dict()
        expected_log = await reports.call_log(conn, campaign=cid, result="busy,live_answer")
    got = summary.json()
    assert got["cells"] == expected["cells"] and got["rows"] == [
        [dict(cell) for cell in row] for row in expected["rows"]]
    assert [r["attempt_id"] for r in log.json()] == [r.attempt_id for r in expected_log]
    assert [(r["result"], r["class"]) for r in log.json()] == [("live_answer", "target"), ("busy", None)]
    assert log.json()[0]["class_label"] and log.json()[0]["result_label"] == "Live Answer"
    assert bad_date.status_code == 422 and bad_date.json()["errors"][0]["field"] == "from"


async def test_the_csv_call_log_streams_every_row_across_pages_even_with_equal_times(db_engine):
    from agi.web.routes import reports as route

    cid = await make_campaign(db_engine, phone_field="cell")
    headers = await new_key(db_engine)
    n = route.PAGE * 2 + 37
    async with client(db_engine) as api:
        # every row without a cell phone: one pre-dial attempt each, all with the same time
        await api.post("/campaigns/spring/contacts/batch", headers=headers,
                       json={"contacts": [{"external_id": f"e{i}", "cell": "12" if i % 2 else ""} for i in range(n)]})
        r = await api.get("/calls.csv", params={"campaign": "spring"}, headers=headers)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert len(rows) == n and len({row["attempt_id"] for row in rows}) == n
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(func.count(func.distinct(Attempt.queued_at))))).scalar_one() == 1
        expected = await reports.call_log(conn, campaign=cid, limit=None)
    assert [row["attempt_id"] for row in rows] == [e.attempt_id for e in expected]


# --- dispositions -------------------------------------------------------------------------------


async def test_an_agent_sets_a_disposition_on_a_live_answer_only(db_engine):
    cid = await make_campaign(db_engine)
    agent = await new_key(db_engine, "ann", "agent")
    admin_key = await new_key(db_engine)
    async with client(db_engine) as api:
        ids = (await api.post("/campaigns/spring/contacts/batch", headers=admin_key,
                              json={"contacts": [{"phone": "2025550170"}, {"phone": "2025550171"}]})).json()["contact_ids"]
        live = await call(db_engine, cid, ids[0], Result.LIVE_ANSWER, at=utcnow(), talk=30)
        busy = await call(db_engine, cid, ids[1], Result.BUSY, at=utcnow())
        when = (utcnow() + dt.timedelta(hours=3)).replace(microsecond=0)
        ok = await api.post(f"/attempts/{live}/disposition", headers=agent,
                            json={"disposition": "call_back", "callback_at": when.isoformat()})
        on_busy = await api.post(f"/attempts/{busy}/disposition", headers=agent, json={"disposition": "interested"})
        ivr = await api.post(f"/attempts/{live}/disposition", headers=agent, json={"disposition": "no_key"})
        unknown = await api.post("/attempts/nope/disposition", headers=agent, json={"disposition": "interested"})
        opt_out = await api.post(f"/attempts/{live}/disposition", headers=agent, json={"disposition": "opt_out"})
        listed = await api.get("/dnc/2025550170", headers=agent)
    assert ok.status_code == 200 and ok.json()["disposition"] == "call_back"
    assert dt.datetime.fromisoformat(ok.json()["callback_at"]) == when
    assert on_busy.status_code == 422 and "Line Busy" in on_busy.json()["message"]
    assert ivr.status_code == 422 and ivr.json()["errors"][0]["field"] == "disposition"
    assert unknown.status_code == 404
    assert opt_out.json()["disposition"] == "opt_out" and listed.json()["listed"] is True


# --- audit --------------------------------------------------------------------------------------


async def test_api_and_cli_changes_land_in_the_audit_log_with_who_and_from_where(db_engine):
    headers = await new_key(db_engine, "alice", name="crm")
    async with client(db_engine) as api:
        await api.put("/dnc/2025550180", headers=headers)
        await api.get("/dnc/2025550180", headers=headers)  # a read: not audited
    res = await cli(db_engine, "dnc", "add", "2025550181", "--source", "manual")
    assert res.exit_code == 0, res.output
    rows = await audit_rows(db_engine, "dnc.add")
    assert [(r.target, r.source.split()[0]) for r in rows] == [("+12025550180", "api"), ("2025550181", "cli")]
    assert rows[0].actor.startswith("alice (key crm ") and rows[0].source == "api 127.0.0.1"
    assert rows[1].details == {"number": "2025550181", "source": "manual", "region": "US"}
    async with client(db_engine) as api:
        listed = await api.get("/audit", params={"action": "dnc."}, headers=headers)
    assert [e["target"] for e in listed.json()] == ["2025550181", "+12025550180"]
