"""CSV contact import: good rows land, every bad row is reported with its line and reason,
a second import of the same file changes nothing (both backends)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from agi import importer
from agi.admin.campaigns import create_campaign
from agi.errors import AdminError
from agi.db.engine import make_sessionmaker
from agi.db.models import Attempt, CampaignContact, Contact, DncEntry
from agi.outcomes import ContactState, Result

HEADER = "ID,First Name,Last Name,Phone,Mobile,DNC,Company"
# Area codes with a single time zone each (NANP), and one Canadian code (allowed country).
AREAS = {"212": "America/New_York", "312": "America/Chicago", "415": "America/Los_Angeles",
         "303": "America/Denver", "604": "America/Vancouver"}
GOOD = "good"


def generate(path: Path, n: int, seed: int = 7) -> tuple[dict[int, str], set[str]]:
    """Write an n-row CSV mixing every case; returns ({line: expected reason}, DNC-list numbers).

    Lines are counted as the file has them (a quoted field with a newline spans two lines).
    """
    rng = random.Random(seed)
    lines: list[bytes] = [HEADER.encode() + b"\r\n"]
    expected: dict[int, str] = {}
    dnc_list: set[str] = set()
    good_rows: list[bytes] = []
    line = 2
    for i in range(n):
        area = rng.choice(sorted(AREAS))
        sub = f"{2000000 + i:07d}"
        number = f"+1{area}{sub}"
        styles = [f"({area}) {sub[:3]}-{sub[3:]}", f"{area}-{sub[:3]}-{sub[3:]}", number, f"1 {area} {sub}"]
        phone = rng.choice(styles)
        kind = rng.choices(
            ["good", "letters", "empty", "flag", "listed", "forbidden", "dup", "fields", "encoding", "multiline"],
            weights=[70, 5, 5, 4, 3, 4, 4, 2, 1, 2],
        )[0]
        if kind == "dup" and not good_rows:
            kind = "good"
        company = f"Co {i}"
        row = None
        if kind == "good":
            row = f"C{i},First{i},Last{i},{phone},,,{company}"
        elif kind == "letters":
            row = f"C{i},First{i},Last{i},{area}-55A-{sub[3:]},,,{company}"
            expected[line] = Result.INVALID_NUMBER.value
        elif kind == "empty":
            row = f"C{i},First{i},Last{i},,{number},,{company}"  # the mobile is not the field dialed
            expected[line] = Result.NO_PHONE.value
        elif kind == "flag":
            row = f"C{i},First{i},Last{i},{phone},,yes,{company}"
            expected[line] = Result.DNC.value
        elif kind == "listed":
            row = f"C{i},First{i},Last{i},{phone},,no,{company}"
            dnc_list.add(number)
            expected[line] = Result.DNC.value
        elif kind == "forbidden":
            row = f"C{i},First{i},Last{i},+44 20 7946 {i % 10000:04d},,,{company}"
            expected[line] = Result.FORBIDDEN_DESTINATION.value
        elif kind == "fields":  # one field more than the header: imported, the extra kept, a warning
            row = f"C{i},First{i},Last{i},{phone},,,{company},surplus"
            expected[line] = importer.WARNING
        if row is not None:
            data = row.encode() + b"\r\n"
            if kind == "good":
                good_rows.append(data)
            lines.append(data)
            line += 1
            continue
        if kind == "dup":
            lines.append(rng.choice(good_rows))
            expected[line] = importer.DUPLICATE
            line += 1
        elif kind == "encoding":
            lines.append(f"C{i},First{i},".encode() + b"M\xfcller" + f",{phone},,,{company}\r\n".encode())
            expected[line] = importer.MALFORMED
            line += 1
        elif kind == "multiline":  # a good row whose quoted company spans two lines
            lines.append(f'C{i},First{i},Last{i},{phone},,,"{company}\r\nBranch"\r\n'.encode())
            line += 2
    path.write_bytes(b"".join(lines))
    return expected, dnc_list


async def _counts(engine) -> dict:
    async with engine.connect() as conn:
        out = {}
        for name, model in (("contacts", Contact), ("members", CampaignContact), ("attempts", Attempt),
                            ("dnc", DncEntry)):
            out[name] = (await conn.execute(select(func.count()).select_from(model))).scalar_one()
        out["states"] = dict((await conn.execute(
            select(CampaignContact.state, func.count()).group_by(CampaignContact.state))).all())
        out["results"] = dict((await conn.execute(
            select(Attempt.result, func.count()).group_by(Attempt.result))).all())
    return out


async def _campaign(engine, name="imp", **values) -> int:
    async with make_sessionmaker(engine)() as session, session.begin():
        c, _ = await create_campaign(session, name, {"allowed_countries": ["US", "CA"], **values})
        return c.id


async def test_ten_thousand_rows_import_with_every_bad_row_reported_and_reimport_changes_nothing(
    db_engine, tmp_path
):
    path = tmp_path / "contacts.csv"
    expected, dnc_numbers = generate(path, 10_000)
    campaign_id = await _campaign(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(insert(DncEntry), [{"number": n, "source": "test"} for n in sorted(dnc_numbers)])

    async with db_engine.begin() as conn:
        report = await importer.import_contacts(conn, "imp", path)

    # every bad row, and only those, reported with its own line and reason
    assert {i.line: i.reason for i in report.issues} == expected
    assert len(report.issues) == len(expected)  # one report per line
    want = Counter(expected.values())
    rows_read = report.rows
    good = rows_read - sum(n for reason, n in want.items() if reason != importer.WARNING)
    assert report.imported == good
    assert report.malformed == want[importer.MALFORMED]
    assert report.warnings == want[importer.WARNING] > 0
    assert report.duplicates == want[importer.DUPLICATE]
    for result in (Result.NO_PHONE, Result.DNC, Result.INVALID_NUMBER, Result.FORBIDDEN_DESTINATION):
        assert report.predial[result.value] == want[result.value], result
    assert all(want[r.value] > 0 for r in (Result.NO_PHONE, Result.DNC, Result.INVALID_NUMBER,
                                           Result.FORBIDDEN_DESTINATION))
    assert want[importer.MALFORMED] > 0 and want[importer.DUPLICATE] > 0

    counts = await _counts(db_engine)
    predial_total = sum(report.predial.values())
    assert counts["contacts"] == good + predial_total
    assert counts["members"] == good + predial_total
    assert counts["states"] == {ContactState.PENDING.value: good, ContactState.SKIPPED.value: predial_total}
    # pre-dial rows are recorded as attempts, so the summary's Contact No Phone / DNC count them
    assert counts["results"] == {r: n for r, n in report.predial.items() if n}

    async with db_engine.connect() as conn:
        pending = (await conn.execute(
            select(CampaignContact.number, CampaignContact.timezone)
            .where(CampaignContact.campaign_id == campaign_id,
                   CampaignContact.state == ContactState.PENDING.value))).all()
        custom = (await conn.execute(select(Contact.custom).where(Contact.external_id == "C0"))).scalar_one_or_none()
    for number, tz in pending:
        assert number.startswith("+1") and len(number) == 12
        assert tz == AREAS[number[2:5]]
    if custom is not None:
        assert custom["Company"].startswith("Co 0")

    # the same file again: nothing changes, everything counted as already there
    async with db_engine.begin() as conn:
        again = await importer.import_contacts(conn, "imp", path)
    assert await _counts(db_engine) == counts
    assert again.imported == 0 and sum(again.predial.values()) == 0
    assert again.malformed == report.malformed
    assert again.duplicates == rows_read - report.malformed
    assert again.new_contacts == 0


@pytest.mark.parametrize(
    "phone, dnc, reason",
    [
        ("+1 212 555 0100", "", None),
        ("212.555.0100", "no", None),
        ("212-CALL-NOW", "", Result.INVALID_NUMBER.value),
        ("555-0100", "", Result.INVALID_NUMBER.value),  # 7 digits: not a possible US number
        ("", "", Result.NO_PHONE.value),
        ("   ", "", Result.NO_PHONE.value),
        ("+1 212 555 0100", "Y", Result.DNC.value),
        ("+49 30 1234567", "", Result.FORBIDDEN_DESTINATION.value),
        ("+1 604 555 0100", "", None),  # Canada is allowed
        ("+1 212 555 0100", "maybe", importer.MALFORMED),
    ],
)
async def test_each_kind_of_row_gets_its_reason(db_engine, tmp_path, phone, dnc, reason):
    path = tmp_path / "one.csv"
    path.write_text(f"name,phone,dnc\nAnn,\"{phone}\",{dnc}\n")
    await _campaign(db_engine)
    async with db_engine.begin() as conn:
        report = await importer.import_contacts(conn, "imp", path)
    assert [(i.line, i.reason) for i in report.issues] == ([] if reason is None else [(2, reason)])
    assert report.imported == (1 if reason is None else 0)


async def test_blank_lines_are_skipped_and_rows_of_empty_fields_reported(db_engine, tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("name,phone\n\nAnn,+12125550100\n,\n")
    await _campaign(db_engine)
    async with db_engine.begin() as conn:
        report = await importer.import_contacts(conn, "imp", path)
    assert report.imported == 1
    assert [(i.line, i.reason) for i in report.issues] == [(4, importer.MALFORMED)]


async def test_column_map_delimiter_and_the_campaigns_phone_field_choose_the_number_dialed(db_engine, tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("Customer;Given;Tel;Handy;Note\nX1;Ann;+12125550100;+13125550101;vip\n")
    await _campaign(db_engine, phone_field="cell")
    async with db_engine.begin() as conn:
        report = await importer.import_contacts(
            conn, "imp", path, delimiter=";", phone_field="cell",
            column_map="Customer=external_id,Given=first_name,Tel=phone,Handy=cell",
        )
    assert report.imported == 1 and not report.issues
    async with db_engine.connect() as conn:
        row = (await conn.execute(select(Contact.external_id, Contact.first_name, Contact.custom,
                                         CampaignContact.number)
                                  .join(CampaignContact, CampaignContact.contact_id == Contact.id))).one()
    assert row == ("X1", "Ann", {"Note": "vip"}, "+13125550101")


async def test_a_file_whose_dialed_field_is_never_filled_is_refused_before_writing(db_engine, tmp_path):
    path = tmp_path / "cells.csv"
    path.write_text("name,cell\nAnn,+12125550100\n")
    await _campaign(db_engine)  # dials "phone"
    with pytest.raises(AdminError, match="`dialer campaign set imp --phone-field cell`"):
        async with db_engine.begin() as conn:
            await importer.import_contacts(conn, "imp", path)
    assert (await _counts(db_engine))["contacts"] == 0


@pytest.mark.parametrize("field", ["cell", "any"])
async def test_an_import_phone_field_other_than_the_campaigns_is_refused_and_nothing_is_written(
    db_engine, tmp_path, field
):
    # the campaign's phone_field is what the originator dials: an import may not store other numbers
    path = tmp_path / "leads.csv"
    path.write_text("name,phone,cell\nAnn,,+12125550100\nBob,+13125550101,+13125550102\n")
    await _campaign(db_engine)  # dials "phone"
    with pytest.raises(AdminError, match=f"dials the phone field.*`dialer campaign set imp --phone-field {field}`"):
        async with db_engine.begin() as conn:
            await importer.import_contacts(conn, "imp", path, phone_field=field)
    counts = await _counts(db_engine)
    assert (counts["contacts"], counts["members"], counts["attempts"]) == (0, 0, 0)
    async with db_engine.begin() as conn:  # the same field as the campaign's is only a check
        report = await importer.import_contacts(conn, "imp", path, phone_field="phone")
    assert report.imported == 1 and report.predial == {Result.NO_PHONE.value: 1}


def test_rows_without_an_id_column_dedupe_on_name_and_phones():
    phones = {"home": None, "work": None, "cell": None, "phone": "(212) 555-0100"}
    same = {"home": None, "work": None, "cell": None, "phone": "212 555 0100"}
    assert importer.dedupe_key(None, "Ann", "Lee", phones) == importer.dedupe_key(None, " ann", "LEE ", same)
    assert importer.dedupe_key(None, "Ann", "Lee", phones) != importer.dedupe_key(None, "Bob", "Lee", phones)
    assert importer.dedupe_key("7", "Ann", "Lee", phones) == importer.dedupe_key("7", "Other", "Name", same)


def test_header_mapping_refuses_two_explicit_columns_for_one_field_and_unknown_map_columns():
    with pytest.raises(AdminError, match="both map to cell"):
        importer.map_header(["cell", "Handy"], importer.parse_map("Handy=cell"))
    # by default the first matching column wins; a second one is kept as a custom field
    assert importer.map_header(["cell", "Mobile"], {}) == [("field", "cell"), ("custom", "Mobile")]
    with pytest.raises(AdminError, match="not in the file's header"):
        importer.map_header(["phone"], importer.parse_map("Tel=phone"))
    with pytest.raises(AdminError, match="bad --map target"):
        importer.parse_map("Tel=fax")
    assert importer.map_header(["Mobile", "Notes"], importer.parse_map("Notes=-")) == [
        ("field", "cell"), ("ignore", "")]


async def test_dnc_file_import_reports_bad_lines_and_skips_listed_numbers(db_engine, tmp_path):
    path = tmp_path / "dnc.csv"
    path.write_text("number,reason\n+12125550100,asked\n(212) 555-0101,\nnot-a-number,\n212 555 0100,again\n")
    async with db_engine.begin() as conn:
        report = await importer.import_dnc(conn, path)
    assert (report.added, report.already, report.invalid) == (2, 1, 1)
    assert [(i.line, i.reason) for i in report.issues] == [(4, Result.INVALID_NUMBER.value)]
    async with db_engine.begin() as conn:
        again = await importer.import_dnc(conn, path)
    assert (again.added, again.already) == (0, 3)
