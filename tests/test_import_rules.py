"""The import's rules of issue "Contacts at scale, and do-not-call always wins", one test per rule,
on SQLite and PostgreSQL: DNC precedence, valid numbers, identity and updates, messy rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agi import importer
from agi.admin.campaigns import create_campaign
from agi.contacts import update_contact
from agi.db.engine import make_sessionmaker
from agi.db.models import Attempt, CampaignContact, Contact
from agi.errors import AdminError
from agi.outcomes import ContactState, Result

_cc = CampaignContact.__table__
_ct = Contact.__table__
_at = Attempt.__table__


async def campaign(engine, name: str, **values) -> int:
    async with make_sessionmaker(engine)() as session, session.begin():
        c, _ = await create_campaign(session, name, values)
        return c.id


async def run(engine, name: str, path: Path, **options) -> importer.ImportReport:
    async with engine.begin() as conn:
        return await importer.import_contacts(conn, name, path, **options)


async def memberships(engine, campaign_id: int) -> dict[str, tuple]:
    """external id (or first name) -> (state, last result, number, contact's dnc flag)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(_ct.c.external_id, _ct.c.first_name, _cc.c.state, _cc.c.last_result, _cc.c.number, _ct.c.dnc)
            .join(_ct, _ct.c.id == _cc.c.contact_id).where(_cc.c.campaign_id == campaign_id))).all()
    return {r.external_id or r.first_name: (r.state, r.last_result, r.number, r.dnc) for r in rows}


async def count(engine, table) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# --- DNC always wins ----------------------------------------------------------------------------


async def test_a_dnc_row_for_a_contact_of_another_campaign_makes_it_dnc_in_every_campaign(db_engine, tmp_path):
    spring = await campaign(db_engine, "spring")
    autumn = await campaign(db_engine, "autumn")
    await run(db_engine, "spring", write(tmp_path, "a.csv", "id,name,phone\nC1,Ann,202-555-0143\nC2,Bob,202-555-0144\n"))
    report = await run(db_engine, "autumn", write(tmp_path, "b.csv", "id,name,phone,dnc\nC1,Ann,202-555-0143,yes\n"))

    assert report.marked_dnc == 1 and report.duplicates == 0
    assert [(i.line, i.reason) for i in report.issues] == [(2, importer.MARKED_DNC), (2, Result.DNC.value)]
    # at once, in the campaign it was already in: skipped with result dnc, its pre-dial attempt written
    assert (await memberships(db_engine, spring))["C1"] == ("skipped", "dnc", "+12025550143", True)
    assert (await memberships(db_engine, spring))["C2"][:2] == ("pending", None)
    assert (await memberships(db_engine, autumn))["C1"] == ("skipped", "dnc", "+12025550143", True)
    async with db_engine.connect() as conn:
        results = (await conn.execute(select(_at.c.campaign_id, _at.c.result, _at.c.detail))).all()
    assert sorted((r.campaign_id, r.result) for r in results) == [(spring, "dnc"), (autumn, "dnc")]
    assert any("import line 2" in r.detail for r in results if r.campaign_id == spring)


@pytest.mark.parametrize("batch", [5000, 1], ids=["one batch", "a batch per row"])
async def test_a_later_dnc_row_of_the_same_file_wins_over_an_earlier_row(db_engine, tmp_path, monkeypatch, batch):
    monkeypatch.setattr(importer.core, "BATCH", batch)
    cid = await campaign(db_engine, "c")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", "id,name,phone,dnc\nC1,Ann,202-555-0143,\n"
                                                              "C1,Ann,202-555-0143,yes\n"))
    assert (await memberships(db_engine, cid))["C1"] == ("skipped", "dnc", "+12025550143", True)
    assert report.imported + report.predial[Result.DNC.value] == 1


async def test_a_later_file_with_the_dnc_flag_marks_an_existing_contact_and_counts_it(db_engine, tmp_path):
    cid = await campaign(db_engine, "c")
    await run(db_engine, "c", write(tmp_path, "a.csv", "id,name,phone\nC1,Ann,202-555-0143\nC2,Bob,202-555-0144\n"))
    report = await run(db_engine, "c", write(tmp_path, "b.csv", "id,name,phone,dnc\nC2,Bob,202-555-0144,no\n"
                                                              "C1,Ann,202-555-0143,yes\n"))
    assert (report.marked_dnc, report.duplicates) == (1, 1)
    assert ("Marked DNC (contacts already there)", 1) in report.summary()
    assert [i.line for i in report.issues if i.reason == importer.MARKED_DNC] == [3]
    assert (await memberships(db_engine, cid))["C1"] == ("skipped", "dnc", "+12025550143", True)
    again = await run(db_engine, "c", write(tmp_path, "b.csv", "id,name,phone,dnc\nC2,Bob,202-555-0144,no\n"
                                                             "C1,Ann,202-555-0143,yes\n"))
    assert (again.marked_dnc, again.duplicates) == (0, 2)  # idempotent


async def test_the_dnc_flag_beats_an_empty_phone(db_engine, tmp_path):
    cid = await campaign(db_engine, "c")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", "id,name,phone,dnc\nC1,Ann,,yes\n"))
    assert report.predial == {Result.DNC.value: 1}
    assert (await memberships(db_engine, cid))["C1"][:2] == ("skipped", "dnc")


async def test_nothing_but_dnc_remove_turns_a_dnc_contact_dialable_again(db_engine, tmp_path):
    cid = await campaign(db_engine, "c")
    await run(db_engine, "c", write(tmp_path, "a.csv", "id,name,phone,dnc\nC1,Ann,202-555-0143,yes\n"))
    again = await run(db_engine, "c", write(tmp_path, "b.csv", "id,name,phone,dnc\nC1,Ann,202-555-0143,no\n"))
    assert again.marked_dnc == 0 and (await memberships(db_engine, cid))["C1"][3] is True
    async with db_engine.connect() as conn:
        contact_id = (await conn.execute(select(_ct.c.id))).scalar_one()
    with pytest.raises(AdminError, match="dnc remove"):
        async with db_engine.begin() as conn:
            await update_contact(conn, cid, contact_id, {"dnc": False})
    from agi.admin.dnc import dnc_remove

    async with db_engine.begin() as conn:
        await importer.import_dnc(conn, write(tmp_path, "dnc.txt", "+12025550143\n"))
        lifted = await dnc_remove(conn, "+12025550143")
    assert lifted
    assert (await memberships(db_engine, cid))["C1"][3] is False


async def test_a_dnc_import_counts_the_waiting_contacts_it_stops(db_engine, tmp_path):
    await campaign(db_engine, "c")
    rows = "".join(f"C{i},P{i},202-555-{i:04d}\n" for i in range(100, 400))
    await run(db_engine, "c", write(tmp_path, "a.csv", "id,name,phone\n" + rows))
    numbers = "".join(f"+1202555{i:04d}\n" for i in range(100, 200)) + "+13125550100\n"
    async with db_engine.begin() as conn:
        report = await importer.import_dnc(conn, write(tmp_path, "dnc.txt", numbers))
    assert (report.added, report.waiting) == (101, 100)


# --- numbers ------------------------------------------------------------------------------------


async def test_possible_but_invalid_numbers_are_invalid_records(db_engine, tmp_path):
    await campaign(db_engine, "c")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", 'name,phone\nAnn,123-456-7890\nBob,"(212) 055-0147"\n'
                                                              "Cy,202-555-0143\n"))
    assert report.predial == {Result.INVALID_NUMBER.value: 2} and report.imported == 1
    async with db_engine.connect() as conn:
        states = dict((await conn.execute(select(_ct.c.last_name, _cc.c.state).join(
            _ct, _ct.c.id == _cc.c.contact_id))).all())
    assert states == {"Ann": "skipped", "Bob": "skipped", "Cy": "pending"}


async def test_the_report_counts_contacts_whose_number_spans_several_time_zones(db_engine, tmp_path):
    await campaign(db_engine, "c")
    # 208 (Idaho): Boise and Los Angeles; 212: New York only
    report = await run(db_engine, "c", write(tmp_path, "a.csv", "name,phone\nAnn,208-555-0100\nBob,212-555-0100\n"))
    assert report.ambiguous_zone == 1
    assert any("several time zones" in n for n in report.notes())


# --- identity and updates ---------------------------------------------------------------------


async def test_without_an_id_the_same_number_written_another_way_is_the_same_contact(db_engine, tmp_path):
    await campaign(db_engine, "c")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", 'name,phone\nAnn,"(202) 555-0143"\nann,+1 202 555 0143\n'))
    assert (report.new_contacts, report.duplicates) == (1, 1)


async def test_without_an_id_two_people_sharing_a_number_are_two_contacts(db_engine, tmp_path):
    await campaign(db_engine, "c")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", "name,phone,email\nLee,202-555-0143,ann@example.com\n"
                                                              "Lee,202-555-0143,bob@example.com\n"))
    assert (report.new_contacts, report.duplicates) == (2, 0)


async def test_id_field_names_the_crm_id_column(db_engine, tmp_path):
    cid = await campaign(db_engine, "c")
    path = write(tmp_path, "a.csv", "CRM_ID,id,name,phone\nX1,1,Ann,202-555-0143\nX2,1,Bob,202-555-0144\n")
    report = await run(db_engine, "c", path, id_field="CRM_ID")
    assert report.new_contacts == 2
    assert set(await memberships(db_engine, cid)) == {"X1", "X2"}


async def test_a_reimport_with_changed_fields_updates_them_and_says_what_changed(db_engine, tmp_path):
    cid = await campaign(db_engine, "c")
    await run(db_engine, "c", write(tmp_path, "a.csv", "id,first_name,phone,tier\nC1,Ann,202-555-0143,gold\n"))
    changed = write(tmp_path, "b.csv", "id,first_name,phone,tier\nC1,Anne,202-555-0199,silver\n")
    report = await run(db_engine, "c", changed)
    assert (report.updated, report.duplicates, report.new_contacts) == (1, 0, 0)
    detail = next(i.detail for i in report.issues if i.reason == importer.UPDATED)
    assert "first_name: 'Ann' -> 'Anne'" in detail and "phone: '202-555-0143' -> '202-555-0199'" in detail
    assert "tier: silver" in detail
    async with db_engine.connect() as conn:
        row = (await conn.execute(select(_ct.c.first_name, _ct.c.phone, _ct.c.custom))).one()
    assert row == ("Anne", "202-555-0199", {"tier": "silver"})
    assert (await memberships(db_engine, cid))["C1"][2] == "+12025550199"  # the waiting membership's number
    again = await run(db_engine, "c", changed)
    assert (again.updated, again.duplicates) == (0, 1)  # the same file twice changes nothing
    kept = await run(db_engine, "c", write(tmp_path, "c.csv", "id,first_name,phone\nC1,Zed,202-555-0199\n"),
                     update=False)
    assert kept.updated == 0
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(_ct.c.first_name))).scalar_one() == "Anne"


# --- messy rows ---------------------------------------------------------------------------------


async def test_a_short_row_imports_with_the_missing_fields_empty_and_a_warning(db_engine, tmp_path):
    cid = await campaign(db_engine, "c")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", "id,name,phone,company\nC1,Ann,202-555-0143\n"))
    assert report.imported == 1 and report.warnings == 1
    assert [(i.line, i.reason) for i in report.issues] == [(2, importer.WARNING)]
    assert "company left empty" in report.issues[0].detail
    assert (await memberships(db_engine, cid))["C1"][0] == "pending"


async def test_a_long_row_keeps_its_extra_fields_under_a_reported_name(db_engine, tmp_path):
    await campaign(db_engine, "c")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", "id,name,phone\nC1,Ann,202-555-0143,vip,late\n"))
    assert report.imported == 1 and report.warnings == 1
    assert "extra_1, extra_2" in report.issues[0].detail
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(_ct.c.custom))).scalar_one() == {"extra_1": "vip", "extra_2": "late"}


@pytest.mark.parametrize("bad, why", [(b"A\x00nn", "NUL byte"), (b"M\xfcller", "not UTF-8")])
async def test_a_nul_byte_or_undecodable_bytes_are_that_rows_error_only(db_engine, tmp_path, bad, why):
    await campaign(db_engine, "c")
    data = b"id,name,phone\nC1,Ann,202-555-0143\nC2," + bad + b",202-555-0144\nC3,Cy,202-555-0145\n"
    report = await run(db_engine, "c", write(tmp_path, "a.csv", data))
    assert report.imported == 2 and report.malformed == 1
    assert [(i.line, i.reason) for i in report.issues] == [(3, importer.MALFORMED)]
    assert why in report.issues[0].detail
    if why == "not UTF-8":
        assert "--encoding cp1252" in report.issues[0].detail
        assert any("line 3" in n and "--encoding cp1252" in n for n in report.notes())
    assert await count(db_engine, Contact) == 2


async def test_a_header_that_is_not_utf8_names_the_line_and_the_encoding_option(db_engine, tmp_path):
    await campaign(db_engine, "c")
    with pytest.raises(AdminError, match=r"line 1 .*--encoding cp1252"):
        await run(db_engine, "c", write(tmp_path, "a.csv", b"id,Pr\xe9nom,phone\nC1,Ann,202-555-0143\n"))
    assert await count(db_engine, Contact) == 0


async def test_encoding_cp1252_reads_what_excel_wrote(db_engine, tmp_path):
    await campaign(db_engine, "c")
    data = "id,Prénom,last_name,phone\nC1,José,Müller,202-555-0143\n".encode("cp1252")
    report = await run(db_engine, "c", write(tmp_path, "a.csv", data), encoding="cp1252")
    assert report.imported == 1 and not report.issues
    async with db_engine.connect() as conn:
        assert (await conn.execute(select(_ct.c.last_name, _ct.c.custom))).one() == ("Müller", {"Prénom": "José"})


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
async def test_the_delimiter_is_detected_from_the_header(db_engine, tmp_path, delimiter):
    await campaign(db_engine, "c")
    text = delimiter.join(["id", "name", "phone"]) + "\n" + delimiter.join(["C1", "Lee, Ann", "202-555-0143"]) + "\n"
    report = await run(db_engine, "c", write(tmp_path, "a.csv", "\ufeff" + text))
    assert report.imported == 1 and not report.issues


async def test_the_upgrade_gives_contacts_without_an_id_their_new_identity(db_url, tmp_path):
    from sqlalchemy import insert

    from agi.db import migrate
    from agi.db.engine import make_engine

    await asyncio.to_thread(migrate.upgrade, db_url, "0004")
    engine = make_engine(db_url)
    try:
        async with engine.begin() as conn:  # as the round-1 importer keyed it: raw digits, no custom fields
            await conn.execute(insert(_ct).values(dedupe_key="old-key", first_name="", last_name="Ann",
                                                  phone="(202) 555-0143", dnc=False, custom={}))
        await asyncio.to_thread(migrate.upgrade, db_url)
        await campaign(engine, "c")
        report = await run(engine, "c", write(tmp_path, "a.csv", "name,phone\nAnn,+1 202 555 0143\n"))
        assert (report.new_contacts, await count(engine, Contact)) == (0, 1)
    finally:
        await engine.dispose()
