"""Admin operations behind the CLI: campaign settings and lifecycle, dialers, the DNC list.

Plain async functions over a session; they raise ``AdminError`` with a message that
says what to do. The click layer (agi/cli/campaign.py, dialers.py, dnc.py) only parses
arguments and prints.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import phonenumbers
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agi.outcomes import (
    DIAL_RESULTS,
    CampaignMode,
    CampaignState,
    ContactState,
    Disposition,
    Result,
    Routing,
    parse_key_map,
    parse_outcomes,
)
from agi.db.models import (
    Attempt,
    Campaign,
    CampaignContact,
    Dialer,
    DialerCampaign,
    DncEntry,
    utcnow,
)
from agi.rules.compliance import MIN_RING_TIMEOUT_S
from agi.rules.lifecycle import WORKING_STATES, overall_state, seen_state
from agi.rules.retry import DEFAULT_RETRY_MINUTES
from agi.rules.predial import PHONE_FIELD_CHOICES, normalize
from agi.rules.window import DEFAULT_WINDOW_END, DEFAULT_WINDOW_START, parse_schedule
from agi.settings import parse_hostport


class AdminError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""


# a campaign may only narrow the legal calling hours (agi.rules.compliance)
LEGAL_WINDOW = (DEFAULT_WINDOW_START, DEFAULT_WINDOW_END)
NOTSURE_CHOICES = ("human", "machine")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NONE_WORDS = {"none", "null", "-", ""}


# --- parsing of setting values (pure) ---------------------------------------------------------


def _int(text: str, what: str, minimum: int | None = None) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise AdminError(f"{what} must be a whole number, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise AdminError(f"{what} must be at least {minimum}, got {value}")
    return value


def _float(text: str, what: str, positive: bool = True, maximum: float | None = None) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise AdminError(f"{what} must be a number, got {text!r}") from None
    if positive and not value > 0:
        raise AdminError(f"{what} must be greater than 0, got {text}")
    if maximum is not None and value > maximum:
        raise AdminError(f"{what} must be at most {maximum:g}, got {text}")
    return value


def parse_hhmm(text: str) -> dt.time:
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        raise AdminError(f"bad time {text!r}: use HH:MM (24-hour)")
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour == 24:
        if minute:
            raise AdminError(f"bad time {text!r}: use HH:MM (24-hour)")
        return dt.time(23, 59, 59)
    return dt.time(hour, minute)


def parse_span(text: str) -> tuple[dt.time, dt.time]:
    """'08:00-21:00' -> (08:00, 21:00); the start must come before the end."""
    start, sep, end = text.partition("-")
    if not sep:
        raise AdminError(f"bad time range {text!r}: use HH:MM-HH:MM, e.g. 09:00-17:00")
    a, b = parse_hhmm(start), parse_hhmm(end)
    if not a < b:
        raise AdminError(f"bad time range {text!r}: the start must be before the end")
    return a, b


def parse_window(text: str) -> dict:
    start, end = parse_span(text)
    if start < LEGAL_WINDOW[0] or end > LEGAL_WINDOW[1]:
        raise AdminError(
            f"calling window {text} is outside 08:00-21:00 local time (FTC TSR 310.4(c)); "
            "a campaign may only narrow it"
        )
    return {"window_start": start, "window_end": end}


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


RETRY_KEYS = tuple(sorted(r.value for r in DIAL_RESULTS)) + (Routing.DROPPED.value,)


def parse_retry(text: str) -> dict | None:
    """'busy=5,no_answer=60' -> {'busy': 5, 'no_answer': 60} minutes; 'default' -> None."""
    if text.strip().lower() in ("default", "defaults"):
        return None
    rules: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, minutes = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in RETRY_KEYS:
            raise AdminError(
                f"bad retry rule {part!r}: use RESULT=MINUTES with RESULT one of {', '.join(RETRY_KEYS)}"
            )
        value = _float(minutes, f"retry minutes for {key}", positive=False)
        if value < 0:
            raise AdminError(f"retry minutes for {key} must not be negative")
        rules[key] = int(value) if value == int(value) else value
    return rules


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


def _choice(choices: Iterable[str], what: str) -> Callable[[str], str]:
    choices = tuple(choices)

    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise AdminError(f"bad {what} {text!r}: choose one of {', '.join(choices)}")
        return value

    return parse


def _optional_text(limit: int) -> Callable[[str], str | None]:
    def parse(text: str) -> str | None:
        if text.strip().lower() in NONE_WORDS:
            return None
        return _text(limit)(text)

    return parse


def _text(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text) > limit:
            raise AdminError(f"value {text[:20]!r}... is longer than {limit} characters")
        return text

    return parse


def _mode(text: str) -> str:
    try:
        return CampaignMode.parse(text).value
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def _yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("yes", "y", "true", "1", "on"):
        return True
    if value in ("no", "n", "false", "0", "off"):
        return False
    raise AdminError(f"expected yes or no, got {text!r}")


def _ring_timeout(text: str) -> int:
    value = _int(text, "--ring-timeout")
    if value < MIN_RING_TIMEOUT_S:
        raise AdminError(
            f"--ring-timeout {value} s is too short: ring at least {MIN_RING_TIMEOUT_S} s "
            "or the call counts as abandoned (FTC TSR 16 CFR 310.4(b)(4)(ii))"
        )
    return value


@dataclass(frozen=True)
class SettingOption:
    """One campaign setting as a CLI option: --option TEXT -> {model attribute: value}."""

    option: str
    metavar: str
    help: str
    parse: Callable[[str], Any]
    attr: str | None = None  # None: parse returns the {attr: value} dict itself

    def values(self, text: str) -> dict:
        parsed = self.parse(text)
        return parsed if self.attr is None else {self.attr: parsed}


SETTING_OPTIONS: tuple[SettingOption, ...] = (
    SettingOption("--mode", "MODE", "broadcast | progressive | predictive.", _mode, "mode"),
    SettingOption("--phone-field", "FIELD",
                  "Phone to dial: home, work, cell, phone, or any (the first one filled of phone, cell, home, work).",
                  _choice(PHONE_FIELD_CHOICES, "phone field"), "phone_field"),
    SettingOption("--countries", "CC,CC", "Allowed destination countries (ISO codes), or 'any'.",
                  parse_countries, "allowed_countries"),
    SettingOption("--region", "CC", "Region for numbers written without +country code.", parse_region,
                  "default_region"),
    SettingOption("--window", "HH:MM-HH:MM", "Calling window in the number's local time (within 08:00-21:00).",
                  parse_window),
    SettingOption("--lines", "N", "Lines (simultaneous calls) for the campaign.",
                  lambda t: _int(t, "--lines", 1), "lines"),
    SettingOption("--cps", "N", "Calls per second.", lambda t: _float(t, "--cps"), "cps"),
    SettingOption("--ratio", "X", "Pacing ratio: calls per available agent.", lambda t: _float(t, "--ratio"),
                  "pacing_ratio"),
    SettingOption("--ring-timeout", "SECONDS", "Ring timeout (at least 15 s).", _ring_timeout, "ring_timeout"),
    SettingOption("--max-attempts", "N", "Maximum counted attempts per contact.",
                  lambda t: _int(t, "--max-attempts", 1), "max_attempts"),
    SettingOption("--retry", "RESULT=MIN,...",
                  "Retry rules in minutes, e.g. busy=5,no_answer=60. They replace the defaults ("
                  + ", ".join(f"{k}={v}" for k, v in DEFAULT_RETRY_MINUTES.items())
                  + "): a result not listed is not retried. 'default' restores them.",
                  parse_retry, "retry_rules"),
    SettingOption("--queue", "NAME", "Asterisk agent queue ('none': no agents).", _optional_text(80),
                  "queue_name"),
    SettingOption("--drop-timeout", "SECONDS", "Seconds a live answer waits for an agent before the drop message.",
                  lambda t: _int(t, "--drop-timeout", 1), "drop_timeout"),
    SettingOption("--drop-cap", "PCT", "Maximum drop rate in percent of live answers.",
                  lambda t: _float(t, "--drop-cap", maximum=100), "drop_cap_pct"),
    SettingOption("--drop-window-hours", "H", "Rolling window of the drop rate (720 = 30 days, US).",
                  lambda t: _int(t, "--drop-window-hours", 1), "drop_window_hours"),
    SettingOption("--message", "SOUND", "Message played to a live answer.", _text(200), "message"),
    SettingOption("--drop-message", "SOUND", "Message played when no agent takes the call.", _text(200),
                  "drop_message"),
    SettingOption("--voicemail-message", "SOUND", "Message left on answering machines ('none': hang up).",
                  _optional_text(200), "voicemail_message"),
    SettingOption("--optout-message", "SOUND", "Confirmation played after an opt-out.", _text(200),
                  "optout_message"),
    SettingOption("--callback-message", "SOUND", "Confirmation played after a call-back request.", _text(200),
                  "callback_message"),
    SettingOption("--caller-id", "CID", "Caller ID sent with each call.", _text(120), "caller_id"),
    SettingOption("--target-seconds", "SECONDS", "Talk time that makes a live answer a target call.",
                  lambda t: _int(t, "--target-seconds", 0), "target_seconds"),
    SettingOption("--sales-cycle-days", "DAYS", "Sales cycle for target/repeat calls.",
                  lambda t: _int(t, "--sales-cycle-days", 1), "sales_cycle_days"),
    SettingOption("--keys", "K=DISP,...", "IVR key map, e.g. 1=interested,2=not_interested,9=opt_out ('default').",
                  parse_keys, "key_map"),
    SettingOption("--key-tries", "N", "Times the message is offered for a key.",
                  lambda t: _int(t, "--key-tries", 1), "key_tries"),
    SettingOption("--key-timeout", "SECONDS", "Seconds to wait for a key after the message.",
                  lambda t: _int(t, "--key-timeout", 1), "key_timeout"),
    SettingOption("--notsure-as", "human|machine", "How AMD NOTSURE is treated.",
                  _choice(NOTSURE_CHOICES, "--notsure-as"), "notsure_as"),
    SettingOption("--wait-for-beep", "yes|no", "Wait for the beep before leaving a voicemail.", _yes_no,
                  "wait_for_beep"),
    SettingOption("--callback-delay", "MINUTES", "Default call-back delay ('none': next day same time).",
                  lambda t: None if t.strip().lower() in NONE_WORDS else _int(t, "--callback-delay", 1),
                  "callback_delay_minutes"),
)


def option_dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def parse_settings(given: Mapping[str, str | None]) -> dict:
    """CLI option texts keyed by option_dest() -> model attribute values (only those given)."""
    values: dict = {}
    for spec in SETTING_OPTIONS:
        text = given.get(option_dest(spec.option))
        if text is not None:
            values.update(spec.values(text))
    return values


def validate_campaign(c: Campaign) -> None:
    """Rules across fields, checked after every change."""
    mode = CampaignMode(c.mode or CampaignMode.BROADCAST.value)
    if mode is not CampaignMode.BROADCAST and not c.queue_name:
        raise AdminError(f"a {mode.value} campaign needs agents: give --queue NAME (or --mode broadcast)")


# --- campaigns ---------------------------------------------------------------------------------

# Settings copied by `campaign create NEW --from OLD` (everything but identity, state and dates).
_NOT_COPIED = {"id", "name", "state", "start_at", "stop_at", "source_campaign_id", "created_at", "updated_at"}


async def get_campaign(session: AsyncSession, ref: str | int) -> Campaign:
    """A campaign by name, or by id when ``ref`` is a number and no campaign has that name."""
    text = str(ref).strip()
    found = (await session.execute(select(Campaign).where(Campaign.name == text))).scalar_one_or_none()
    if found is None and text.isdigit():
        found = await session.get(Campaign, int(text))
    if found is None:
        raise AdminError(f"no campaign {text!r} (by name or id); see `dialer campaign list`")
    return found


def parse_last_results(text: str) -> list[str]:
    """'no_answer,busy' -> codes; any Result, Routing (dropped...) or Disposition code."""
    try:
        codes = [o.value for o in parse_outcomes(text)]
    except ValueError as exc:
        raise AdminError(f"{exc} (in --last-result)") from None
    if not codes:
        raise AdminError("--last-result needs at least one result, e.g. no_answer,busy")
    return codes


async def create_campaign(
    session: AsyncSession,
    name: str,
    values: Mapping[str, Any],
    source: str | None = None,
    last_results: list[str] | None = None,
) -> tuple[Campaign, int]:
    """A new campaign; with ``source``, a copy of its settings (``values`` override them) and the
    contacts whose last result there is one of ``last_results``. Returns (campaign, contacts copied)."""
    name = name.strip()
    if not name:
        raise AdminError("a campaign needs a name")
    if len(name) > 200:
        raise AdminError("a campaign name is at most 200 characters")
    if name.isdigit():
        raise AdminError(f"campaign name {name!r} is all digits: it would be confused with an id")
    if (await session.execute(select(Campaign.id).where(Campaign.name == name))).first():
        raise AdminError(f"campaign {name!r} already exists; pick another name or use `dialer campaign set`")
    if last_results and source is None:
        raise AdminError("--last-result needs --from CAMPAIGN")

    campaign = Campaign(name=name, state=CampaignState.UNSCHEDULED.value)
    old = None
    if source is not None:
        old = await get_campaign(session, source)
        for col in Campaign.__table__.columns:
            if col.key not in _NOT_COPIED:
                setattr(campaign, col.key, getattr(old, col.key))
        campaign.source_campaign_id = old.id
    for attr, value in values.items():
        setattr(campaign, attr, value)
    _fill_defaults(campaign)
    validate_campaign(campaign)
    session.add(campaign)
    await session.flush()

    copied = 0
    if old is not None and last_results:
        copied = await copy_contacts_by_last_result(session, old.id, campaign.id, last_results)
    return campaign, copied


def _fill_defaults(c: Campaign) -> None:
    """Column defaults apply at INSERT; fill them now so validation and display see them."""
    for col in Campaign.__table__.columns:
        if getattr(c, col.key) is None and col.default is not None and col.default.is_scalar:
            setattr(c, col.key, col.default.arg)


async def copy_contacts_by_last_result(
    session: AsyncSession, old_id: int, new_id: int, codes: list[str]
) -> int:
    """Memberships of ``old_id`` whose last result (or its routing/disposition) is in ``codes``
    become fresh pending memberships of ``new_id`` (one INSERT ... SELECT)."""
    results = [c for c in codes if c in {r.value for r in Result}]
    routings = [c for c in codes if c in {r.value for r in Routing}]
    dispositions = [c for c in codes if c in {d.value for d in Disposition}]
    conds = []
    if results:
        conds.append(CampaignContact.last_result.in_(results))
    if routings or dispositions:
        last = select(Attempt.id).where(Attempt.id == CampaignContact.last_attempt_id)
        sub = []
        if routings:
            sub.append(Attempt.routing.in_(routings))
        if dispositions:
            sub.append(Attempt.disposition.in_(dispositions))
        conds.append(last.where(or_(*sub)).exists())
    now = utcnow()
    source = select(
        CampaignContact.contact_id,
        CampaignContact.number,
        CampaignContact.timezone,
    ).where(
        CampaignContact.campaign_id == old_id,
        CampaignContact.state != ContactState.DELETED.value,
        or_(*conds),
    )
    rows = (await session.execute(source)).all()
    if not rows:
        return 0
    await session.execute(
        insert(CampaignContact),
        [
            {
                "campaign_id": new_id,
                "contact_id": r.contact_id,
                "number": r.number,
                "timezone": r.timezone,
                "state": ContactState.PENDING.value,
                "attempts": 0,
                "updated_at": now,
            }
            for r in rows
        ],
    )
    return len(rows)


async def contact_state_counts(session: AsyncSession, campaign_ids: list[int] | None = None) -> dict:
    """{campaign_id: {state: count}}."""
    q = select(CampaignContact.campaign_id, CampaignContact.state, func.count()).group_by(
        CampaignContact.campaign_id, CampaignContact.state
    )
    if campaign_ids is not None:
        q = q.where(CampaignContact.campaign_id.in_(campaign_ids))
    out: dict[int, dict[str, int]] = {}
    for cid, state, n in (await session.execute(q)).all():
        out.setdefault(cid, {})[state] = n
    return out


async def list_campaigns(session: AsyncSession) -> list[dict]:
    campaigns = (await session.execute(select(Campaign).order_by(Campaign.id))).scalars().all()
    counts = await contact_state_counts(session)
    attempts = dict(
        (await session.execute(select(Attempt.campaign_id, func.count()).group_by(Attempt.campaign_id))).all()
    )
    now = utcnow()
    on_dialers: dict[int, list[CampaignState]] = {}
    for campaign_id, state, heartbeat in (await session.execute(
            select(DialerCampaign.campaign_id, DialerCampaign.state, Dialer.last_heartbeat)
            .join(Dialer, Dialer.id == DialerCampaign.dialer_id))).all():
        on_dialers.setdefault(campaign_id, []).append(seen_state(CampaignState(state), heartbeat, now))
    out = []
    for c in campaigns:
        states = counts.get(c.id, {})
        out.append(
            {
                "id": c.id,
                "name": c.name,
                "mode": c.mode,
                "state": c.state,
                "contacts": sum(states.values()),
                "pending": states.get(ContactState.PENDING.value, 0)
                + states.get(ContactState.RETRY_SCHEDULED.value, 0),
                "attempts": attempts.get(c.id, 0),
                "dialers": len(on_dialers.get(c.id, [])),
                "overall_state": overall_state(on_dialers.get(c.id, []), CampaignState(c.state)).value,
                "start_at": c.start_at,
                "stop_at": c.stop_at,
            }
        )
    return out


def campaign_settings(c: Campaign) -> dict:
    """Every column of the campaign, for display."""
    return {col.key: getattr(c, col.key) for col in Campaign.__table__.columns}


async def show_campaign(session: AsyncSession, ref: str) -> dict:
    c = await get_campaign(session, ref)
    rows = (
        await session.execute(
            select(Dialer, DialerCampaign)
            .join(DialerCampaign, DialerCampaign.dialer_id == Dialer.id)
            .where(DialerCampaign.campaign_id == c.id)
            .order_by(Dialer.name)
        )
    ).all()
    now = utcnow()
    dialers = []
    for d, dc in rows:
        # a dialer whose heartbeat stopped is not working the campaign, whatever its row says
        state = seen_state(CampaignState(dc.state), d.last_heartbeat, now)
        dialers.append({
            "dialer": d.name,
            "lines": dc.lines if dc.lines is not None else c.lines,
            "state": state.value,
            "state_label": state.label,
            "last_heartbeat": d.last_heartbeat,
        })
    counts = (await contact_state_counts(session, [c.id])).get(c.id, {})
    return {
        "campaign": campaign_settings(c),
        "overall_state": _overall(c, [CampaignState(d["state"]) for d in dialers]),
        "dialers": dialers,
        "contacts": {s.value: counts.get(s.value, 0) for s in ContactState},
    }


def _overall(c: Campaign, per_dialer: list[CampaignState]) -> str:
    return overall_state(per_dialer, CampaignState(c.state)).value


async def set_campaign(session: AsyncSession, ref: str, values: Mapping[str, Any], new_name: str | None = None) -> dict:
    """Change settings; returns {attribute: (old, new)} for what changed."""
    c = await get_campaign(session, ref)
    changes: dict[str, tuple[Any, Any]] = {}
    if new_name is not None and new_name.strip() != c.name:
        new_name = new_name.strip()
        if not new_name or new_name.isdigit() or len(new_name) > 200:
            raise AdminError(f"bad campaign name {new_name!r}")
        if (await session.execute(select(Campaign.id).where(Campaign.name == new_name))).first():
            raise AdminError(f"campaign {new_name!r} already exists")
        changes["name"] = (c.name, new_name)
        c.name = new_name
    for attr, value in values.items():
        old = getattr(c, attr)
        if old != value:
            changes[attr] = (old, value)
            setattr(c, attr, value)
    if not changes:
        return {}
    validate_campaign(c)
    await session.flush()
    return changes


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


def parse_hours(text: str) -> list[list[str]]:
    """'09:00-17:00' or '09:00-12:00,13:00-17:00' -> [['09:00', '17:00'], ...]."""
    spans = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        a, b = parse_span(part)
        spans.append((a, b))
    if not spans:
        raise AdminError("--hours needs at least one range, e.g. 09:00-17:00")
    spans.sort()
    for (a1, b1), (a2, _b2) in zip(spans, spans[1:]):
        if a2 < b1:
            raise AdminError(f"--hours ranges overlap: {text}")
    return [[a.strftime("%H:%M"), b.strftime("%H:%M")] for a, b in spans]


def parse_when(text: str, tz: zoneinfo.ZoneInfo, end_of_day: bool = False, now: dt.datetime | None = None) -> dt.datetime:
    """'2026-12-01', '2026-12-01 09:00' (in ``tz``), an ISO time with offset, or 'now' -> aware UTC."""
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
        raise AdminError(f"bad date {text!r}: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(dt.timezone.utc)


def parse_tz(text: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(text.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise AdminError(f"unknown time zone {text!r}: use an IANA name such as America/New_York") from None


async def schedule_campaign(
    session: AsyncSession,
    ref: str,
    start: str | None = None,
    stop: str | None = None,
    days: str | None = None,
    hours: str | None = None,
    tz: str | None = None,
    now: dt.datetime | None = None,
) -> dict:
    """Set dates and daily hours; an unscheduled campaign becomes scheduled.

    Seed 003: scheduling needs start and stop dates, a schedule, and lines.
    """
    now = now or utcnow()
    c = await get_campaign(session, ref)
    zone = parse_tz(tz) if tz else parse_tz(c.schedule_tz or "UTC")
    start_at = parse_when(start, zone, now=now) if start else c.start_at
    stop_at = parse_when(stop, zone, end_of_day=True, now=now) if stop else c.stop_at
    if start_at is None or stop_at is None:
        raise AdminError("a schedule needs --start and --stop dates (e.g. --start 2026-12-01 --stop 2026-12-31)")
    if stop_at <= start_at:
        raise AdminError("--stop must be after --start")
    if stop_at <= now:
        raise AdminError(f"--stop {stop_at:%Y-%m-%d %H:%M} UTC is in the past")
    schedule = c.schedule
    if days is not None or hours is not None:
        day_list = parse_days(days) if days is not None else list(DAYS)
        if hours is not None:
            spans = parse_hours(hours)
        elif schedule:
            spans = next(iter(schedule.values()))
        else:
            spans = [[c.window_start.strftime("%H:%M"), c.window_end.strftime("%H:%M")]]
        schedule = {d: [list(s) for s in spans] for d in day_list}
        try:
            parse_schedule(schedule)  # the window rule must accept what we store
        except ValueError as exc:
            raise AdminError(f"bad schedule: {exc}") from None
    if CampaignState(c.state) in WORKING_STATES and stop_at <= now:
        raise AdminError("the campaign is running: its stop date cannot be in the past")
    c.start_at, c.stop_at, c.schedule = start_at, stop_at, schedule
    if tz:
        c.schedule_tz = zone.key
    old_state = c.state
    if c.state == CampaignState.UNSCHEDULED.value:
        c.state = CampaignState.SCHEDULED.value
    await _set_dialer_states(session, c.id, CampaignState.SCHEDULED, [CampaignState.UNSCHEDULED])
    await session.flush()
    return {"campaign": c.name, "state": c.state, "was": old_state, "start_at": c.start_at,
            "stop_at": c.stop_at, "schedule": c.schedule, "tz": c.schedule_tz,
            "dialers": await _dialer_count(session, c.id)}


async def _dialer_count(session: AsyncSession, campaign_id: int) -> int:
    return (
        await session.execute(select(func.count()).select_from(DialerCampaign).where(
            DialerCampaign.campaign_id == campaign_id))
    ).scalar_one()


# Campaign.state is the admin's intent (agi/rules/lifecycle.py); these may be started.
_STARTABLE = {
    CampaignState.SCHEDULED,
    CampaignState.STOPPED,
    CampaignState.STOPPED_BY_ADMIN,
    CampaignState.STOPPED_BY_DIALER,
    CampaignState.COMPLETED,
}


async def start_campaign(session: AsyncSession, ref: str, now: dt.datetime | None = None) -> dict:
    """scheduled/stopped/completed -> running; unscheduled must be scheduled first."""
    now = now or utcnow()
    c = await get_campaign(session, ref)
    state = CampaignState(c.state)
    if state in WORKING_STATES:
        return {"campaign": c.name, "state": c.state, "was": c.state, "changed": False, "warnings": []}
    if state is CampaignState.UNSCHEDULED or c.start_at is None or c.stop_at is None:
        raise AdminError(
            f"campaign {c.name!r} is not scheduled (no start/stop dates): give it dates first with "
            f"`dialer campaign schedule {c.name} --start YYYY-MM-DD --stop YYYY-MM-DD`"
        )
    if state not in _STARTABLE:  # pragma: no cover - every state is handled above
        raise AdminError(f"campaign {c.name!r} is {state.label}; it cannot be started")
    if c.stop_at is not None and c.stop_at <= now:
        raise AdminError(
            f"campaign {c.name!r} stopped at {c.stop_at:%Y-%m-%d %H:%M} UTC: "
            f"set a later --stop with `dialer campaign schedule {c.name} --stop YYYY-MM-DD`"
        )
    warnings = []
    if not await _dialer_count(session, c.id):
        warnings.append(f"no dialer assigned: `dialer campaign assign {c.name} --dialer NAME` or it will not dial")
    counts = (await contact_state_counts(session, [c.id])).get(c.id, {})
    if not counts.get(ContactState.PENDING.value) and not counts.get(ContactState.RETRY_SCHEDULED.value):
        warnings.append("no contact to dial: import some with `dialer contacts import FILE.csv --campaign ...`")
    c.state = CampaignState.RUNNING.value
    # until each dialer's next tick says running (or paused, ...): waiting for it
    await _set_dialer_states(session, c.id, CampaignState.SCHEDULED, [
        CampaignState.UNSCHEDULED, CampaignState.STOPPED, CampaignState.STOPPED_BY_ADMIN,
        CampaignState.STOPPED_BY_DIALER, CampaignState.COMPLETED])
    await session.flush()
    return {"campaign": c.name, "state": c.state, "was": state.value, "changed": True, "warnings": warnings}


async def stop_campaign(session: AsyncSession, ref: str, admin: bool = False) -> dict:
    """-> stopped (no new calls, calls in progress finish); admin: -> stopped_by_admin and the
    contacts still waiting (pending, retry_scheduled) are cancelled."""
    c = await get_campaign(session, ref)
    was = c.state
    target = CampaignState.STOPPED_BY_ADMIN if admin else CampaignState.STOPPED
    if not admin and was in (CampaignState.STOPPED_BY_ADMIN.value, CampaignState.COMPLETED.value,
                             CampaignState.UNSCHEDULED.value, CampaignState.STOPPED.value):
        return {"campaign": c.name, "state": was, "was": was, "cancelled": 0, "changed": False}
    c.state = target.value
    await _set_dialer_states(session, c.id, target)
    cancelled = 0
    if admin:
        res = await session.execute(
            update(CampaignContact)
            .where(
                CampaignContact.campaign_id == c.id,
                CampaignContact.state.in_([ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value]),
            )
            .values(state=ContactState.CANCELLED.value, next_attempt_at=None, updated_at=utcnow())
        )
        cancelled = res.rowcount or 0
    await session.flush()
    return {"campaign": c.name, "state": c.state, "was": was, "cancelled": cancelled, "changed": was != c.state or cancelled > 0}


async def delete_campaign(session: AsyncSession, ref: str) -> dict:
    """Delete a campaign with its memberships and attempts; a running one must be stopped first."""
    c = await get_campaign(session, ref)
    if CampaignState(c.state) in WORKING_STATES:
        raise AdminError(f"campaign {c.name!r} is running: `dialer campaign stop {c.name}` first")
    live = (
        await session.execute(
            select(func.count()).select_from(CampaignContact).where(
                CampaignContact.campaign_id == c.id,
                CampaignContact.state.in_([s.value for s in ContactState if s.live]),
            )
        )
    ).scalar_one()
    if live:
        raise AdminError(f"campaign {c.name!r} still has {live} call(s) in progress; wait for them to end")
    cid = c.id
    counts = {
        "attempts": (await session.execute(delete(Attempt).where(Attempt.campaign_id == cid))).rowcount,
        "contacts": (await session.execute(delete(CampaignContact).where(CampaignContact.campaign_id == cid))).rowcount,
    }
    await session.execute(delete(DialerCampaign).where(DialerCampaign.campaign_id == cid))
    await session.execute(update(Campaign).where(Campaign.source_campaign_id == cid).values(source_campaign_id=None))
    await session.execute(delete(Campaign).where(Campaign.id == cid))
    session.expunge(c)
    return {"campaign": c.name, "id": cid, **counts}


# --- dialers -----------------------------------------------------------------------------------


async def add_dialer(
    session: AsyncSession,
    name: str,
    ami: str | None = None,
    lines: int | None = None,
    cps: float | None = None,
    template: str | None = None,
    update_existing: bool = False,
) -> tuple[Dialer, bool]:
    """Add a dialer (or change one with ``update_existing``); returns (dialer, created)."""
    name = name.strip()
    if not name or len(name) > 80:
        raise AdminError("a dialer needs a name of 1 to 80 characters")
    d = (await session.execute(select(Dialer).where(Dialer.name == name))).scalar_one_or_none()
    created = d is None
    if not created and not update_existing:
        raise AdminError(f"dialer {name!r} already exists (add --update to change it)")
    if created:
        d = Dialer(name=name)
        session.add(d)
    if ami is not None:
        try:
            d.ami_host, d.ami_port = parse_hostport(ami, 5038)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        if not 0 < d.ami_port < 65536:
            raise AdminError(f"bad AMI port {d.ami_port}")
    if lines is not None:
        if lines < 1:
            raise AdminError("--lines must be at least 1")
        d.lines = lines
    if cps is not None:
        if not cps > 0:
            raise AdminError("--cps must be greater than 0")
        d.cps = cps
    if template is not None:
        if "{number}" not in template:
            raise AdminError("--template must contain {number}, e.g. 'PJSIP/{number}@trunk'")
        try:
            template.format(number="+15550100")
        except (KeyError, IndexError, ValueError):
            raise AdminError("--template may only use the {number} placeholder") from None
        d.dial_template = template
    for col in Dialer.__table__.columns:  # defaults for display before INSERT
        if getattr(d, col.key) is None and col.default is not None and col.default.is_scalar:
            setattr(d, col.key, col.default.arg)
    await session.flush()
    return d, created


async def list_dialers(session: AsyncSession) -> list[dict]:
    dialers = (await session.execute(select(Dialer).order_by(Dialer.name))).scalars().all()
    rows = (
        await session.execute(
            select(DialerCampaign.dialer_id, Campaign.name, DialerCampaign.state, DialerCampaign.lines)
            .join(Campaign, Campaign.id == DialerCampaign.campaign_id)
            .order_by(Campaign.name)
        )
    ).all()
    by_dialer: dict[int, list] = {}
    for dialer_id, cname, state, lines in rows:
        by_dialer.setdefault(dialer_id, []).append({"campaign": cname, "state": state, "lines": lines})
    return [
        {
            "id": d.id,
            "name": d.name,
            "ami": f"{d.ami_host}:{d.ami_port}",
            "lines": d.lines,
            "cps": d.cps,
            "template": d.dial_template,
            "last_heartbeat": d.last_heartbeat,
            "campaigns": by_dialer.get(d.id, []),
        }
        for d in dialers
    ]


async def assign_campaign(
    session: AsyncSession, ref: str, dialer_name: str, lines: int | None = None, remove: bool = False
) -> dict:
    """Assign a campaign to a dialer (its lines there), or remove the assignment."""
    c = await get_campaign(session, ref)
    d = (await session.execute(select(Dialer).where(Dialer.name == dialer_name.strip()))).scalar_one_or_none()
    if d is None:
        raise AdminError(f"no dialer {dialer_name!r}; add it with `dialer dialers add {dialer_name} --ami HOST:PORT`")
    dc = await session.get(DialerCampaign, (d.id, c.id))
    if remove:
        if dc is None:
            raise AdminError(f"campaign {c.name!r} is not assigned to dialer {d.name!r}")
        await session.delete(dc)
        await session.flush()
        return {"campaign": c.name, "dialer": d.name, "removed": True}
    if lines is not None:
        if lines < 1:
            raise AdminError("--lines must be at least 1")
        if lines > d.lines:
            raise AdminError(f"dialer {d.name!r} has only {d.lines} lines; give --lines {d.lines} or fewer")
    if dc is None:
        dc = DialerCampaign(dialer_id=d.id, campaign_id=c.id, lines=lines, state=_initial_dialer_state(c))
        session.add(dc)
    else:
        dc.lines = lines
    await session.flush()
    return {"campaign": c.name, "dialer": d.name, "lines": lines if lines is not None else c.lines,
            "state": dc.state, "removed": False}


def _initial_dialer_state(c: Campaign) -> str:
    """A new assignment shows the admin's intent until the dialer's next tick recomputes it."""
    state = CampaignState(c.state)
    if state in WORKING_STATES or state is CampaignState.STOPPED_BY_DIALER:
        return CampaignState.SCHEDULED.value
    return state.value


async def _set_dialer_states(session: AsyncSession, campaign_id: int, to: CampaignState,
                             only_from: Iterable[CampaignState] | None = None) -> None:
    q = update(DialerCampaign).where(DialerCampaign.campaign_id == campaign_id)
    if only_from is not None:
        q = q.where(DialerCampaign.state.in_([s.value for s in only_from]))
    await session.execute(q.values(state=to.value, updated_at=utcnow()))


# --- DNC list ----------------------------------------------------------------------------------


def normalize_number(raw: str, region: str = "US") -> str:
    """A number as E.164 with the pre-dial rules' normalisation, or AdminError saying why not."""
    e164 = normalize(raw, region)
    if e164 is None:
        raise AdminError(f"{raw!r} is not a valid phone number for region {region} (write it as +<country><number>)")
    return e164


async def dnc_add(conn: AsyncConnection, number: str, source: str = "manual") -> bool:
    """Add an E.164 number; False if it was already listed (agi.db.attempts.add_dnc)."""
    from agi.db.attempts import add_dnc

    return await add_dnc(conn, number, (source or "manual")[:40])


async def dnc_remove(conn: AsyncConnection, number: str) -> bool:
    res = await conn.execute(delete(DncEntry).where(DncEntry.number == number))
    return bool(res.rowcount)


async def dnc_get(conn: AsyncConnection, number: str):
    """The DNC row (number, source, added_at) or None."""
    return (await conn.execute(select(DncEntry.number, DncEntry.source, DncEntry.added_at)
                               .where(DncEntry.number == number))).first()


async def dnc_list(conn: AsyncConnection, source: str | None = None, limit: int | None = None) -> list:
    q = select(DncEntry.number, DncEntry.source, DncEntry.added_at).order_by(DncEntry.number)
    if source:
        q = q.where(DncEntry.source == source)
    if limit:
        q = q.limit(limit)
    return list((await conn.execute(q)).all())
