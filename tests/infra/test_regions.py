"""Which jurisdictions cover which regions: prefixes, the national star, the empty one."""

from __future__ import annotations

import pytest

from infra.regions import covers, region_of_permit, region_of_ssn


@pytest.mark.parametrize(
    ("jurisdiction", "region", "expected"),
    [
        (("420100",), "420100", True),
        (("420100",), "420500", False),
        (("42",), "420500", True),
        (("42",), "110000", False),
        (("*",), "110000", True),
        (("420100", "420500"), "420500", True),
        ((), "420100", False),
    ],
)
def test_a_jurisdiction_covers_the_regions_its_prefixes_begin(
    jurisdiction: tuple[str, ...], region: str, expected: bool
) -> None:
    assert covers(jurisdiction, region) is expected


def test_the_region_of_a_permit_and_of_an_ssn_is_their_first_six_digits() -> None:
    assert region_of_permit("42050020240000123X") == "420500"
    assert region_of_ssn("420100000000000011") == "420100"
