"""Pre-dial check: a contact's phones + a campaign's policy -> the E.164 number to dial, or a pre-dial Result.

Pure: the DNC list is consulted through a callable the caller supplies (a set's
``__contains__``, or a function over rows already fetched).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import phonenumbers
from phonenumbers import timezone as pn_timezone

from agi.outcomes import PHONE_FIELD_ANY, PHONE_FIELDS, Result
from agi.rules.numbering import UNKNOWN_ZONE, PhoneNumber, read_number

# phone_field "any": the first non-empty of these (a general number first, then the mobile)
ANY_PHONE_ORDER = ("phone", "cell", "home", "work")
PHONE_FIELD_CHOICES = PHONE_FIELDS + (PHONE_FIELD_ANY,)


def normalize(raw: str | None, region: str = "US") -> str | None:
    """The E.164 form of ``raw``, or None if it has letters/symbols or is not a valid number.

    ``region`` (ISO 3166 alpha-2) is where a number without ``+`` is dialed from. Valid means
    phonenumbers' ``is_valid_number``: the number fits a range its country assigns (123-456-7890,
    or a 0xx/1xx exchange in North America, is invalid although its length is possible).
    """
    number = read_number(raw, region)
    return number.e164 if number is not None and number.valid else None


def number_country(e164: str) -> str:
    """ISO 3166 alpha-2 region of an E.164 number ("001" for non-geographic codes such as +800).

    A possible number that phonenumbers cannot place in a region (an unassigned area
    code) gets its country calling code's main region (+1 -> US, +44 -> GB).
    """
    parsed = phonenumbers.parse(e164, None)
    region = phonenumbers.region_code_for_number(parsed)
    if region is None:
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return region


def number_timezones(e164: str) -> tuple[str, ...]:
    """IANA zones of an E.164 number (phonenumbers' prefix data), sorted.

    Unknown for the number -> the zones of its country calling code (all of NANP for
    an unplaceable +1 number: the window then keeps to the most restrictive of them).
    Still unknown (+800, +883, ...) -> () : the window rules then use the campaign's
    schedule time zone.
    """
    parsed = phonenumbers.parse(e164, None)
    zones = pn_timezone.time_zones_for_number(parsed)
    if not zones or UNKNOWN_ZONE in zones:
        zones = pn_timezone.time_zones_for_geographical_number(
            phonenumbers.PhoneNumber(country_code=parsed.country_code, national_number=0)
        )
    return tuple(sorted(z for z in set(zones) if z != UNKNOWN_ZONE))


@dataclass(frozen=True)
class DialPolicy:
    """What a campaign says about who may be dialed."""

    phone_field: str = "phone"  # one of PHONE_FIELD_CHOICES: home|work|cell|phone|any
    default_region: str = "US"  # ISO alpha-2 for numbers written without +
    allowed_countries: frozenset[str] = frozenset()  # ISO alpha-2; empty = any country

    def __post_init__(self) -> None:
        if self.phone_field not in PHONE_FIELD_CHOICES:
            raise ValueError(
                f"phone field {self.phone_field!r} is not one of: {', '.join(PHONE_FIELD_CHOICES)}"
            )
        object.__setattr__(self, "default_region", (self.default_region or "").upper())
        object.__setattr__(
            self, "allowed_countries", frozenset(c.strip().upper() for c in self.allowed_countries)
        )

    @classmethod
    def from_campaign(cls, campaign: Any) -> "DialPolicy":
        """From the ORM Campaign (or any object with phone_field, default_region, allowed_countries)."""
        return cls(
            phone_field=campaign.phone_field or "phone",
            default_region=campaign.default_region or "US",
            allowed_countries=frozenset(campaign.allowed_countries or ()),
        )


@dataclass(frozen=True)
class Dialable:
    """A contact that passed the pre-dial check: the number to dial and where it rings."""

    number: str  # E.164
    country: str  # ISO alpha-2 (or "001", non-geographic)
    timezones: tuple[str, ...]  # IANA zones; () = unknown (see number_timezones)


def chosen_phone(phones: Mapping[str, str | None], phone_field: str) -> str | None:
    """The raw phone the campaign dials, stripped; None when empty."""
    fields = ANY_PHONE_ORDER if phone_field == PHONE_FIELD_ANY else (phone_field,)
    for name in fields:
        value = (phones.get(name) or "").strip()
        if value:
            return value
    return None


def check_contact(
    phones: Mapping[str, str | None],
    dnc_flag: bool,
    policy: DialPolicy,
    on_dnc_list: Callable[[str], bool] = lambda number: False,
    read: Callable[[str | None, str], PhoneNumber | None] = read_number,
) -> Dialable | Result:
    """The Dialable, or the pre-dial Result that stops the contact. Checks, first match wins:

    1. the contact's DNC flag is set                                -> DNC
    2. the campaign's phone field is empty (for "any": all four)    -> NO_PHONE
    3. letters/symbols, or not a valid number of its country        -> INVALID_NUMBER
    4. ``on_dnc_list(e164)`` is true                                -> DNC
    5. the number's country is not in ``allowed_countries``         -> FORBIDDEN_DESTINATION

    An explicit do-not-call instruction always wins, even on a contact without a phone; the
    list is keyed by E.164, so it needs a valid number. The number is read once
    (agi.rules.numbering; ``read``: a caller reading each number once for several checks).
    """
    if dnc_flag:
        return Result.DNC
    raw = chosen_phone(phones, policy.phone_field)
    if raw is None:
        return Result.NO_PHONE
    number = read(raw, policy.default_region)
    if number is None or not number.valid:
        return Result.INVALID_NUMBER
    if on_dnc_list(number.e164):
        return Result.DNC
    if policy.allowed_countries and number.country not in policy.allowed_countries:
        return Result.FORBIDDEN_DESTINATION
    return Dialable(number=number.e164, country=number.country, timezones=number.timezones)
