"""Every campaign setting as a CLI option, declared once: its option name, help text, and how its
text becomes model attribute values. `campaign create` and `campaign set` are built from this table
(agi/cli/campaign.py); the rules across settings are checked by agi.admin.campaigns.validate_campaign.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from agi.admin import text as t
from agi.errors import AdminError
from agi.rules.compliance import MAX_DROP_RATE_PCT, MIN_RING_TIMEOUT_S
from agi.rules.predial import PHONE_FIELD_CHOICES
from agi.rules.retry import DEFAULT_RETRY_MINUTES
from agi.rules.window import DEFAULT_WINDOW_END, DEFAULT_WINDOW_START, clock_time

# a campaign may only narrow the legal calling hours (agi.rules.compliance)
LEGAL_WINDOW = (DEFAULT_WINDOW_START, DEFAULT_WINDOW_END)
NOTSURE_CHOICES = ("human", "machine")


def parse_window(text: str) -> dict:
    """'09:00-20:00' -> window_start/window_end, within the legal calling hours."""
    start, end = t.parse_span(text)
    if end >= dt.timedelta(days=1) or clock_time(start) < LEGAL_WINDOW[0] or clock_time(end) > LEGAL_WINDOW[1]:
        raise AdminError(
            f"calling window {text} is outside 08:00-21:00 local time (FTC TSR 310.4(c)); "
            "a campaign may only narrow it"
        )
    return {"window_start": clock_time(start), "window_end": clock_time(end)}


def ring_timeout(text: str) -> int:
    value = t.whole_number(text, "--ring-timeout")
    if value < MIN_RING_TIMEOUT_S:
        raise AdminError(
            f"--ring-timeout {value} s is too short: ring at least {MIN_RING_TIMEOUT_S} s "
            "or the call counts as abandoned (FTC TSR 16 CFR 310.4(b)(4)(ii))"
        )
    return value


def drop_cap(text: str) -> float:
    return t.number(text, "--drop-cap", maximum=100)


ALLOW_DROP_CAP_OPTION = "--allow-drop-cap-above-legal"


def check_drop_cap(values: dict, allow_above_legal: bool) -> None:
    """A drop cap above the legal one (agi.rules.compliance) only when the admin says so."""
    cap = values.get("drop_cap_pct")
    if cap is not None and cap > MAX_DROP_RATE_PCT and not allow_above_legal:
        raise AdminError(
            f"--drop-cap {cap:g} is above {MAX_DROP_RATE_PCT:g} %, the legal cap on abandoned calls (FTC TSR "
            f"16 CFR 310.4(b)(4)(i); Ofcom the same); add {ALLOW_DROP_CAP_OPTION} if another rule applies to "
            "this campaign; nothing was changed"
        )


def callback_delay(text: str) -> int | None:
    return None if text.strip().lower() in t.NONE_WORDS else t.whole_number(text, "--callback-delay", 1)


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


def drop_target(text: str) -> float | None:
    if text.strip().lower() in ("default", "none"):
        return None
    return t.number(text, "--drop-target", maximum=100)


def _at_least(option: str, minimum: int) -> Callable[[str], int]:
    return lambda text: t.whole_number(text, option, minimum)


def _positive(option: str, maximum: float | None = None) -> Callable[[str], float]:
    return lambda text: t.number(text, option, maximum=maximum)


SETTING_OPTIONS: tuple[SettingOption, ...] = (
    SettingOption("--mode", "MODE", "broadcast | progressive | predictive | preview (agents call one contact "
                  "at a time from the console).", t.mode, "mode"),
    SettingOption("--bcw-seconds", "SECONDS", "Preview: before-call work, seconds the agent reads the contact "
                  "before the call starts (0: the agent clicks Call).", _at_least("--bcw-seconds", 0), "bcw_seconds"),
    SettingOption("--on-reject", "next_agent|skip", "Preview: a contact an agent refuses goes to another agent "
                  "(next_agent) or is skipped.", t.choice(("next_agent", "skip"), "--on-reject"), "on_reject"),
    SettingOption("--acw-seconds", "SECONDS", "After-call work countdown in the agent console (set it to the "
                  "queue's wrapuptime).", _at_least("--acw-seconds", 0), "acw_seconds"),
    SettingOption("--phone-field", "FIELD",
                  "Phone to dial: home, work, cell, phone, or any (the first one filled of phone, cell, home, work).",
                  t.choice(PHONE_FIELD_CHOICES, "phone field"), "phone_field"),
    SettingOption("--countries", "CC,CC", "Allowed destination countries (ISO codes), or 'any'.",
                  t.parse_countries, "allowed_countries"),
    SettingOption("--region", "CC", "Region for numbers written without +country code.", t.parse_region,
                  "default_region"),
    SettingOption("--window", "HH:MM-HH:MM", "Calling window in the number's local time (within 08:00-21:00).",
                  parse_window),
    SettingOption("--lines", "N", "Lines (simultaneous calls) for the campaign.", _at_least("--lines", 1), "lines"),
    SettingOption("--cps", "N", "Calls per second.", _positive("--cps"), "cps"),
    SettingOption("--ratio", "X", "Pacing ratio: calls per available agent.", _positive("--ratio"), "pacing_ratio"),
    SettingOption("--drop-target", "PCT", "Drop rate predictive steers toward, under --drop-cap ('default': 90 % "
                  "of the cap).", drop_target, "drop_target_pct"),
    SettingOption("--ring-timeout", "SECONDS", "Ring timeout (at least 15 s).", ring_timeout, "ring_timeout"),
    SettingOption("--max-attempts", "N", "Maximum counted attempts per contact.", _at_least("--max-attempts", 1),
                  "max_attempts"),
    SettingOption("--retry", "RESULT=MIN,...",
                  "Retry rules in minutes, e.g. busy=5,no_answer=60. They replace the defaults ("
                  + ", ".join(f"{k}={v}" for k, v in DEFAULT_RETRY_MINUTES.items())
                  + "): a result not listed is not retried. 'default' restores them.",
                  t.parse_retry, "retry_rules"),
    SettingOption("--queue", "NAME", "Asterisk agent queue ('none': no agents).", t.optional_text(80),
                  "queue_name"),
    SettingOption("--drop-timeout", "SECONDS", "Seconds a live answer waits for an agent before the drop message.",
                  _at_least("--drop-timeout", 1), "drop_timeout"),
    SettingOption("--drop-cap", "PCT", f"Maximum drop rate in percent of live answers (at most "
                  f"{MAX_DROP_RATE_PCT:g}, the legal cap, unless {ALLOW_DROP_CAP_OPTION}).", drop_cap, "drop_cap_pct"),
    SettingOption("--drop-window-hours", "H", "Rolling window of the drop rate (720 = 30 days, US).",
                  _at_least("--drop-window-hours", 1), "drop_window_hours"),
    SettingOption("--message", "SOUND", "Message played to a live answer.", t.text_up_to(200), "message"),
    SettingOption("--drop-message", "SOUND", "Message played when no agent takes the call.", t.text_up_to(200),
                  "drop_message"),
    SettingOption("--voicemail-message", "SOUND", "Message left on answering machines ('none': hang up).",
                  t.optional_text(200), "voicemail_message"),
    SettingOption("--optout-message", "SOUND", "Confirmation played after an opt-out.", t.text_up_to(200),
                  "optout_message"),
    SettingOption("--callback-message", "SOUND", "Confirmation played after a call-back request.", t.text_up_to(200),
                  "callback_message"),
    SettingOption("--caller-id", "CID", "Caller ID sent with each call: '\"Name\" <digits>' or digits.",
                  t.caller_id, "caller_id"),
    SettingOption("--target-seconds", "SECONDS", "Talk time that makes a live answer a target call.",
                  _at_least("--target-seconds", 0), "target_seconds"),
    SettingOption("--sales-cycle-days", "DAYS", "Sales cycle for target/repeat calls.",
                  _at_least("--sales-cycle-days", 1), "sales_cycle_days"),
    SettingOption("--keys", "K=DISP,...", "IVR key map, e.g. 1=interested,2=not_interested,9=opt_out ('default').",
                  t.parse_keys, "key_map"),
    SettingOption("--key-tries", "N", "Times the message is offered for a key.", _at_least("--key-tries", 1),
                  "key_tries"),
    SettingOption("--key-timeout", "SECONDS", "Seconds to wait for a key after the message.",
                  _at_least("--key-timeout", 1), "key_timeout"),
    SettingOption("--notsure-as", "human|machine", "How AMD NOTSURE is treated.",
                  t.choice(NOTSURE_CHOICES, "--notsure-as"), "notsure_as"),
    SettingOption("--wait-for-beep", "yes|no", "Wait for the beep before leaving a voicemail.", t.yes_no,
                  "wait_for_beep"),
    SettingOption("--callback-delay", "MINUTES", "Default call-back delay ('none': next day same time).",
                  callback_delay, "callback_delay_minutes"),
)


def option_dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def parse_settings(given: Mapping[str, str | None], allow_drop_cap_above_legal: bool = False) -> dict:
    """CLI option texts keyed by option_dest() -> model attribute values (only those given)."""
    values: dict = {}
    for spec in SETTING_OPTIONS:
        text = given.get(option_dest(spec.option))
        if text is not None:
            values.update(spec.values(text))
    check_drop_cap(values, allow_drop_cap_above_legal)
    return values
