"""The demo agencies, one per kind of client, and their purposes of use, seeded by `hub demo`
and used by the test matrix.

Each purpose covers the root fields an agency needs for that one task (README.md, "Purposes of
use"). Their secrets are generated at seeding and written only to `var/demo/clients.json`: demo
secrets exist only in demo mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth import AuthService

__all__ = [
    "DEMO_AGENCIES", "DEMO_PURPOSES", "DemoAgency", "seed_demo_clients", "seed_demo_purposes",
]

#: Each demo purpose and the root fields (queries, mutations, subscriptions) it covers.
DEMO_PURPOSES: dict[str, frozenset[str]] = {
    name: frozenset(operations.split())
    for name, operations in (
        # A checkpoint or counter: is this permit (or scanned QR code) valid, is the card live,
        # and tell me when it changes.
        ("residence-permit-check", "permit permits verifyPermitQr cards permitStatusChanged"),
        # A case file: the permits, the person and the cards behind them.
        ("investigation", "permit permits foreigner cards"),
        # Enrolling a permit holder in social insurance (the permit shown, on paper or as a QR
        # code), and reading back the enrollment.
        (
            "social-insurance-enrollment",
            "registerEnrollment permit permits verifyPermitQr foreigner enrollment",
        ),
        # Deciding a benefit: the enrollment, the permit it rests on, the person.
        ("benefit-check", "enrollment permit permits foreigner"),
        # Issuing cards to enrolled permit holders (one, or an employer's batch): the permit
        # and the enrollment it rests on, and the cards already issued.
        ("card-issuance", "applyForCard applyForCards cards permit permits enrollment"),
        # Serving a card already issued: reported lost, found, suspended, cancelled.
        ("card-service", "updateCardStatus cards"),
        # Reading the access log, never the data itself.
        ("audit", "accessLog subjectAccessLog"),
        # The WMS publishes permit events (POST /events/permits); it runs no GraphQL at all.
        ("permit-change-notification", ""),
    )
}


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


async def seed_demo_purposes(auth: AuthService) -> None:
    """Register the demo purposes not registered yet (a demo database made before purposes
    covered operations gets them at its next start)."""
    registered = {p.name for p in await auth.list_purposes()}
    for name, operations in DEMO_PURPOSES.items():
        if name not in registered:
            await auth.add_purpose(name, sorted(operations))


async def seed_demo_clients(auth: AuthService) -> list[dict[str, object]]:
    """Register the demo purposes (those not registered yet) and every demo agency; return
    `{client_id, client_secret, scopes, purposes, purpose_operations, jurisdiction}` each."""
    await seed_demo_purposes(auth)
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
                "purpose_operations": {
                    p: sorted(DEMO_PURPOSES[p]) for p in sorted(agency.purposes)
                },
                "jurisdiction": list(agency.jurisdiction),
            }
        )
    return seeded
