"""idToken values fit their type (IdTokenEnumType) as strict CSMSs check it, and generated
ones always do."""

import pytest

from stations.engine import id_tokens

VALID = [
    ("ISO14443", "04A1B2C3"),
    ("ISO14443", "04a1b2c3d4e5f6"),
    ("ISO15693", "E004015012345678"),
    ("eMAID", "DE8AAC12345678"),
    ("eMAID", "DE-8AA-C12345678"),
    ("eMAID", "DE-8AA-C12345678-D"),
    ("eMAID", "de8aac12345678d"),
    ("MacAddress", "02:00:5E:10:00:01"),
    ("MacAddress", "02-00-5e-10-00-01"),
    ("MacAddress", "02005E100001"),
    ("KeyCode", "1234"),
    ("Central", "TOKEN-001"),
    ("Central", "7f3e9a1c-5b2d-4e8f-a6c0-9d1b3e5f7a2c"),
    ("Local", "parking:ticket.17"),
    ("NoAuthorization", ""),
]

INVALID = [
    ("ISO14443", "TOKEN-001", "8 or 14 hexadecimal"),
    ("ISO14443", "04A1B2C", "8 or 14 hexadecimal"),
    ("ISO14443", "04A1B2C3D4", "8 or 14 hexadecimal"),
    ("ISO14443", "04A1B2G3", "8 or 14 hexadecimal"),
    ("ISO14443", "", "not empty"),
    ("ISO15693", "04A1B2C3", "16 hexadecimal"),
    ("ISO15693", "E00401501234567Z", "16 hexadecimal"),
    ("eMAID", "DE-8AA-C12345678-9", "check digit is D, not 9"),
    ("eMAID", "DE8AAX12345678", "C and an 8-character instance"),
    ("eMAID", "D18AAC12345678", "country code"),
    ("eMAID", "DE8AAC1234567", "country code"),
    ("MacAddress", "02:00:5E:10:00", "6 bytes"),
    ("MacAddress", "02:00-5E:10:00:01", "6 bytes"),
    ("KeyCode", "12 34", "only letters, digits"),
    ("Central", "TOKEN 001", "only letters, digits"),
    ("Local", "ticket#7", "only letters, digits"),
    ("Central", "x" * 37, "at most 36"),
    ("NoAuthorization", "04A1B2C3", "empty"),
    ("RFID", "04A1B2C3", "not an idToken type"),
]


@pytest.mark.parametrize("token_type, value", VALID)
def test_a_value_of_its_types_format_is_accepted(token_type, value):
    assert id_tokens.problem(token_type, value) is None


@pytest.mark.parametrize("token_type, value, why", INVALID)
def test_a_value_of_another_format_is_refused_with_the_reason(token_type, value, why):
    assert why in id_tokens.problem(token_type, value)


def test_every_type_has_a_valid_and_an_invalid_case():
    assert {t for t, _ in VALID} == set(id_tokens.TYPES)
    assert {t for t, _, _ in INVALID} >= set(id_tokens.TYPES)


def test_the_emaid_check_digit_follows_the_emi3_algorithm():
    # Reference contract ids and their check digits (eMI³ "Check Digit Calculation for
    # Contract-IDs").
    ids = ["NN123ABCDEFGHI", "FRXYZ123456789", "ITA1B2C3E4F5G6", "ESZU8WOX834H1D",
           "PT73902837ABCZ", "DE83DUIEN83QGZ", "DE83DUIEN83ZGQ", "DE8AA001234567"]
    assert "".join(id_tokens.check_digit(i) for i in ids) == "T24RZDM0"


@pytest.mark.parametrize("token_type", id_tokens.TYPES)
def test_generated_values_are_valid_and_distinct(token_type):
    values = [id_tokens.generate(token_type, i, prefix="LT-", width=4) for i in range(2000)]
    assert all(id_tokens.problem(token_type, v) is None for v in values)
    if token_type != "NoAuthorization":
        assert len(set(values)) == len(values)


def test_generated_uids_depend_on_the_seed_and_look_like_cards():
    first = id_tokens.generate("ISO14443", 0)
    assert len(first) == 14 and first.startswith("04") and first != "04" + "0" * 12
    assert id_tokens.generate("ISO14443", 0, seed=1) != first
    assert id_tokens.generate("ISO14443", 0) == first, "repeatable"
    assert id_tokens.generate("Central", 6, prefix="LT-", width=3) == "LT-007"
