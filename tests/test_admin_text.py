"""What an admin types is read once: times of day by the calling-window rule's parser (the CLI's
--window and --hours and the stored schedule agree, 24:00 included), dates by one parser (campaign
schedule --start/--stop, report calls --from/--to, dispose --callback-at)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from agi.admin.options import parse_window
from agi.admin.text import parse_hours, parse_span, parse_tz, parse_when
from agi.errors import AdminError
from agi.rules.window import CallingWindow, parse_clock, parse_schedule

UTC = dt.timezone.utc
H = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    "text, as_start, as_end",
    [
        ("09:00", 9 * H, 9 * H),
        ("9:05", 9 * H + dt.timedelta(minutes=5), 9 * H + dt.timedelta(minutes=5)),
        (" 17:30 ", 17.5 * H, 17.5 * H),
        ("09:00:30", 9 * H + dt.timedelta(seconds=30), 9 * H + dt.timedelta(seconds=30)),
        ("00:00", dt.timedelta(0), dt.timedelta(0)),
        ("24:00", None, 24 * H),  # midnight at the end of the day: only an end
        ("24:01", None, None),
        ("23:60", None, None),
        ("9am", None, None),
        ("+9:00", None, None),
        ("9", None, None),
        ("009:00", None, None),
    ],
)
def test_a_time_of_day_reads_the_same_in_the_cli_and_in_the_window_rule(text, as_start, as_end):
    for allow_24, expected in ((False, as_start), (True, as_end)):
        if expected is None:
            with pytest.raises(ValueError):
                parse_clock(text, allow_24=allow_24)
        else:
            assert parse_clock(text, allow_24=allow_24) == expected
    # the CLI reads a range with the same parser: start as a start, end as an end
    if as_start is not None and as_end is not None and as_start < 23 * H:
        assert parse_span(f"{text}-23:00")[0] == as_start
    if as_end is not None and as_end > dt.timedelta(0):
        assert parse_span(f"00:00-{text}")[1] == as_end
    if as_end is None:
        with pytest.raises(AdminError, match="use HH:MM"):
            parse_span(f"00:00-{text}")


def test_hours_ending_at_24_00_are_stored_as_24_00_and_call_until_midnight():
    # the CLI once stored 23:59 for 24:00: the schedule then lost its last minute
    hours = parse_hours("18:00-24:00")
    assert hours == [["18:00", "24:00"]]
    window = CallingWindow(start=dt.time(0), end=dt.time(0), schedule={"mon": hours})
    monday = dt.datetime(2026, 3, 9, tzinfo=UTC)
    assert window.allowed_at(monday.replace(hour=23, minute=59, second=30), "UTC")
    assert not window.allowed_at(monday + 24 * H, "UTC")
    assert parse_schedule({"mon": hours})[0] == ((18 * H, 24 * H),)


def test_hours_with_seconds_keep_them():
    assert parse_hours("09:00:30-17:00") == [["09:00:30", "17:00"]]


def test_24_00_only_ends_a_range():
    with pytest.raises(AdminError, match="24:00 only ends a range"):
        parse_hours("24:00-24:00")


def test_a_calling_window_ending_at_24_00_is_outside_the_legal_hours():
    # the calling window is a wall-clock interval inside 08:00-21:00: its end is never midnight
    with pytest.raises(AdminError, match="outside 08:00-21:00"):
        parse_window("20:00-24:00")
    assert parse_window("08:00-21:00") == {"window_start": dt.time(8), "window_end": dt.time(21)}
    assert parse_window("09:15:30-20:00") == {"window_start": dt.time(9, 15, 30), "window_end": dt.time(20)}


NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, tz, end_of_day, expected",
    [
        ("2026-12-01", UTC, False, dt.datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01", UTC, True, dt.datetime(2026, 12, 2, tzinfo=UTC)),  # the whole day included
        ("2026-12-01", NY, False, dt.datetime(2026, 12, 1, 5, tzinfo=UTC)),
        ("2026-12-01 09:00", NY, False, dt.datetime(2026, 12, 1, 14, tzinfo=UTC)),
        ("2026-12-01 09:00", NY, True, dt.datetime(2026, 12, 1, 14, tzinfo=UTC)),  # a time is a time
        ("2026-12-01T09:00+01:00", NY, False, dt.datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("2026-12-01T09:00Z", NY, False, dt.datetime(2026, 12, 1, 9, tzinfo=UTC)),
        (" now ", NY, True, NOW),
    ],
)
def test_one_date_parser_for_schedules_reports_and_dispositions(text, tz, end_of_day, expected):
    assert parse_when(text, tz, end_of_day=end_of_day, now=NOW) == expected


@pytest.mark.parametrize("text", ["2026-13-01", "01/12/2026", "tomorrow", "", "2026-12-01 25:00"])
def test_a_bad_date_says_how_to_write_one(text):
    with pytest.raises(AdminError, match="use YYYY-MM-DD"):
        parse_when(text, UTC)


def test_a_bad_time_zone_says_how_to_write_one():
    assert parse_tz(" America/New_York ") == NY
    with pytest.raises(AdminError, match="IANA name such as America/New_York"):
        parse_tz("Mars/Olympus")
