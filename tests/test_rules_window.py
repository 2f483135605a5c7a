"""Calling window: the number's own zones (most restrictive), the campaign schedule, DST, dates."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agi.db.models import Campaign
from agi.rules.predial import number_timezones
from agi.rules.window import (
    DEFAULT_WINDOW_END,
    DEFAULT_WINDOW_START,
    CallingWindow,
    allowed_at,
    next_allowed,
    parse_schedule,
)

UTC = dt.timezone.utc
T = dt.time
NY = ("America/New_York",)
BERLIN = ("Europe/Berlin",)


def Z(y, m, d, h=0, mi=0, s=0, us=0) -> dt.datetime:
    """An instant written in UTC."""
    return dt.datetime(y, m, d, h, mi, s, us, tzinfo=UTC)


def L(zone, y, m, d, h=0, mi=0, s=0, fold=0) -> dt.datetime:
    """The UTC instant of a local wall-clock time (fold=1: the second of a repeated time)."""
    return dt.datetime(y, m, d, h, mi, s, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def test_default_window_is_8_to_21_local():
    assert (DEFAULT_WINDOW_START, DEFAULT_WINDOW_END) == (T(8), T(21))


def test_the_dst_dates_these_tests_rely_on():
    assert L("America/New_York", 2026, 3, 8, 3) == Z(2026, 3, 8, 7)  # spring forward 02:00 EST -> 03:00 EDT
    assert L("America/New_York", 2026, 11, 1, 1, fold=1) == Z(2026, 11, 1, 6)  # fall back
    assert L("Europe/Berlin", 2026, 3, 29, 3) == Z(2026, 3, 29, 1)
    assert L("Europe/Berlin", 2026, 10, 25, 2, fold=1) == Z(2026, 10, 25, 1)


# --- one zone, the default window ------------------------------------------------------------

EDGES = [
    # (zone, local wall time, allowed?)
    ("America/New_York", (2026, 6, 15, 7, 59, 59), False),
    ("America/New_York", (2026, 6, 15, 8, 0, 0), True),
    ("America/New_York", (2026, 6, 15, 20, 59, 59), True),
    ("America/New_York", (2026, 6, 15, 21, 0, 0), False),
    ("America/New_York", (2026, 1, 15, 8, 0, 0), True),  # winter: EST
    ("America/Los_Angeles", (2026, 1, 15, 7, 59, 0), False),
    ("Europe/London", (2026, 7, 1, 8, 0, 0), True),
    ("Europe/Berlin", (2026, 12, 1, 20, 59, 0), True),
    ("Europe/Paris", (2026, 12, 1, 21, 0, 0), False),
    ("Asia/Kolkata", (2026, 5, 5, 8, 0, 0), True),  # +05:30
    ("Asia/Kolkata", (2026, 5, 5, 7, 59, 0), False),
    ("Asia/Kathmandu", (2026, 5, 5, 8, 0, 0), True),  # +05:45
    ("Australia/Sydney", (2026, 1, 10, 21, 0, 0), False),  # southern summer: AEDT
    ("Australia/Adelaide", (2026, 1, 10, 8, 0, 0), True),  # +10:30
    ("Pacific/Chatham", (2026, 1, 10, 7, 59, 59), False),  # +13:45
]


@pytest.mark.parametrize("zone, local, allowed", EDGES)
def test_default_window_edges_in_local_time_of_several_countries(zone, local, allowed):
    assert allowed_at(L(zone, *local), (zone,)) is allowed


def test_before_the_window_the_next_moment_is_8_local_the_same_day():
    assert next_allowed(L("America/New_York", 2026, 6, 15, 3), NY) == L("America/New_York", 2026, 6, 15, 8)


def test_after_the_window_the_next_moment_is_8_local_the_next_day():
    assert next_allowed(L("America/New_York", 2026, 6, 15, 21), NY) == L("America/New_York", 2026, 6, 16, 8)


def test_inside_the_window_the_next_moment_is_now():
    now = L("Europe/Berlin", 2026, 6, 15, 12, 34, 56) + dt.timedelta(microseconds=7)
    assert next_allowed(now, BERLIN) == now


# --- DST ---------------------------------------------------------------------------------------


def test_us_spring_forward_day_window_opens_at_8_edt_not_8_est():
    # midnight EST on 2026-03-08; 08:00 that day is EDT (12:00Z), not 13:00Z
    assert next_allowed(Z(2026, 3, 8, 5), NY) == Z(2026, 3, 8, 12)
    assert allowed_at(Z(2026, 3, 8, 12), NY)
    assert not allowed_at(Z(2026, 3, 8, 11, 59, 59), NY)
    assert next_allowed(Z(2026, 3, 7, 5), NY) == Z(2026, 3, 7, 13)  # the day before: EST


def test_us_spring_forward_day_window_closes_at_21_edt():
    assert allowed_at(Z(2026, 3, 9, 0, 59, 59), NY)  # 20:59:59 EDT on the 8th
    assert not allowed_at(Z(2026, 3, 9, 1), NY)


def test_us_fall_back_day_window_opens_at_8_est():
    assert next_allowed(Z(2026, 11, 1, 4), NY) == Z(2026, 11, 1, 13)  # from 00:00 EDT
    assert not allowed_at(Z(2026, 11, 1, 12, 30), NY)  # 07:30 EST
    assert allowed_at(Z(2026, 11, 2, 1, 59), NY)  # 20:59 EST
    assert not allowed_at(Z(2026, 11, 2, 2), NY)


def test_window_inside_the_skipped_hour_opens_when_the_clock_jumps():
    # 02:30-03:30 on 2026-03-08: 02:30 never happens; 03:00 EDT (07:00Z) is in the window
    kw = dict(window_start=T(2, 30), window_end=T(3, 30))
    assert next_allowed(Z(2026, 3, 8, 5), NY, **kw) == Z(2026, 3, 8, 7)
    assert not allowed_at(Z(2026, 3, 8, 6, 59, 59), NY, **kw)  # 01:59:59 EST
    assert allowed_at(Z(2026, 3, 8, 7, 29, 59), NY, **kw)
    assert not allowed_at(Z(2026, 3, 8, 7, 30), NY, **kw)


def test_window_wholly_inside_the_skipped_hour_does_not_happen_that_day():
    kw = dict(window_start=T(2, 10), window_end=T(2, 50))
    assert next_allowed(Z(2026, 3, 8, 5), NY, **kw) == L("America/New_York", 2026, 3, 9, 2, 10)


def test_repeated_hour_after_fall_back_is_allowed_both_times():
    kw = dict(window_start=T(1, 15), window_end=T(1, 45))
    assert next_allowed(Z(2026, 11, 1, 4), NY, **kw) == Z(2026, 11, 1, 5, 15)  # 01:15 EDT
    assert next_allowed(Z(2026, 11, 1, 5, 45), NY, **kw) == Z(2026, 11, 1, 6, 15)  # 01:15 EST
    assert not allowed_at(Z(2026, 11, 1, 6), NY, **kw)  # 01:00 EST


def test_window_ending_inside_the_repeated_hour_reopens_when_the_clock_goes_back():
    # 00:30-01:30: 00:30-01:30 EDT, then 01:00-01:30 EST again; not 01:30-02:00 EDT
    kw = dict(window_start=T(0, 30), window_end=T(1, 30))
    assert allowed_at(Z(2026, 11, 1, 5, 29), NY, **kw)
    assert not allowed_at(Z(2026, 11, 1, 5, 30), NY, **kw)
    assert next_allowed(Z(2026, 11, 1, 5, 30), NY, **kw) == Z(2026, 11, 1, 6)
    assert not allowed_at(Z(2026, 11, 1, 6, 30), NY, **kw)


def test_european_spring_forward_and_fall_back():
    assert next_allowed(Z(2026, 3, 28, 22), BERLIN) == Z(2026, 3, 29, 6)  # 08:00 CEST
    assert next_allowed(Z(2026, 3, 27, 22), BERLIN) == Z(2026, 3, 28, 7)  # 08:00 CET
    assert next_allowed(Z(2026, 10, 24, 22), BERLIN) == Z(2026, 10, 25, 7)  # 08:00 CET again
    kw = dict(window_start=T(2), window_end=T(2, 30))  # 02:00-03:00 happens twice on 2026-10-25
    assert next_allowed(Z(2026, 10, 24, 23), BERLIN, **kw) == Z(2026, 10, 25, 0)
    assert next_allowed(Z(2026, 10, 25, 0, 30), BERLIN, **kw) == Z(2026, 10, 25, 1)
    assert next_allowed(Z(2026, 3, 28, 23), BERLIN, **kw) == L("Europe/Berlin", 2026, 3, 30, 2)  # skipped on the 29th


def test_southern_hemisphere_dst_end_in_sydney():
    sydney = ("Australia/Sydney",)
    assert next_allowed(Z(2026, 4, 4, 12), sydney) == Z(2026, 4, 4, 22)  # 08:00 AEST on the 5th
    assert next_allowed(Z(2026, 4, 3, 12), sydney) == Z(2026, 4, 3, 21)  # 08:00 AEDT on the 4th


def test_us_and_eu_dst_mismatch_weeks_shift_a_london_number_against_a_new_york_schedule():
    # schedule 03:30-04:30 New York; number in London (window 08:00-21:00 there)
    kw = dict(schedule={d: [["03:30", "04:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}, schedule_tz="America/New_York")
    london = ("Europe/London",)
    # normal week: 5 h apart, 03:30 EST = 08:30 GMT
    assert next_allowed(L("America/New_York", 2026, 3, 3, 3), london, **kw) == L("America/New_York", 2026, 3, 3, 3, 30)
    # 2026-03-10: US already on EDT, UK still on GMT: 4 h apart, London opens at 04:00 New York time
    assert next_allowed(L("America/New_York", 2026, 3, 10, 3), london, **kw) == L("America/New_York", 2026, 3, 10, 4)


# --- windows ending at midnight, overnight, whole day --------------------------------------------


def test_window_ending_at_midnight():
    kw = dict(window_start=T(18), window_end=T(0))
    assert allowed_at(Z(2026, 6, 1, 23, 59, 59), ("UTC",), **kw)
    assert not allowed_at(Z(2026, 6, 2, 0), ("UTC",), **kw)
    assert next_allowed(Z(2026, 6, 2, 0), ("UTC",), **kw) == Z(2026, 6, 2, 18)


def test_overnight_window_runs_past_midnight():
    kw = dict(window_start=T(22), window_end=T(2))
    assert allowed_at(Z(2026, 6, 2, 1, 59), ("UTC",), **kw)
    assert not allowed_at(Z(2026, 6, 2, 2), ("UTC",), **kw)
    assert next_allowed(Z(2026, 6, 2, 2), ("UTC",), **kw) == Z(2026, 6, 2, 22)


def test_equal_start_and_end_is_the_whole_day():
    assert allowed_at(Z(2026, 6, 2, 3, 17), ("UTC",), T(0), T(0))
    assert next_allowed(Z(2026, 6, 2, 3, 17), ("Asia/Tokyo",), T(0), T(0)) == Z(2026, 6, 2, 3, 17)


# --- several zones: the most restrictive ------------------------------------------------------------


def test_idaho_number_spanning_mountain_and_pacific_time_keeps_to_both():
    zones = number_timezones("+12085550100")
    assert zones == ("America/Boise", "America/Los_Angeles")
    assert not allowed_at(L("America/Boise", 2026, 6, 15, 8, 30), zones)  # 07:30 in Los Angeles
    assert next_allowed(L("America/Boise", 2026, 6, 15, 6), zones) == L("America/Los_Angeles", 2026, 6, 15, 8)
    assert allowed_at(L("America/Boise", 2026, 6, 15, 20, 59), zones)
    assert not allowed_at(L("America/Boise", 2026, 6, 15, 21), zones)  # 20:00 in Los Angeles


def test_australian_number_spanning_adelaide_and_perth():
    zones = number_timezones("+61891234567")
    assert zones == ("Australia/Adelaide", "Australia/Perth")
    # January: Adelaide +10:30 (DST), Perth +08:00 -> opens at 08:00 Perth, closes at 21:00 Adelaide
    assert next_allowed(Z(2026, 1, 14, 18), zones) == L("Australia/Perth", 2026, 1, 15, 8)
    assert not allowed_at(L("Australia/Adelaide", 2026, 1, 15, 21), zones)
    assert allowed_at(L("Australia/Adelaide", 2026, 1, 15, 20, 59), zones)


@pytest.mark.parametrize("number", ["+18005550100", "+78005553535", "+611300123456", "+79123456789", "+16005550100"])
def test_toll_free_and_country_wide_numbers_still_get_a_moment_allowed_in_every_zone(number):
    zones = number_timezones(number)
    assert len(zones) > 5
    for start in (Z(2026, 1, 5), Z(2026, 3, 20), Z(2026, 7, 1, 12)):
        moment = next_allowed(start, zones)
        assert moment is not None and moment >= start
        for zone in zones:
            local = moment.astimezone(ZoneInfo(zone)).time()
            assert T(8) <= local < T(21), (zone, local)


def test_zones_whose_windows_never_overlap_are_never_allowed():
    assert next_allowed(Z(2026, 1, 1), ("Asia/Tokyo", "America/New_York"), T(9), T(10)) is None


def test_number_with_unknown_zone_uses_the_campaigns_schedule_zone():
    assert number_timezones("+80012345678") == ()
    assert next_allowed(Z(2026, 5, 31, 20), (), schedule_tz="Asia/Tokyo") == L("Asia/Tokyo", 2026, 6, 1, 8)
    assert not allowed_at(L("Asia/Tokyo", 2026, 6, 1, 7), (), schedule_tz="Asia/Tokyo")


# --- schedule and dates ------------------------------------------------------------------------------

WEEKDAYS_9_17 = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def test_schedule_days_not_listed_or_empty_have_no_calling():
    schedule = {"mon": [], "tue": [["09:00", "17:00"]]}
    # Monday 2026-03-09 12:00 UTC -> Tuesday 09:00 UTC
    assert not allowed_at(Z(2026, 3, 9, 12), ("UTC",), schedule=schedule)
    assert next_allowed(Z(2026, 3, 9, 12), ("UTC",), schedule=schedule) == Z(2026, 3, 10, 9)
    assert next_allowed(Z(2026, 3, 10, 17), ("UTC",), schedule=schedule) == Z(2026, 3, 17, 9)


def test_weekend_is_skipped_by_a_weekday_schedule_in_the_campaigns_zone():
    kw = dict(schedule=WEEKDAYS_9_17, schedule_tz="America/Chicago")
    friday_evening = L("America/Chicago", 2026, 3, 13, 17)
    assert next_allowed(friday_evening, NY, **kw) == L("America/Chicago", 2026, 3, 16, 9)


def test_schedule_intersects_the_numbers_window():
    # schedule 06:00-10:00 UTC; number in New York (summer, -4): 08:00 EDT = 12:00Z -> never overlaps
    kw = dict(schedule={d: [["06:00", "10:00"]] for d in WEEKDAYS_9_17})
    assert next_allowed(Z(2026, 6, 1), NY, **kw) is None
    # Berlin (+2): 08:00-12:00 local -> allowed 06:00-10:00Z
    assert next_allowed(Z(2026, 6, 1), BERLIN, **kw) == Z(2026, 6, 1, 6)


def test_schedule_with_a_lunch_break_and_24_00_end():
    schedule = {"mon": [["13:00", "24:00"], ["08:00", "12:00"]]}
    kw = dict(window_start=T(0), window_end=T(0), schedule=schedule)
    assert next_allowed(Z(2026, 3, 9, 12), ("UTC",), **kw) == Z(2026, 3, 9, 13)
    assert allowed_at(Z(2026, 3, 9, 23, 59, 59), ("UTC",), **kw)
    assert not allowed_at(Z(2026, 3, 10, 0), ("UTC",), **kw)


def test_overnight_schedule_interval_counts_after_midnight():
    schedule = {"fri": [["22:00", "02:00"]]}
    kw = dict(window_start=T(0), window_end=T(0), schedule=schedule)
    assert allowed_at(Z(2026, 3, 14, 1, 59), ("UTC",), **kw)  # Saturday 01:59
    assert not allowed_at(Z(2026, 3, 14, 2), ("UTC",), **kw)
    assert not allowed_at(Z(2026, 3, 13, 1), ("UTC",), **kw)  # Friday 01:00: Thursday has nothing
    assert next_allowed(Z(2026, 3, 14, 2), ("UTC",), **kw) == Z(2026, 3, 20, 22)


def test_schedule_with_no_day_at_all_is_never_allowed():
    assert next_allowed(Z(2026, 3, 9), NY, schedule={}) is None
    assert not allowed_at(Z(2026, 3, 9, 15), NY, schedule={})


def test_start_and_stop_dates_bound_the_window():
    start, stop = Z(2026, 6, 3, 15, 30), Z(2026, 6, 5, 14)
    kw = dict(start_at=start, stop_at=stop)
    assert next_allowed(Z(2026, 6, 1), NY, **kw) == start  # 11:30 EDT, inside the window
    assert not allowed_at(start - dt.timedelta(microseconds=1), NY, **kw)
    assert allowed_at(stop - dt.timedelta(seconds=1), NY, **kw)
    assert not allowed_at(stop, NY, **kw)
    assert next_allowed(stop, NY, **kw) is None
    assert next_allowed(Z(2026, 6, 5, 2), NY, **kw) == Z(2026, 6, 5, 12)  # 08:00 EDT, before the stop
    assert next_allowed(Z(2026, 6, 5, 2), NY, window_start=T(10), start_at=start, stop_at=stop) is None


def test_start_date_at_night_waits_for_the_window():
    assert next_allowed(Z(2026, 6, 1), NY, start_at=Z(2026, 6, 3, 2)) == Z(2026, 6, 3, 12)


# --- inputs -------------------------------------------------------------------------------------


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        allowed_at(dt.datetime(2026, 1, 1, 12), NY)
    with pytest.raises(ValueError, match="aware"):
        next_allowed(Z(2026, 1, 1), NY, start_at=dt.datetime(2026, 1, 1))


def test_non_utc_aware_datetimes_are_accepted_and_the_answer_is_utc():
    when = dt.datetime(2026, 6, 15, 3, tzinfo=ZoneInfo("America/New_York"))
    result = next_allowed(when, NY)
    assert result == L("America/New_York", 2026, 6, 15, 8) and result.tzinfo is UTC


def test_unknown_zone_names_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="IANA"):
        allowed_at(Z(2026, 1, 1), ("Mars/Olympus",))
    with pytest.raises(ValueError, match="IANA"):
        CallingWindow(schedule_tz="EST5EDT6")


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"mnday": [["09:00", "17:00"]]}, "mon, tue"),
        ({"mon": "09:00-17:00"}, "list of"),
        ({"mon": [["09:00"]]}, "pair"),
        ({"mon": [["9am", "17:00"]]}, "HH:MM"),
        ({"mon": [["24:00", "17:00"]]}, "between 00:00 and 23:59"),
        ({"mon": [["09:00", "25:00"]]}, "or 24:00"),
        ({"mon": [["09:60", "17:00"]]}, "between"),
        ({"mon": [["09:00", "09:00"]]}, "00:00-24:00"),
        ({"mon": [9, 17]}, "pair"),
        ([["09:00", "17:00"]], "mapping"),
    ],
)
def test_bad_schedules_are_refused_saying_what_to_fix(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(raw)


def test_schedule_accepts_full_day_names_any_case_and_seconds():
    parsed = parse_schedule({"Monday": [["09:00:30", "17:00"]], "SUN": []})
    assert parsed[0] == ((dt.timedelta(hours=9, seconds=30), dt.timedelta(hours=17)),)
    assert parsed[6] == () and parsed[1] == ()
    assert parse_schedule(None) is None


def test_calling_window_from_an_orm_campaign():
    campaign = Campaign(
        name="c",
        window_start=T(9),
        window_end=T(20),
        schedule=WEEKDAYS_9_17,
        schedule_tz="America/Chicago",
        start_at=Z(2026, 3, 1),
        stop_at=None,
    )
    window = CallingWindow.from_campaign(campaign)
    assert window.start == T(9) and window.end == T(20) and window.schedule_tz == "America/Chicago"
    assert window.next_allowed(Z(2026, 3, 13, 23), NY) == L("America/Chicago", 2026, 3, 16, 9)
    unflushed = CallingWindow.from_campaign(Campaign(name="d"))  # column defaults not applied yet
    assert unflushed == CallingWindow()
    midnight_end = CallingWindow.from_campaign(
        SimpleNamespace(window_start=T(18), window_end=T(0), schedule=None, schedule_tz=None, start_at=None, stop_at=None)
    )
    assert midnight_end.end == T(0)


# --- properties -----------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",  # -03:30
    "America/Santiago",  # southern DST, changes at midnight
    "America/Havana",  # DST changes at midnight
    "Europe/London",
    "Europe/Berlin",
    "Africa/Casablanca",  # DST suspended for Ramadan
    "Asia/Kolkata",
    "Asia/Kathmandu",  # +05:45
    "Asia/Tokyo",
    "Australia/Adelaide",  # +09:30 / +10:30
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Kiritimati",  # +14
    "Pacific/Pago_Pago",  # -11
]

_instants = st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
_clock = st.builds(T, st.integers(0, 23), st.sampled_from([0, 0, 15, 30, 45, 59]))
_span = st.tuples(_clock, _clock).filter(lambda p: p[0] != p[1]).map(lambda p: [p[0].strftime("%H:%M"), p[1].strftime("%H:%M")])
_schedules = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), st.lists(_span, max_size=2), max_size=7),
)


def _samples(start: dt.datetime, end: dt.datetime, n: int = 60):
    """Instants in [start, end): evenly spread, plus the last microsecond, second and minute."""
    span = end - start
    if span <= dt.timedelta(0):
        return []
    points = {start + span * i / n for i in range(n)}
    for back in (dt.timedelta(microseconds=1), dt.timedelta(seconds=1), dt.timedelta(minutes=1), dt.timedelta(minutes=30)):
        if end - back >= start:
            points.add(end - back)
    return sorted(points)


@settings(max_examples=250, deadline=None)
@given(
    when=_instants,
    zones=st.lists(st.sampled_from(ZONES), max_size=3, unique=True),
    window=st.tuples(_clock, _clock),
    schedule=_schedules,
    schedule_tz=st.sampled_from(ZONES),
    start_days=st.one_of(st.none(), st.integers(-5, 20)),
    stop_days=st.one_of(st.none(), st.integers(-2, 40)),
)
def test_next_allowed_is_allowed_and_nothing_sampled_before_it_is(when, zones, window, schedule, schedule_tz, start_days, stop_days):
    start_at = None if start_days is None else when + dt.timedelta(days=start_days, minutes=7)
    stop_at = None if stop_days is None else when + dt.timedelta(days=stop_days, hours=5)
    cw = CallingWindow(window[0], window[1], parse_schedule(schedule), schedule_tz, start_at, stop_at)
    moment = cw.next_allowed(when, zones)
    if moment is None:
        horizon = when + dt.timedelta(days=30)
        assert not any(cw.allowed_at(t, zones) for t in _samples(when, horizon, 200))
        return
    assert moment >= when
    assert cw.allowed_at(moment, zones)
    assert not any(cw.allowed_at(t, zones) for t in _samples(when, moment))
    assert cw.next_allowed(moment, zones) == moment
    if cw.allowed_at(when, zones):
        assert moment == when


@settings(max_examples=150, deadline=None)
@given(when=_instants, zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True), window=st.tuples(_clock, _clock))
def test_several_zones_are_allowed_only_when_every_zone_is(when, zones, window):
    together = allowed_at(when, zones, *window)
    assert together == all(allowed_at(when, (zone,), *window) for zone in zones)


@settings(max_examples=100, deadline=None)
@given(when=_instants, zone=st.sampled_from(ZONES))
def test_default_window_moment_is_between_8_and_21_local(when, zone):
    moment = next_allowed(when, (zone,))
    assume(moment is not None)
    assert T(8) <= moment.astimezone(ZoneInfo(zone)).time() < T(21)
    assert moment - when < dt.timedelta(days=1)


DST_DAYS = [
    ("America/New_York", dt.date(2026, 3, 8)),
    ("America/New_York", dt.date(2026, 11, 1)),
    ("Europe/Berlin", dt.date(2026, 3, 29)),
    ("Europe/Berlin", dt.date(2026, 10, 25)),
    ("Australia/Lord_Howe", dt.date(2026, 4, 5)),
    ("Australia/Lord_Howe", dt.date(2026, 10, 4)),
    ("America/Santiago", dt.date(2026, 4, 5)),
    ("America/Santiago", dt.date(2026, 9, 6)),
    ("America/Havana", dt.date(2026, 3, 8)),
    ("America/Havana", dt.date(2026, 11, 1)),
    ("Pacific/Chatham", dt.date(2026, 4, 5)),
]
WINDOWS = [(T(8), T(21)), (T(0), T(2, 30)), (T(1, 15), T(1, 45)), (T(2, 30), T(3, 30)), (T(23), T(1)), (T(3), T(3)), (T(0, 30), T(1, 30))]


@pytest.mark.parametrize("zone, day", DST_DAYS)
def test_next_allowed_matches_a_minute_by_minute_scan_around_dst_changes(zone, day):
    """Every window boundary and zone change here falls on a whole minute, so the earliest allowed
    instant from any minute is the first allowed minute of a brute-force scan."""
    first = dt.datetime.combine(day, T(0), tzinfo=UTC) - dt.timedelta(hours=18)
    minutes = [first + dt.timedelta(minutes=i) for i in range(60 * 60)]
    for start, end in WINDOWS:
        cw = CallingWindow(start, end, schedule_tz="UTC")
        allowed = [cw.allowed_at(m, (zone,)) for m in minutes]
        expected = None
        for i in range(len(minutes) - 1, -1, -1):  # scan backwards: earliest allowed minute >= each
            if allowed[i]:
                expected = minutes[i]
            if i % 7 == 0 and i < 36 * 60 and expected is not None:
                assert cw.next_allowed(minutes[i], (zone,)) == expected, (zone, start, end, minutes[i])


def test_a_single_zone_name_or_none_is_accepted_for_the_zones():
    when = L("America/New_York", 2026, 6, 15, 3)
    assert next_allowed(when, "America/New_York") == next_allowed(when, NY)
    assert next_allowed(when, None, schedule_tz="America/New_York") == next_allowed(when, NY)
    assert allowed_at(L("America/New_York", 2026, 6, 15, 9), "America/New_York")
