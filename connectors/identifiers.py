"""Identifier formats of the source systems (permits, SSNs, cards, credit codes) and their checks.

Every identifier is validated here before any upstream call. The formats are the source
systems' own vocabulary, so they live in `connectors/` where the simulators use them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "REGIONS",
    "InvalidIdentifier",
    "credit_code_check_char",
    "make_card_number",
    "make_credit_code",
    "make_permit_number",
    "make_ssn",
    "mod11_2_check_char",
    "region_of_ssn",
    "validate_card_number",
    "validate_credit_code",
    "validate_nationality",
    "validate_permit_number",
    "validate_region",
    "validate_ssn",
    "validate_subject",
]

# GB/T 2260 codes the hub knows by name; the region of an SSN routes it to its agency.
REGIONS: dict[str, str] = {
    "110000": "Beijing",
    "310000": "Shanghai",
    "420100": "Wuhan",
    "420500": "Yichang",
    "440300": "Shenzhen",
}

_MOD11_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_MOD11_CHARS = "10X98765432"
# Per position, digit -> its weighted value: a check is 17 lookups (6x faster than int() each).
_MOD11_TERMS = tuple({str(d): d * w for d in range(10)} for w in _MOD11_WEIGHTS)
_CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_PERMIT_RE = re.compile(r"^[0-9]{6}(19|20)[0-9]{2}[0-9]{7}[0-9X]$")
_SSN_RE = re.compile(r"^[0-9]{17}[0-9X]$")
_CREDIT_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_ALPHA3_RE = re.compile(r"^[A-Z]{3}$")
# Card numbers carry no check character: the card system issues them, nobody types them in.
_CARD_RE = re.compile(r"^(?:H[0-9]{8}|EH[0-9]{10})\Z")


@dataclass(frozen=True, slots=True)
class InvalidIdentifier(ValueError):
    """An identifier failed its format or check-character test."""

    kind: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"invalid {self.kind}: {self.reason}"


def mod11_2_check_char(body: str) -> str:
    """ISO 7064 MOD 11-2 check character over 17 digits."""
    if len(body) != len(_MOD11_TERMS):
        raise ValueError(f"expected {len(_MOD11_TERMS)} digits, got {len(body)}")
    try:
        total = sum(map(dict.__getitem__, _MOD11_TERMS, body))
    except KeyError:
        raise ValueError(f"not only digits: {body!r}") from None
    return _MOD11_CHARS[total % 11]


def credit_code_check_char(body: str) -> str:
    """GB 32100-2015 check character over the first 17 characters."""
    total = sum(_CREDIT_CHARSET.index(c) * w for c, w in zip(body, _CREDIT_WEIGHTS, strict=True))
    return _CREDIT_CHARSET[(31 - total % 31) % 31]


def make_permit_number(region: str, year: int, sequence: int) -> str:
    body = f"{region}{year:04d}{sequence:07d}"
    return body + mod11_2_check_char(body)


def make_ssn(region: str, sequence: int) -> str:
    body = f"{region}{sequence:011d}"
    return body + mod11_2_check_char(body)


def make_card_number(electronic: bool, sequence: int) -> str:
    """`H` + 8 digits for a physical card, `EH` + 10 digits for an electronic one."""
    return f"EH{sequence:010d}" if electronic else f"H{sequence:08d}"


def make_credit_code(region: str, organisation: str) -> str:
    """Build a credit code: '91' (enterprise), region, a 9-character organisation code."""
    body = f"91{region}{organisation}"
    return body + credit_code_check_char(body)


def _check(kind: str, value: object, pattern: re.Pattern[str], hint: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        shown = value if isinstance(value, str) and len(value) <= 40 else "(value)"
        raise InvalidIdentifier(kind, str(shown), hint)
    return value


def validate_permit_number(value: object) -> str:
    number = _check(
        "permit number", value, _PERMIT_RE,
        "expected 18 characters: region (6 digits), year (4), sequence (7), check (0-9 or X)",
    )
    if mod11_2_check_char(number[:17]) != number[17]:
        raise InvalidIdentifier("permit number", number, "check character does not match")
    return number


def validate_ssn(value: object) -> str:
    ssn = _check(
        "social security number", value, _SSN_RE,
        "expected 18 characters: region (6 digits), sequence (11), check (0-9 or X)",
    )
    if mod11_2_check_char(ssn[:17]) != ssn[17]:
        raise InvalidIdentifier("social security number", ssn, "check character does not match")
    return ssn


def validate_credit_code(value: object) -> str:
    code = _check(
        "unified social credit code", value, _CREDIT_RE,
        "expected 18 characters of the GB 32100-2015 alphabet",
    )
    if credit_code_check_char(code[:17]) != code[17]:
        raise InvalidIdentifier(
            "unified social credit code", code, "check character does not match"
        )
    return code


def validate_card_number(value: object) -> str:
    return _check(
        "card number", value, _CARD_RE,
        "expected H and 8 digits (physical) or EH and 10 digits (electronic)",
    )


def validate_region(value: object) -> str:
    if not isinstance(value, str) or value not in REGIONS:
        raise InvalidIdentifier("region", str(value)[:12], "not a known GB/T 2260 region code")
    return value


def validate_nationality(value: object) -> str:
    return _check("nationality", value, _ALPHA3_RE, "expected an ISO 3166-1 alpha-3 code")


def validate_subject(value: object) -> str:
    """A data subject as the audit log names it: a permit number, an SSN, a credit code or a
    social security card number."""
    for validator in (
        validate_permit_number, validate_ssn, validate_credit_code, validate_card_number
    ):
        try:
            return validator(value)
        except InvalidIdentifier:
            continue
    raise InvalidIdentifier(
        "subject", "(value)",
        "expected a permit number, an SSN, a unified social credit code or a card number",
    )


def region_of_ssn(ssn: str) -> str:
    return ssn[:6]
