"""A phone number as the pre-dial rule reads it, in one pass: its E.164 form, whether it is a valid
number of its country, the country, and the time zones where it rings.

Why not phonenumbers' public calls one after the other: ``is_valid_number``,
``region_code_for_number`` and ``time_zones_for_number`` each find the number's region again,
which for a +1 number tries every regex of up to 25 North American regions, and each compiles its
patterns anew: about 180 µs a number, more than a million-row import can afford. Here a number is
parsed once, its region and type are found once with phonenumbers' own metadata patterns compiled
once, and a North American number written the usual ways (10 digits, or 1 and 10 digits, with or
without +) skips the general parser, whose answer for it is those ten digits. The answers are
phonenumbers' own: tests/test_numbering.py holds them equal over random numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType
from phonenumbers.phonenumberutil import (
    _GEO_MOBILE_COUNTRIES,
    COUNTRY_CODE_TO_REGION_CODE,
    REGION_CODE_FOR_NON_GEO_ENTITY,
)
from phonenumbers.timezone import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

# Digits with the usual separators and at most one leading "+". Letters (vanity numbers such as
# 1-800-FLOWERS, "ext."), "#", "*", "/", "," ... make a number unreadable: we never guess.
PHONE_CHARS = re.compile(r"\+?[0-9\s\-.()]+")
_DROP = str.maketrans("", "", " \t\r\n\v\f-.()+")

# phonenumbers' answer when it knows no zone for a number
UNKNOWN_ZONE = "Etc/Unknown"

_NANP_REGIONS = frozenset(COUNTRY_CODE_TO_REGION_CODE[1])
_NXX = frozenset("23456789")  # a North American area code or exchange starts with 2-9


@dataclass(frozen=True)
class PhoneNumber:
    """A readable number: E.164, valid for its country or not, the country and its time zones."""

    e164: str
    valid: bool
    country: str | None  # ISO 3166 alpha-2, "001" for non-geographic codes; None when invalid
    timezones: tuple[str, ...]  # IANA zones, sorted; () when invalid or unknown


def read_number(raw: str | None, region: str = "US") -> PhoneNumber | None:
    """``raw`` as a PhoneNumber, or None when it has letters or symbols or cannot be parsed.

    ``region`` (ISO 3166 alpha-2) is where a number without ``+`` is dialed from.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text or not PHONE_CHARS.fullmatch(text):
        return None
    digits = text.translate(_DROP)
    if not digits:
        return None
    region = (region or "").upper()
    nsn = _nanp_national(digits, text.startswith("+"), region)
    if nsn is not None:
        return _classify(1, nsn)
    try:
        parsed = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return None
    return _classify(parsed.country_code, phonenumbers.national_significant_number(parsed))


def _nanp_national(digits: str, plus: bool, region: str) -> str | None:
    """The ten national digits of a North American number written +1 NXX..., 1 NXX... or NXX...
    (the last two dialed from a North American region), else None: the general parser decides."""
    if len(digits) == 11 and digits[0] == "1" and digits[1] in _NXX and (plus or region in _NANP_REGIONS):
        return digits[1:]
    if len(digits) == 10 and not plus and digits[0] in _NXX and region in _NANP_REGIONS:
        return digits
    return None


def _classify(country_code: int, nsn: str) -> PhoneNumber:
    e164 = f"+{country_code}{nsn}"
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return PhoneNumber(e164, False, None, ())
    if len(regions) == 1:
        region = regions[0]
        types = _types(country_code, region)
        kind = types.kind(nsn) if types is not None else PhoneNumberType.UNKNOWN
    else:
        region, kind = _region_of(country_code, regions, nsn)
    if region is None or kind is PhoneNumberType.UNKNOWN:
        return PhoneNumber(e164, False, None, ())
    return PhoneNumber(e164, True, region, _zones(e164, country_code, kind))


def _region_of(country_code: int, regions: tuple[str, ...], nsn: str):
    """phonenumbers' region_code_for_number for a code shared by several regions, and the type."""
    for region in regions:
        types = _types(country_code, region)
        if types is None:
            continue
        if types.leading_digits is not None:
            if types.leading_digits.match(nsn):
                return region, types.kind(nsn)
            continue
        kind = types.kind(nsn)
        if kind is not PhoneNumberType.UNKNOWN:
            return region, kind
    return None, PhoneNumberType.UNKNOWN


def _zones(e164: str, country_code: int, kind) -> tuple[str, ...]:
    """phonenumbers' time_zones_for_number for a number of type ``kind``; the zones of the whole
    country code when it knows none for the number itself (all of NANP for an unplaced +1 number:
    the window then keeps to the most restrictive of them); () when still unknown (+800, ...)."""
    geographic = kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE) or (
        kind is PhoneNumberType.MOBILE and country_code in _GEO_MOBILE_COUNTRIES)
    zones = _prefix_zones(e164[1:]) if geographic else _prefix_zones(str(country_code))
    if not zones or UNKNOWN_ZONE in zones:
        zones = _country_zones(country_code)
    return tuple(sorted(z for z in set(zones) if z != UNKNOWN_ZONE))


def _prefix_zones(digits: str):
    """The zones of the longest prefix of ``digits`` in phonenumbers' time zone data."""
    for length in range(min(TIMEZONE_LONGEST_PREFIX, len(digits)), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return zones
    return None


@lru_cache(maxsize=None)
def _country_zones(country_code: int) -> tuple[str, ...]:
    return tuple(_prefix_zones(f"{country_code}0") or ())


_ORDERED_TYPES = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE), ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST), ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER), ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN), ("voicemail", PhoneNumberType.VOICEMAIL),
)


class _Desc:
    """One PhoneNumberDesc: its possible lengths (None: any) and its pattern, compiled once."""

    __slots__ = ("lengths", "pattern", "text")

    def __init__(self, desc) -> None:
        self.text = desc.national_number_pattern if desc is not None else None
        self.pattern = re.compile(self.text) if self.text else None
        self.lengths = frozenset(desc.possible_length) if desc is not None and desc.possible_length else None

    def fits(self, length: int) -> bool:
        return self.pattern is not None and (self.lengths is None or length in self.lengths)

    def matches(self, nsn: str) -> bool:
        return self.fits(len(nsn)) and self.pattern.fullmatch(nsn) is not None


class _Types:
    """phonenumbers' _number_type_helper for one region's metadata, its patterns compiled once.

    The types are tried in phonenumbers' order; for each length of number one alternation of the
    patterns that length fits is compiled (a full match takes the first alternative that matches
    the whole number, as the one-by-one tests would)."""

    def __init__(self, metadata) -> None:
        self.leading_digits = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
        self.general = _Desc(metadata.general_desc)
        self.ordered = [(_Desc(getattr(metadata, name)), kind) for name, kind in _ORDERED_TYPES]
        self.ordered.append((_Desc(metadata.fixed_line), PhoneNumberType.FIXED_LINE))
        self.mobile = _Desc(metadata.mobile)
        if not metadata.same_mobile_and_fixed_line_pattern:
            self.ordered.append((self.mobile, PhoneNumberType.MOBILE))
        self.same_mobile_and_fixed = metadata.same_mobile_and_fixed_line_pattern
        self._by_length: dict[int, tuple] = {}

    def _alternation(self, length: int) -> tuple:
        fitting = [(desc, kind) for desc, kind in self.ordered if desc.fits(length)]
        if not fitting:
            return None, ()
        pattern = re.compile("|".join(f"(?P<t{i}>{desc.text})" for i, (desc, _) in enumerate(fitting)))
        return pattern, tuple(kind for _, kind in fitting)

    def kind(self, nsn: str):
        if not self.general.matches(nsn):
            return PhoneNumberType.UNKNOWN
        got = self._by_length.get(len(nsn))
        if got is None:
            got = self._by_length[len(nsn)] = self._alternation(len(nsn))
        pattern, kinds = got
        match = pattern.fullmatch(nsn) if pattern is not None else None
        if match is None:
            return PhoneNumberType.UNKNOWN
        kind = kinds[int(match.lastgroup[1:])]
        if kind is PhoneNumberType.FIXED_LINE and (self.same_mobile_and_fixed or self.mobile.matches(nsn)):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return kind


@lru_cache(maxsize=None)
def _types(country_code: int, region: str) -> _Types | None:
    if region == REGION_CODE_FOR_NON_GEO_ENTITY:
        metadata = PhoneMetadata.metadata_for_nongeo_region(country_code, None)
    else:
        metadata = PhoneMetadata.metadata_for_region(region, None)
    return _Types(metadata) if metadata is not None else None
