"""The demo agencies, one per kind of client, seeded by `hub demo` and used by the test matrix.

Their secrets are generated at seeding and written only to `var/demo/clients.json`: demo
secrets exist only in demo mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth import AuthService

__all__ = ["DEMO_AGENCIES", "DemoAgency", "seed_demo_clients"]


@dataclass(frozen=True, slots=True)
class DemoAgency:
    client_id: str
    agency: str
    scopes: frozenset[str]
    purposes: frozenset[str]
    jurisdiction: tuple[str, ...]


_SOCIAL_INSURANCE_SCOPES = (
    "permit:validity permit:holder permit:detail person:identity enrollment:read enrollment:write"
)


def _agency(
    client_id: str, agency: str, scopes: str, purposes: str, jurisdiction: str
) -> DemoAgency:
    return DemoAgency(
        client_id, agency, frozenset(scopes.split()), frozenset(purposes.split()),
        tuple(jurisdiction.split()),
    )


DEMO_AGENCIES: tuple[DemoAgency, ...] = (
    _agency(
        "exit-entry-wuhan",
        "Wuhan Exit-Entry Administration",
        "permit:validity permit:holder card:status events:subscribe",
        "residence-permit-check investigation",
        "420100",
    ),
    _agency(
        "si-agency-wuhan",
        "Wuhan Social Insurance Agency",
        _SOCIAL_INSURANCE_SCOPES,
        "social-insurance-enrollment benefit-check",
        "420100",
    ),
    _agency(
        "si-agency-yichang",
        "Yichang Social Insurance Agency",
        _SOCIAL_INSURANCE_SCOPES,
        "social-insurance-enrollment benefit-check",
        "420500",
    ),
    _agency(
        "ssc-card-center-hubei",
        "Hubei SSC Card Management and Service Center",
        "permit:validity permit:holder enrollment:read card:status card:read card:write",
        "card-issuance card-service",
        "42",
    ),
    _agency("auditor-hubei", "Hubei Audit Office", "audit:read", "audit", "*"),
    _agency(
        "wms",
        "Foreigner's Work Management Service System",
        "events:publish",
        "permit-change-notification",
        "*",
    ),
)


async def seed_demo_clients(auth: AuthService) -> list[dict[str, object]]:
    """Register every demo agency; return `{client_id, client_secret, scopes, purposes,
    jurisdiction}` each."""
    seeded: list[dict[str, object]] = []
    for agency in DEMO_AGENCIES:
        _, secret = await auth.add_client(
            agency.client_id, agency.agency, sorted(agency.scopes), sorted(agency.purposes),
            jurisdiction=agency.jurisdiction,
        )
        seeded.append(
            {
                "client_id": agency.client_id,
                "client_secret": secret,
                "scopes": " ".join(sorted(agency.scopes)),
                "purposes": sorted(agency.purposes),
                "jurisdiction": list(agency.jurisdiction),
            }
        )
    return seeded
