"""Admin use cases behind the `dialer` command, one module per concern:

- text: reading what an admin types (numbers, times, dates, days, zones, rules, key maps)
- options: every campaign setting as a CLI option, declared once
- campaigns: find, create (also from an earlier campaign), list, show, change, delete
- lifecycle: schedule, start, stop
- dialers: dialers and the campaigns assigned to them
- contacts: contact counts, copying contacts by their last result
- dnc: the do-not-call list

``AdminError`` (agi.errors) carries a message that says what to do; the CLI (agi/cli/) prints it.
"""

from __future__ import annotations

# The names below were agi.admin's when it was one module; they stay importable from here for
# code written against that (e.g. `from agi.admin import AdminError`). New code imports the
# module of the concern (agi.errors, agi.admin.campaigns, ...).
from agi.admin.campaigns import (
    campaign_settings,
    create_campaign,
    delete_campaign,
    get_campaign,
    list_campaigns,
    set_campaign,
    show_campaign,
    validate_campaign,
)
from agi.admin.contacts import contact_state_counts, copy_contacts_by_last_result
from agi.admin.dialers import add_dialer, assign_campaign, list_dialers
from agi.admin.dnc import dnc_add, dnc_get, dnc_list, dnc_remove
from agi.admin.lifecycle import schedule_campaign, start_campaign, stop_campaign
from agi.admin.options import (
    LEGAL_WINDOW,
    SETTING_OPTIONS,
    SettingOption,
    option_dest,
    parse_settings,
    parse_window,
)
from agi.admin.text import (
    DAYS,
    RETRY_KEYS,
    normalize_number,
    parse_countries,
    parse_days,
    parse_hours,
    parse_keys,
    parse_last_results,
    parse_region,
    parse_retry,
    parse_span,
    parse_tz,
    parse_when,
)
from agi.errors import AdminError

__all__ = [
    "AdminError", "DAYS", "LEGAL_WINDOW", "RETRY_KEYS", "SETTING_OPTIONS", "SettingOption", "add_dialer",
    "assign_campaign", "campaign_settings", "contact_state_counts", "copy_contacts_by_last_result",
    "create_campaign", "delete_campaign", "dnc_add", "dnc_get", "dnc_list", "dnc_remove", "get_campaign",
    "list_campaigns", "list_dialers", "normalize_number", "option_dest", "parse_countries", "parse_days",
    "parse_hours", "parse_keys", "parse_last_results", "parse_region", "parse_retry", "parse_settings",
    "parse_span", "parse_tz", "parse_when", "parse_window", "schedule_campaign", "set_campaign",
    "show_campaign", "start_campaign", "stop_campaign", "validate_campaign",
]
