"""Reading what an admin types: numbers, times of day, dates, days, zones, countries, retry rules,
key maps, phone numbers. Pure functions; each raises ``AdminError`` saying what to write instead.

Times of day and zones are read by the calling-window rule's own parsers (agi.rules.window), so a
value the CLI accepts is one the rule reads the same way.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Callable, Iterable

import phonenumbers

from agi.db.models import utcnow
from agi.errors import AdminError
from agi.outcomes import (
    DIAL_RESULTS,
    CampaignMode,
    Routing,
    parse_key_map,
    parse_outcomes,
)
from agi.rules.predial import normalize
from agi.rules.window import clock_text, parse_clock, time_zone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NONE_WORDS = {"none", "null", "-", ""}
RETRY_KEYS = tuple(sorted(r.value for r in DIAL_RESULTS)) + (Routing.DROPPED.value,)


# --- numbers and words --------------------------------------------------------------------------


def whole_number(text: str, what: str, minimum: int | None = None) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise AdminError(f"{what} must be a whole number, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise AdminError(f"{what} must be at least {minimum}, got {value}")
    return value


def number(text: str, what: str, positive: bool = True, maximum: float | None = None) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise AdminError(f"{what} must be a number, got {text!r}") from None
    if positive and not value > 0:
        raise AdminError(f"{what} must be greater than 0, got {text}")
    if maximum is not None and value > maximum:
        raise AdminError(f"{what} must be at most {maximum:g}, got {text}")
    return value


def choice(choices: Iterable[str], what: str) -> Callable[[str], str]:
    choices = tuple(choices)

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise AdminError(f"bad {what} {text!r}: choose one of {', '.join(choices)}")
        return value

    return parse


def text_up_to(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > limit:
            raise AdminError(f"value {text[:20]!r}... is longer than {limit} characters")
        return text

    return parse


def optional_text(limit: int) -> Callable[[str], str | None]:
    """Text, or None for 'none' (and the other NONE_WORDS)."""

    def parse(text: str) -> str | None:
        if text.strip().lower() in NONE_WORDS:
            return None
        return text_up_to(limit)(text)

    return parse


def yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("yes", "y", "true", "1", "on"):
        return True
    if value in ("no", "n", "false", "0", "off"):
        return False
    raise AdminError(f"expected yes or no, got {text!r}")


def mode(text: str) -> str:
    try:
        return CampaignMode.parse(text).value
    except ValueError as exc:
        raise AdminError(str(exc)) from None


# --- times of day, days, dates, zones -----------------------------------------------------------


def parse_clock_text(text: str, end: bool = False) -> dt.timedelta:
    """'09:00' -> offset from midnight; '24:00' (midnight at the end of the day) only as an end."""
    try:
        return parse_clock(text, allow_24=end)
    except ValueError:
        hint = "; 24:00 only ends a range" if text.strip() == "24:00" else ""
        raise AdminError(f"bad time {text!r}: use HH:MM (24-hour){hint}") from None


def parse_span(text: str) -> tuple[dt.timedelta, dt.timedelta]:
    """'08:00-21:00' -> (08:00, 21:00) as offsets from midnight; the start must come before the end."""
    start, sep, end = text.partition("-")
    if not sep:
        raise AdminError(f"bad time range {text!r}: use HH:MM-HH:MM, e.g. 09:00-17:00")
    a, b = parse_clock_text(start), parse_clock_text(end, end=True)
    if not a < b:
        raise AdminError(f"bad time range {text!r}: the start must be before the end")
    return a, b


def parse_hours(text: str) -> list[list[str]]:
    """'09:00-17:00' or '09:00-12:00,13:00-17:00' -> [['09:00', '17:00'], ...] (24:00 kept as is)."""
    spans = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        spans.append(parse_span(part))
    if not spans:
        raise AdminError("--hours needs at least one range, e.g. 09:00-17:00")
    spans.sort()
    for (_a1, b1), (a2, _b2) in zip(spans, spans[1:]):
        if a2 < b1:
            raise AdminError(f"--hours ranges overlap: {text}")
    return [[clock_text(a), clock_text(b)] for a, b in spans]


def parse_days(text: str) -> list[str]:
    """'mon-fri' | 'mon,wed,fri' | 'sat-sun' | 'fri-mon' | 'all' -> ordered day codes."""
    text = text.strip().lower()
    if text in ("all", "daily", "every", "*"):
        return list(DAYS)
    chosen: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, sep, last = part.partition("-")
        a, b = first.strip()[:3], (last.strip()[:3] if sep else first.strip()[:3])
        if a not in DAYS or b not in DAYS:
            raise AdminError(f"bad --days {part!r}: use mon..sun, ranges like mon-fri, or lists like mon,wed")
        i, j = DAYS.index(a), DAYS.index(b)
        span = range(i, j + 1) if i <= j else list(range(i, 7)) + list(range(0, j + 1))
        chosen.update(DAYS[k] for k in span)
    if not chosen:
        raise AdminError("--days needs at least one day")
    return [d for d in DAYS if d in chosen]


def parse_tz(text: str) -> zoneinfo.ZoneInfo:
    try:
        return time_zone(text)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def parse_when(text: str, tz: dt.tzinfo = dt.timezone.utc, end_of_day: bool = False,
               now: dt.datetime | None = None) -> dt.datetime:
    """'2026-12-01', '2026-12-01 09:00' (both in ``tz``), an ISO time with an offset, or 'now' -> aware
    UTC. A day alone is its midnight; with ``end_of_day`` (a stop, a report's --to) the next midnight,
    so that the whole day is included."""
    text = text.strip()
    if text.lower() == "now":
        return now or utcnow()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.date.fromisoformat(text)
            when = dt.datetime.combine(day + dt.timedelta(days=1) if end_of_day else day, dt.time())
        else:
            when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AdminError(f"bad date {text!r}: use YYYY-MM-DD, 'YYYY-MM-DD HH:MM' or an ISO time such as "
                         "2026-12-01T09:00+00:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(dt.timezone.utc)


# --- countries, numbers, outcomes, retry rules, keys ---------------------------------------------


def parse_region(text: str) -> str:
    code = text.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise AdminError(f"unknown country code {text!r}: use ISO 3166 alpha-2 codes such as US, CA, GB")
    return code


def parse_countries(text: str) -> list[str]:
    """'US,CA' -> ['US', 'CA']; 'any' -> [] (every country allowed)."""
    if text.strip().lower() in ("any", "all", "*", ""):
        return []
    return sorted({parse_region(part) for part in text.split(",") if part.strip()})


def normalize_number(raw: str, region: str = "US") -> str:
    """A number as E.164 with the pre-dial rules' normalisation, or AdminError saying why not."""
    e164 = normalize(raw, region)
    if e164 is None:
        raise AdminError(f"{raw!r} is not a valid phone number for region {region} (write it as +<country><number>)")
    return e164


def parse_last_results(text: str) -> list[str]:
    """'no_answer,busy' -> codes; any Result, Routing (dropped...) or Disposition code."""
    try:
        codes = [o.value for o in parse_outcomes(text)]
    except ValueError as exc:
        raise AdminError(f"{exc} (in --last-result)") from None
    if not codes:
        raise AdminError("--last-result needs at least one result, e.g. no_answer,busy")
    return codes


RETRY_FORMS = "RESULT=MINUTES,... (e.g. busy=5,no_answer=60), 'default' for the defaults, or 'none' to retry nothing"


def parse_retry(text: str) -> dict | None:
    """'busy=5,no_answer=60' -> {'busy': 5, 'no_answer': 60} minutes; 'default' -> None; 'none' -> {}."""
    word = text.strip().lower()
    if word in ("default", "defaults"):
        return None
    if word in NONE_WORDS and word:
        return {}
    if not word:
        raise AdminError(f"--retry is empty: give {RETRY_FORMS}")
    rules: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, minutes = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in RETRY_KEYS:
            raise AdminError(
                f"bad retry rule {part!r}: use RESULT=MINUTES with RESULT one of {', '.join(RETRY_KEYS)}"
            )
        if key in rules:
            raise AdminError(f"--retry gives {key} twice: give each result once, as {RETRY_FORMS}")
        value = number(minutes, f"retry minutes for {key}", positive=False)
        if value < 0:
            raise AdminError(f"retry minutes for {key} must not be negative")
        rules[key] = int(value) if value == int(value) else value
    return rules


# "Name" <digits> or digits: what Asterisk's CallerID takes and a trunk passes on
_CALLER_ID = re.compile(r'"(?P<name>[^"<>\r\n]{0,80})"\s*<\+?(?P<num>[0-9]{2,20})>|\+?(?P<bare>[0-9]{2,20})')


def caller_id(text: str) -> str:
    """'"Acme" <12025550100>' or '12025550100' (or 'none': no caller id), else AdminError."""
    value = text.strip()
    if value.lower() in NONE_WORDS:
        return ""
    if not _CALLER_ID.fullmatch(value):
        raise AdminError(f"--caller-id {text!r} is not a caller id: write it as '\"Name\" <digits>' (e.g. "
                         "'\"Acme\" <12025550100>') or as digits only")
    return value


def parse_keys(text: str) -> dict | None:
    """'1=interested,9=opt_out' -> stored key map; 'default' -> None (DEFAULT_KEY_MAP)."""
    if text.strip().lower() in ("default", "defaults"):
        return None
    raw: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, code = part.partition("=")
        if not sep:
            raise AdminError(f"bad key mapping {part!r}: use KEY=DISPOSITION, e.g. 1=interested")
        raw[key.strip()] = code.strip()
    try:
        parsed = parse_key_map(raw)
    except ValueError as exc:
        raise AdminError(f"bad --keys: {exc}") from None
    return {k: d.value for k, d in parsed.items()}
