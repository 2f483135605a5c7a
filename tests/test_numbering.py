"""agi.rules.numbering reads a number once and answers as phonenumbers' public calls do: the same
E.164, validity, country and time zones, for North American numbers on its short path and for
every other country on the general parser."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agi.rules.numbering import read_number
from agi.rules.predial import number_timezones

REGIONS = ["US", "CA", "JM", "PR", "GB", "DE", "FR", "IT", "IN", "AU", "BR", "MX", "RU"]


def reference(text: str, region: str):
    """phonenumbers' public calls one after the other (parse, is_valid_number, region, zones)."""
    stripped = text.strip()
    if not stripped or any(c not in "0123456789 -.()+" for c in stripped) or stripped.count("+") > 1 \
            or ("+" in stripped and not stripped.startswith("+")) or not any(c.isdigit() for c in stripped):
        return None
    try:
        parsed = phonenumbers.parse(stripped, region)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(parsed):
        return (e164, False, None, ())
    return (e164, True, phonenumbers.region_code_for_number(parsed), number_timezones(e164))


def ours(text: str, region: str):
    number = read_number(text, region)
    return None if number is None else (number.e164, number.valid, number.country, number.timezones)


def _random_number(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:
        digits = "".join(rng.choice("0123456789") for _ in range(10))
    elif roll < 0.6:
        digits = "1" + "".join(rng.choice("0123456789") for _ in range(10))
    elif roll < 0.7:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 15)))
    else:
        code = rng.choice(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
        digits = str(code) + "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 12)))
    prefix = rng.choice(["", "+", "+", "00", "011"]) if rng.random() < 0.5 else ""
    sep = rng.choice(["", " ", "-", "."])
    if sep and len(digits) > 6:
        digits = digits[:3] + sep + digits[3:6] + sep + digits[6:]
    if rng.random() < 0.1:
        digits = "(" + digits[:3] + ") " + digits[3:]
    return prefix + digits


def test_fifty_thousand_random_numbers_get_phonenumbers_own_answers():
    rng = random.Random(20261207)
    valid = 0
    for _ in range(50_000):
        text, region = _random_number(rng), rng.choice(REGIONS)
        want = reference(text, region)
        assert ours(text, region) == want, (text, region)
        valid += bool(want and want[1])
    assert valid > 5_000  # the sample holds valid numbers of many kinds, not only rejects


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="0123456789 -.()+", min_size=1, max_size=18), region=st.sampled_from(REGIONS))
def test_any_digits_and_separators_get_phonenumbers_own_answers(text, region):
    assert ours(text, region) == reference(text, region)


@pytest.mark.parametrize("text, region, e164, valid", [
    ("(202) 555-0143", "US", "+12025550143", True),
    ("1 202 555 0143", "CA", "+12025550143", True),
    ("+1 202 555 0143", "GB", "+12025550143", True),
    ("123-456-7890", "US", "+11234567890", False),
    ("(212) 055-0147", "US", "+12120550147", False),
    ("020 7946 0958", "GB", "+442079460958", True),
])
def test_the_usual_ways_of_writing_a_number(text, region, e164, valid):
    number = read_number(text, region)
    assert (number.e164, number.valid) == (e164, valid)


def test_letters_and_symbols_are_unreadable():
    assert read_number("1-800-FLOWERS") is None and read_number("212*555*0123") is None
    assert read_number("") is None and read_number(None) is None and read_number("()") is None
