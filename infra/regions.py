"""Which region a row belongs to, and whether a jurisdiction covers it.

A jurisdiction is a tuple of GB/T 2260 prefixes ("420100" Wuhan, "42" Hubei) or the national
`("*",)`. A row's region is six digits: a permit's is its number's first six, an SSN's (and its
enrollment's) the SSN's first six, a card's its `region`, a foreigner's that of any of their
permits. The empty jurisdiction covers nothing: a client whose jurisdiction was never read
reads no bound row (deny by default).

These are plain functions of strings, used by every place that binds rows (the client
registry, the GraphQL stage before and after fetching, the write workflows); no GraphQL and no
I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["NATIONAL", "covers", "region_of_permit", "region_of_ssn"]

NATIONAL: Final = "*"


def covers(jurisdiction: Iterable[str], region: str) -> bool:
    """True if one of the jurisdiction's prefixes is national or begins `region`."""
    return any(prefix == NATIONAL or region.startswith(prefix) for prefix in jurisdiction)


def region_of_permit(number: str) -> str:
    """The region of the issuing office: a permit number's first six digits."""
    return number[:6]


def region_of_ssn(ssn: str) -> str:
    """The region of the assigning agency: an SSN's first six digits."""
    return ssn[:6]
