"""Pre-dial rule: number normalisation, phone choice, DNC, validity and destination checks."""

from __future__ import annotations

from types import SimpleNamespace

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi.db.models import Campaign
from agi.outcomes import PHONE_FIELD_ANY, PHONE_FIELDS, PREDIAL_RESULTS, Result
from agi.rules.predial import (
    ANY_PHONE_ORDER,
    PHONE_FIELD_CHOICES,
    Dialable,
    DialPolicy,
    check_contact,
    chosen_phone,
    normalize,
    number_country,
    number_timezones,
)

# --- normalize ------------------------------------------------------------------------------

VALID = [
    # (raw, region, E.164, country, zones)
    ("(212) 555-0123", "US", "+12125550123", "US", ("America/New_York",)),
    ("212.555.0123", "US", "+12125550123", "US", ("America/New_York",)),
    ("  +1 212 555 0123  ", "US", "+12125550123", "US", ("America/New_York",)),
    ("1-212-555-0123", "US", "+12125550123", "US", ("America/New_York",)),
    ("+1 (604) 555-0100", "US", "+16045550100", "CA", ("America/Vancouver",)),
    ("020 7946 0958", "GB", "+442079460958", "GB", ("Europe/London",)),
    ("+44 20 7946 0958", "US", "+442079460958", "GB", ("Europe/London",)),
    ("+44 (0)20 7946 0958", "US", "+442079460958", "GB", ("Europe/London",)),
    ("07400 123456", "GB", "+447400123456", "GB", ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London")),
    ("030 123456", "DE", "+4930123456", "DE", ("Europe/Berlin",)),
    ("+49 151 23456789", "US", "+4915123456789", "DE", ("Europe/Berlin",)),
    ("01 23 45 67 89", "FR", "+33123456789", "FR", ("Europe/Paris",)),
    ("06.12.34.56.78", "FR", "+33612345678", "FR", ("Europe/Paris",)),
    ("+91 98765 43210", "US", "+919876543210", "IN", ("Asia/Calcutta",)),
    ("022 2345 6789", "IN", "+912223456789", "IN", ("Asia/Calcutta",)),
    ("(02) 9876 5432", "AU", "+61298765432", "AU", ("Australia/Sydney",)),
    ("+61 8 9123 4567", "US", "+61891234567", "AU", ("Australia/Adelaide", "Australia/Perth")),
    ("+7 495 123 4567", "US", "+74951234567", "RU", ("Europe/Moscow",)),
    ("+52 55 1234 5678", "US", "+525512345678", "MX", ("America/Mexico_City",)),
    ("+1 208 555 0100", "US", "+12085550100", "US", ("America/Boise", "America/Los_Angeles")),
    ("+1 907 555 0100", "US", "+19075550100", "US", ("America/Adak", "America/Anchorage")),
]


@pytest.mark.parametrize("raw, region, e164, country, zones", VALID)
def test_valid_numbers_of_several_countries_normalise_to_e164_with_country_and_zones(raw, region, e164, country, zones):
    assert normalize(raw, region) == e164
    assert number_country(e164) == country
    assert number_timezones(e164) == zones


INVALID = [
    ("1-800-FLOWERS", "vanity letters are never converted"),
    ("212-555-O123", "letter O for zero"),
    ("212-555-0123 ext 5", "extension words"),
    ("212-555-0123 x5", "extension letter"),
    ("+1 212 555 0123;ext=5", "RFC 3966 extension"),
    ("212*555*0123", "star"),
    ("212#5550123", "hash"),
    ("212/555/0123", "slash"),
    ("212_555_0123", "underscore"),
    ("212,555,0123", "comma"),
    ("tel:+12125550123", "URI scheme"),
    ("++12125550123", "double plus"),
    ("212+5550123", "plus not leading"),
    ("+", "plus alone"),
    ("()-. ", "separators only"),
    ("", "empty"),
    ("   ", "blank"),
    ("12", "too short"),
    ("555-0123", "a local-only (7 digit) US number is not E.164-possible"),
    ("+1 212 555 01234567", "too long"),
    ("0044 20 7946 0958", "00 is not the international prefix from the US (011 is)"),
]


@pytest.mark.parametrize("raw, why", INVALID)
def test_numbers_with_letters_symbols_or_impossible_lengths_do_not_normalise(raw, why):
    assert normalize(raw, "US") is None, why


def test_none_does_not_normalise():
    assert normalize(None) is None


@pytest.mark.parametrize("raw", ["123-456-7890", "(123) 456-7890", "(212) 055-0147", "(212) 155-0147", "+1 212 055 0147"])
def test_possible_but_not_valid_numbers_do_not_normalise(raw):
    # +1 123 is no assigned NANP area code, 0xx/1xx no exchange: possible (10 digits), not valid
    assert normalize(raw) is None
    assert check_contact({"phone": raw}, False, DialPolicy()) is Result.INVALID_NUMBER


def test_a_stored_unplaceable_number_takes_the_calling_codes_main_country_and_all_its_zones():
    assert number_country("+11234567890") == "US"
    zones = number_timezones("+11234567890")
    assert "America/New_York" in zones and "Pacific/Honolulu" in zones  # all of NANP


def test_non_geographic_numbers_have_region_001_and_no_known_zone():
    assert normalize("+800 1234 5678") == "+80012345678"
    assert number_country("+80012345678") == "001"
    assert number_timezones("+80012345678") == ()


def test_toll_free_numbers_span_all_of_their_country_codes_zones():
    us = number_timezones("+18005550100")
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "America/St_Johns"} <= set(us)
    ru = number_timezones("+78005553535")
    assert {"Europe/Moscow", "Asia/Vladivostok", "Asia/Kamchatka"} <= set(ru)
    au = number_timezones("+611300123456")
    assert {"Australia/Sydney", "Australia/Perth", "Australia/Lord_Howe"} <= set(au)


def test_every_zone_phonenumbers_can_return_is_loadable_by_zoneinfo():
    from zoneinfo import ZoneInfo

    import phonenumbers.tzdata

    zones = {z for zs in phonenumbers.tzdata.TIMEZONE_DATA.values() for z in zs} - {"Etc/Unknown"}
    assert len(zones) > 200
    for zone in zones:
        ZoneInfo(zone)


def _example_numbers():
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is not None:
            yield region, example


@pytest.mark.parametrize("region, example", list(_example_numbers()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_regions_example_number_normalises_from_national_and_international_form(region, example):
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    assert normalize(national, region) == e164
    assert normalize(international, "US") == e164
    # EH/MA and MF/BL share number ranges: the country is one of those sharing the calling code
    assert phonenumbers.country_code_for_region(number_country(e164)) == example.country_code


_phone_like = st.text(alphabet="0123456789 -.()+", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(_phone_like, st.text(max_size=20)), region=st.sampled_from(["US", "GB", "DE", "FR", "IN", "AU", "RU"]))
def test_normalize_is_idempotent_on_its_output(raw, region):
    e164 = normalize(raw, region)
    if e164 is not None:
        assert e164.startswith("+") and e164[1:].isdigit()
        assert normalize(e164, region) == e164
        assert normalize(e164, "US") == e164


@settings(max_examples=200, deadline=None)
@given(raw=st.text(min_size=1, max_size=20).filter(lambda s: any(c.isalpha() for c in s)))
def test_anything_with_a_letter_is_invalid(raw):
    assert normalize(raw) is None


# --- phone choice -----------------------------------------------------------------------------


def test_phone_field_choices_are_the_four_phones_and_any():
    assert set(PHONE_FIELD_CHOICES) == set(PHONE_FIELDS) | {PHONE_FIELD_ANY}
    assert sorted(ANY_PHONE_ORDER) == sorted(PHONE_FIELDS)


@pytest.mark.parametrize(
    "phones, field, chosen",
    [
        ({"home": "1", "work": "2", "cell": "3", "phone": "4"}, "home", "1"),
        ({"home": "1", "work": "2", "cell": "3", "phone": "4"}, "work", "2"),
        ({"home": "1", "work": "2", "cell": "3", "phone": "4"}, "cell", "3"),
        ({"home": "1", "work": "2", "cell": "3", "phone": "4"}, "phone", "4"),
        ({"home": "1", "work": "2", "cell": "3", "phone": "4"}, "any", "4"),
        ({"home": "1", "work": "2", "cell": "3", "phone": " "}, "any", "3"),
        ({"home": "1", "work": "2", "cell": None, "phone": ""}, "any", "1"),
        ({"work": "2"}, "any", "2"),
        ({"home": "", "work": None}, "any", None),
        ({"phone": "4"}, "cell", None),
        ({"cell": "  (212) 555-0123 "}, "cell", "(212) 555-0123"),
    ],
)
def test_the_campaigns_phone_field_picks_the_phone_and_any_takes_phone_cell_home_work(phones, field, chosen):
    assert chosen_phone(phones, field) == chosen


# --- check_contact ------------------------------------------------------------------------------

US_ONLY = DialPolicy(allowed_countries=frozenset({"US"}))
ON_LIST = {"+12125550199"}.__contains__

CHECKS = [
    # (phones, dnc flag, policy, expected, why)
    ({}, False, DialPolicy(), Result.NO_PHONE, "no phone at all"),
    ({"phone": "   "}, False, DialPolicy(), Result.NO_PHONE, "blank phone"),
    ({"cell": "2125550123"}, False, DialPolicy(), Result.NO_PHONE, "the campaign dials 'phone', not 'cell'"),
    ({"phone": None}, True, DialPolicy(), Result.DNC, "the DNC flag beats no phone"),
    ({"cell": "2125550123"}, True, DialPolicy(), Result.DNC, "the DNC flag beats an empty dialed field"),
    ({"phone": "2125550123"}, True, DialPolicy(), Result.DNC, "DNC flag"),
    ({"phone": "1-800-FLOWERS"}, True, DialPolicy(), Result.DNC, "DNC flag beats invalid"),
    ({"phone": "1-800-FLOWERS"}, False, DialPolicy(), Result.INVALID_NUMBER, "letters"),
    ({"phone": "555-0123"}, False, DialPolicy(), Result.INVALID_NUMBER, "not possible"),
    ({"phone": "123-456-7890"}, False, DialPolicy(), Result.INVALID_NUMBER, "possible, not valid: no such area code"),
    ({"phone": "(212) 055-0147"}, False, DialPolicy(), Result.INVALID_NUMBER, "possible, not valid: no 0xx exchange"),
    ({"phone": "212 555 0199"}, False, DialPolicy(), Result.DNC, "on the DNC list, matched by E.164"),
    ({"phone": "+44 20 7946 0958"}, False, US_ONLY, Result.FORBIDDEN_DESTINATION, "UK number, US-only campaign"),
    ({"phone": "+1 604 555 0100"}, False, US_ONLY, Result.FORBIDDEN_DESTINATION, "+1 but Canada"),
    ({"phone": "+1 876 555 0100"}, False, US_ONLY, Result.FORBIDDEN_DESTINATION, "+1 but Jamaica"),
    ({"phone": "+800 1234 5678"}, False, US_ONLY, Result.FORBIDDEN_DESTINATION, "non-geographic"),
    ({"phone": "+1 212 555 0199"}, False, DialPolicy(allowed_countries=frozenset({"GB"})), Result.DNC, "DNC list beats forbidden"),
    ({"phone": "+7 495 123 4567"}, False, DialPolicy(allowed_countries=frozenset({"us", " ru "})), None, "country list is case-insensitive"),
    ({"phone": "(212) 555-0123"}, False, US_ONLY, None, "a good US number"),
    ({"phone": "+44 20 7946 0958"}, False, DialPolicy(), None, "empty allowed list = any country"),
    ({"phone": "020 7946 0958"}, False, DialPolicy(default_region="gb"), None, "national number in the campaign's region"),
    ({"phone": "x", "cell": "2125550123"}, False, DialPolicy(phone_field="any"), Result.INVALID_NUMBER, "any: first non-empty is used, even if bad"),
    ({"phone": "", "cell": "2125550123"}, False, DialPolicy(phone_field="any"), None, "any: falls through empty fields"),
]


@pytest.mark.parametrize("phones, dnc, policy, expected, why", CHECKS, ids=[c[-1] for c in CHECKS])
def test_check_contact_gives_the_first_failing_check_or_the_dialable(phones, dnc, policy, expected, why):
    outcome = check_contact(phones, dnc, policy, ON_LIST)
    if expected is None:
        assert isinstance(outcome, Dialable), why
        assert outcome.number == normalize(chosen_phone(phones, policy.phone_field), policy.default_region)
    else:
        assert outcome is expected, why


def test_the_table_covers_every_pre_dial_result():
    assert {c[3] for c in CHECKS} - {None} == PREDIAL_RESULTS


def test_dialable_carries_number_country_and_all_zones_of_the_number():
    assert check_contact({"cell": "+61 8 9123 4567"}, False, DialPolicy(phone_field="cell")) == Dialable(
        number="+61891234567", country="AU", timezones=("Australia/Adelaide", "Australia/Perth")
    )


def test_dnc_list_is_asked_with_the_e164_number_only_for_valid_numbers():
    asked = []
    check_contact({"phone": "(212) 555-0123"}, False, DialPolicy(), lambda n: asked.append(n) or False)
    check_contact({"phone": "1-800-FLOWERS"}, False, DialPolicy(), lambda n: asked.append(n) or False)
    check_contact({"phone": "(212) 555-0123"}, True, DialPolicy(), lambda n: asked.append(n) or False)
    assert asked == ["+12125550123"]


def test_unknown_phone_field_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="home, work, cell, phone, any"):
        DialPolicy(phone_field="mobile")


def test_policy_from_an_orm_campaign():
    campaign = Campaign(name="c", phone_field="cell", default_region="gb", allowed_countries=["GB", "ie"])
    assert DialPolicy.from_campaign(campaign) == DialPolicy("cell", "GB", frozenset({"GB", "IE"}))


def test_policy_from_an_unflushed_campaign_without_values_uses_the_defaults():
    assert DialPolicy.from_campaign(Campaign(name="c")) == DialPolicy()
    assert DialPolicy.from_campaign(SimpleNamespace(phone_field="any", default_region="DE", allowed_countries=None)) == DialPolicy(
        "any", "DE", frozenset()
    )


@settings(max_examples=300, deadline=None)
@given(
    phones=st.fixed_dictionaries({f: st.one_of(st.none(), _phone_like, st.text(max_size=12)) for f in PHONE_FIELDS}),
    dnc=st.booleans(),
    field=st.sampled_from(PHONE_FIELD_CHOICES),
    allowed=st.frozensets(st.sampled_from(["US", "CA", "GB", "DE", "FR"]), max_size=3),
)
def test_check_contact_always_gives_a_predial_result_or_a_dialable_number(phones, dnc, field, allowed):
    policy = DialPolicy(phone_field=field, allowed_countries=allowed)
    outcome = check_contact(phones, dnc, policy)
    if isinstance(outcome, Dialable):
        assert not dnc
        assert outcome.number == normalize(chosen_phone(phones, field), "US")
        assert not allowed or outcome.country in allowed
    else:
        assert outcome in PREDIAL_RESULTS
        if dnc:
            assert outcome is Result.DNC
