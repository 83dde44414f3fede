from __future__ import annotations

import pytest

from connectors.identifiers import (
    InvalidIdentifier,
    make_card_number,
    make_credit_code,
    make_permit_number,
    make_ssn,
    validate_card_number,
    validate_credit_code,
    validate_permit_number,
    validate_ssn,
)


def test_a_national_id_style_checksum_is_computed_as_iso_7064() -> None:
    # Public reference vector for ISO 7064 MOD 11-2 (the GB 11643 example number).
    assert validate_ssn("11010519491231002X") == "11010519491231002X"


def test_generated_identifiers_validate() -> None:
    assert validate_permit_number(make_permit_number("420100", 2024, 1234567))
    assert validate_ssn(make_ssn("420500", 42))
    assert validate_credit_code(make_credit_code("420100", "MA4K00001"))


# Unicode digits pass str.isdigit() but are not identifier digits.
FULLWIDTH_DIGITS = "".join(chr(0xFF10 + int(d)) for d in "42010020241234567") + "X"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "42010020241234567",
        "4201002024123456X9",
        "42010020241234567 ",
        FULLWIDTH_DIGITS,
        None,
        12,
    ],
)
def test_malformed_permit_numbers_are_refused(bad: object) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_permit_number(bad)


def test_a_single_changed_digit_breaks_the_check_character() -> None:
    number = make_permit_number("420100", 2024, 1234567)
    tampered = number[:10] + str((int(number[10]) + 1) % 10) + number[11:]
    with pytest.raises(InvalidIdentifier, match="check character"):
        validate_permit_number(tampered)


def test_card_numbers_are_h_and_8_digits_or_eh_and_10_digits() -> None:
    assert validate_card_number(make_card_number(False, 12)) == "H00000012"
    assert validate_card_number(make_card_number(True, 12)) == "EH0000000012"
    for bad in ("H1234567", "EH123456789", "E12345678", "H12345678\n", "h12345678", None):
        with pytest.raises(InvalidIdentifier):
            validate_card_number(bad)
