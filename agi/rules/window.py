"""The calling window: may this number be called at an instant, and when next, in the number's own zones.

An instant is allowed when, at once:
- in EVERY zone of the number (the most restrictive wins), the local wall-clock time is in
  [window_start, window_end); a number with no known zone (() or None) uses ``schedule_tz``;
- the campaign's schedule allows it: in ``schedule_tz``, the local time is in one of the
  intervals listed for that local weekday (``schedule`` None = every day, all day);
- start_at <= instant < stop_at (either may be None).

Daily intervals are half-open. An end at or before the start runs past midnight into the next
day: 18:00-00:00 ends at midnight, 22:00-02:00 is overnight; a calling window 00:00-00:00 is
the whole day (a schedule interval writes it 00:00-24:00). Wall-clock times follow DST
(zoneinfo): a time skipped by spring-forward never happens, a repeated hour after fall-back
is allowed both times if its wall time is in the window.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agi.rules.compliance import CALLING_HOURS

# The legal calling hours at the called person's location; campaigns may narrow them.
DEFAULT_WINDOW_START, DEFAULT_WINDOW_END = CALLING_HOURS

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
_FULL_DAY_NAMES = dict(zip(WEEKDAYS, ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")))

UTC = dt.timezone.utc
_DAY = dt.timedelta(days=1)
_SECOND = dt.timedelta(seconds=1)
_SAMPLE = dt.timedelta(hours=6)  # no zone changes its offset twice within 6 hours
_CHUNK = dt.timedelta(days=8)  # one search step: a week of schedule and a day to spare
_HORIZON = dt.timedelta(days=2 * 366)  # nothing within two years (DST cycles included) = never

# A daily interval as (start, end) offsets from local midnight; end <= start wraps (see above).
Span = tuple[dt.timedelta, dt.timedelta]
# A parsed schedule: for each weekday 0..6 (Monday = 0), its intervals.
Schedule = tuple[tuple[Span, ...], ...]


def parse_schedule(raw: Mapping[str, Sequence[Sequence[str]]] | None) -> Schedule | None:
    """``{"mon": [["09:00", "17:00"]], ...}`` -> Schedule; None stays None (every day, all day).

    Days are mon..sun (or full names, any case); days not listed (or listed with ``[]``) have
    no calling. An end before the start runs past midnight. Raises ValueError saying what to fix.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"schedule must be a mapping of weekday -> [[start, end], ...], not {raw!r}")
    days: list[list[Span]] = [[] for _ in WEEKDAYS]
    for key, intervals in raw.items():
        day = str(key).strip().lower()[:3]
        if day not in WEEKDAYS or str(key).strip().lower() not in (day, _FULL_DAY_NAMES[day]):
            raise ValueError(f"schedule day {key!r} is not one of: {', '.join(WEEKDAYS)}")
        if isinstance(intervals, (str, bytes)) or not isinstance(intervals, Iterable):
            raise ValueError(f"schedule {key}: give a list of [start, end] pairs, e.g. [[\"09:00\", \"17:00\"]]")
        for pair in intervals:
            if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(f"schedule {key}: {pair!r} is not a [start, end] pair")
            start = parse_clock(pair[0], f"schedule {key} start", allow_24=False)
            end = parse_clock(pair[1], f"schedule {key} end", allow_24=True)
            if start == end:
                raise ValueError(f"schedule {key}: {pair!r} starts and ends at once; "
                                 "write 00:00-24:00 for the whole day")
            days[WEEKDAYS.index(day)].append((start, end))
    return tuple(tuple(sorted(spans)) for spans in days)


# A time of day as written in settings and schedules: H:MM or HH:MM, optionally :SS (24-hour).
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", re.ASCII)


def parse_clock(text: Any, what: str = "time", allow_24: bool = False) -> dt.timedelta:
    """'HH:MM' or 'HH:MM:SS' (or a datetime.time) -> offset from midnight. '24:00' is the end of
    the day (midnight, the interval's end excluded as always) and only allowed as an end."""
    if isinstance(text, dt.time):
        return _time_offset(text)
    m = _CLOCK.fullmatch(str(text).strip())
    if not m:
        raise ValueError(f"{what} {text!r} is not a time of day HH:MM")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if allow_24 and (h, mi, s) == (24, 0, 0):
        return _DAY
    if not (h < 24 and mi < 60 and s < 60):
        raise ValueError(f"{what} {text!r} is not a time of day between 00:00 and 23:59"
                         + (" (or 24:00)" if allow_24 else ""))
    return dt.timedelta(hours=h, minutes=mi, seconds=s)


def clock_text(offset: dt.timedelta) -> str:
    """An offset from midnight as parse_clock reads it: 'HH:MM' ('HH:MM:SS' with seconds; '24:00')."""
    minutes, seconds = divmod(int(offset.total_seconds()), 60)
    text = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return text + f":{seconds:02d}" if seconds else text


def clock_time(offset: dt.timedelta) -> dt.time:
    """An offset within the day (not 24:00) as a datetime.time."""
    return (dt.datetime.min + offset).time()


def _time_offset(t: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name, or ValueError saying how to write one."""
    try:
        return ZoneInfo(str(name).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as America/New_York") from None


def _utc(when: dt.datetime, what: str) -> dt.datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (UTC), got naive {when!r}")
    return when.astimezone(UTC)


def _in_span(x: dt.timedelta, start: dt.timedelta, end: dt.timedelta) -> bool:
    """Is offset-from-midnight x inside the daily interval [start, end) (wrapping if end <= start)?"""
    if start < end:
        return start <= x < end
    return x >= start or x < end


@dataclass(frozen=True)
class CallingWindow:
    """A campaign's calling window, schedule and dates, parsed once."""

    start: dt.time = DEFAULT_WINDOW_START
    end: dt.time = DEFAULT_WINDOW_END
    schedule: Schedule | None = None
    schedule_tz: str = "UTC"
    start_at: dt.datetime | None = None
    stop_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        time_zone(self.schedule_tz)  # fail early on a bad zone name
        if isinstance(self.schedule, Mapping):  # the stored JSON form
            object.__setattr__(self, "schedule", parse_schedule(self.schedule))
        for name in ("start_at", "stop_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _utc(value, name))

    @classmethod
    def from_campaign(cls, campaign: Any) -> CallingWindow:
        """From the ORM Campaign (window_start/end, schedule, schedule_tz, start_at, stop_at)."""
        return cls(
            start=DEFAULT_WINDOW_START if campaign.window_start is None else campaign.window_start,
            end=DEFAULT_WINDOW_END if campaign.window_end is None else campaign.window_end,
            schedule=parse_schedule(campaign.schedule),
            schedule_tz=campaign.schedule_tz or "UTC",
            start_at=campaign.start_at,
            stop_at=campaign.stop_at,
        )

    def _zone_names(self, timezones: Sequence[str] | str | None) -> Sequence[str]:
        """The number's zones; one name alone (the stored ``timezone`` column) is one zone; none -> schedule_tz."""
        if isinstance(timezones, str):
            timezones = (timezones,) if timezones else ()
        return timezones or (self.schedule_tz,)

    # --- one instant -------------------------------------------------------------------------

    def allowed_at(self, when: dt.datetime, timezones: Sequence[str] | str | None) -> bool:
        when = _utc(when, "when")
        if self.start_at is not None and when < self.start_at:
            return False
        if self.stop_at is not None and when >= self.stop_at:
            return False
        start, end = _time_offset(self.start), _time_offset(self.end)
        for name in self._zone_names(timezones):
            local = when.astimezone(time_zone(name))
            if not _in_span(_time_offset(local.time()), start, end):
                return False
        if self.schedule is None:
            return True
        local = when.astimezone(time_zone(self.schedule_tz))
        x = _time_offset(local.time())
        weekday = local.weekday()
        for s, e in self.schedule[weekday]:
            if (s <= x < e) if s < e else x >= s:
                return True
        for s, e in self.schedule[(weekday - 1) % 7]:
            if e <= s and x < e:  # the after-midnight part of yesterday's overnight interval
                return True
        return False

    # --- the next allowed instant ------------------------------------------------------------

    def next_allowed(self, when: dt.datetime, timezones: Sequence[str] | str | None) -> dt.datetime | None:
        """The earliest allowed instant >= when (UTC), or None if there is none within two years."""
        when = _utc(when, "when")
        begin = max(when, self.start_at) if self.start_at is not None else when
        limit = begin + _HORIZON
        if self.stop_at is not None:
            limit = min(limit, self.stop_at)
        if self.schedule is not None and not any(self.schedule):
            return None
        zones = [time_zone(n) for n in self._zone_names(timezones)]
        daily = _daily_spans(_time_offset(self.start), _time_offset(self.end))
        sched_zone = time_zone(self.schedule_tz)
        a = begin
        while a < limit:
            b = min(a + _CHUNK, limit)
            allowed = [(a, b)]
            for zone in zones:
                allowed = _intersect(allowed, _zone_intervals(zone, a, b, lambda d: daily))
                if not allowed:
                    break
            if allowed and self.schedule is not None:
                allowed = _intersect(allowed, _zone_intervals(sched_zone, a, b, self._schedule_spans))
            if allowed:
                return allowed[0][0]
            a = b
        return None

    def _schedule_spans(self, day: dt.date) -> list[tuple[dt.timedelta, dt.timedelta]]:
        """Non-wrapping pieces of the schedule that fall on local date ``day``."""
        assert self.schedule is not None
        pieces = []
        for s, e in self.schedule[day.weekday()]:
            pieces.append((s, e) if s < e else (s, _DAY))
        for s, e in self.schedule[(day.weekday() - 1) % 7]:
            if e <= s and e > dt.timedelta(0):
                pieces.append((dt.timedelta(0), e))
        return pieces


def _daily_spans(start: dt.timedelta, end: dt.timedelta) -> list[tuple[dt.timedelta, dt.timedelta]]:
    if start < end:
        return [(start, end)]
    if start == end:
        return [(dt.timedelta(0), _DAY)]
    return [(start, _DAY)] + ([(dt.timedelta(0), end)] if end > dt.timedelta(0) else [])


def _offset(zone: ZoneInfo, instant: dt.datetime) -> dt.timedelta:
    return instant.astimezone(zone).utcoffset()  # type: ignore[return-value]


def _offset_segments(zone: ZoneInfo, a: dt.datetime, b: dt.datetime):
    """[(seg_start, seg_end, utc offset)] covering [a, b), split at the zone's transitions."""
    segments = []
    seg_start, off = a, _offset(zone, a)
    probe = a
    while probe < b:
        nxt = min(probe + _SAMPLE, b)
        off_next = _offset(zone, nxt)
        if off_next != off:
            lo, hi = probe, nxt  # offset(lo) == off, offset(hi) != off: a transition in (lo, hi]
            while hi - lo > _SECOND:
                mid = lo + (hi - lo) // 2
                if _offset(zone, mid) == off:
                    lo = mid
                else:
                    hi = mid
            transition = lo.replace(microsecond=0) + _SECOND  # tz transitions are on whole seconds
            segments.append((seg_start, transition, off))
            seg_start, off = transition, _offset(zone, transition)
        probe = nxt
    segments.append((seg_start, b, off))
    return [s for s in segments if s[0] < s[1]]


def _zone_intervals(zone: ZoneInfo, a: dt.datetime, b: dt.datetime,
                    spans_for_day) -> list[tuple[dt.datetime, dt.datetime]]:
    """UTC intervals within [a, b) whose wall-clock time in ``zone`` lies in spans_for_day(local date)."""
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for seg_a, seg_b, off in _offset_segments(zone, a, b):
        day = (seg_a + off).date() - _DAY
        last = (seg_b + off).date()
        while day <= last:
            midnight = dt.datetime.combine(day, dt.time(0), tzinfo=UTC) - off  # local midnight as UTC
            for s, e in spans_for_day(day):
                lo, hi = max(midnight + s, seg_a), min(midnight + e, seg_b)
                if lo < hi:
                    out.append((lo, hi))
            day += _DAY
    return _merge(out)


def _merge(intervals):
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _intersect(xs, ys):
    """Intersection of two sorted lists of disjoint half-open intervals."""
    out, i, j = [], 0, 0
    while i < len(xs) and j < len(ys):
        lo, hi = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if lo < hi:
            out.append((lo, hi))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def allowed_at(
    when_utc: dt.datetime,
    timezones: Sequence[str] | str | None,
    window_start: dt.time = DEFAULT_WINDOW_START,
    window_end: dt.time = DEFAULT_WINDOW_END,
    *,
    schedule: Mapping[str, Sequence[Sequence[str]]] | Schedule | None = None,
    schedule_tz: str = "UTC",
    start_at: dt.datetime | None = None,
    stop_at: dt.datetime | None = None,
) -> bool:
    """May a number ringing in ``timezones`` be called at ``when_utc``? (see the module docstring)"""
    window = CallingWindow(window_start, window_end, schedule, schedule_tz, start_at, stop_at)
    return window.allowed_at(when_utc, timezones)


def next_allowed(
    when_utc: dt.datetime,
    timezones: Sequence[str] | str | None,
    window_start: dt.time = DEFAULT_WINDOW_START,
    window_end: dt.time = DEFAULT_WINDOW_END,
    *,
    schedule: Mapping[str, Sequence[Sequence[str]]] | Schedule | None = None,
    schedule_tz: str = "UTC",
    start_at: dt.datetime | None = None,
    stop_at: dt.datetime | None = None,
) -> dt.datetime | None:
    """The earliest allowed instant >= ``when_utc`` (aware UTC), or None: never (after stop_at,
    no schedule day, or zones whose windows never overlap) within two years."""
    window = CallingWindow(window_start, window_end, schedule, schedule_tz, start_at, stop_at)
    return window.next_allowed(when_utc, timezones)
