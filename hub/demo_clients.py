"""The demo agencies, one per kind of client, and their purposes of use, seeded by `hub demo`
and used by the test matrix; the e-SSC app; and the identity providers each may exchange
assertions from.

Each purpose covers the root fields an agency needs for that one task (README.md, "Purposes of
use"). Their secrets are generated at seeding and written only to `var/demo/clients.json`: demo
secrets exist only in demo mode. The e-SSC app (`ESSC_APP`) is not in `DEMO_AGENCIES`: it acts
for foreigners only, so it gets no token of its own (client credentials never carry `self:*`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from auth import AuthService

__all__ = [
    "DEMO_AGENCIES",
    "DEMO_IDENTITY_PROVIDERS",
    "DEMO_PURPOSES",
    "ESSC_APP",
    "GROWN_PURPOSES",
    "OFFICER_PURPOSES",
    "DemoAgency",
    "DemoIdentityProvider",
    "register_demo_identity_providers",
    "seed_demo_clients",
    "seed_demo_purposes",
]

#: Each demo purpose and the root fields (queries, mutations, subscriptions) it covers.
DEMO_PURPOSES: dict[str, frozenset[str]] = {
    name: frozenset(operations.split())
    for name, operations in (
        # A checkpoint or counter: is this permit (or scanned QR code) valid, is the card live,
        # and tell me when it changes.
        ("residence-permit-check", "permit permits verifyPermitQr cards permitStatusChanged"),
        # A case file: the permits, the person and the cards behind them (an officer's, for a
        # case: see OFFICER_PURPOSES).
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
        # The e-SSC app, for the foreigner it acts for: their own rows only (their permits,
        # enrollment, cards, the QR code of their current permit, their permits' events) and
        # their own data tracker.
        (
            "self-service",
            "me permit permits enrollment cards myPermitQr permitStatusChanged myAccessLog",
        ),
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
    _agency("auditor-hubei", "Hubei Audit Office", "audit:read audit:subject", "audit", "*"),
    _agency(
        "wms",
        "Foreigner's Work Management Service System",
        "events:publish",
        "permit-change-notification",
        "*",
    ),
)


# A foreigner's own rows and data tracker are open to `self:read` / `self:subscribe`
# (`schema.person`); any other row is refused as outside the jurisdiction.
ESSC_APP = _agency(
    "essc-app", "e-SSC App (foreigners' social security card)", "self:read self:subscribe",
    "self-service", "*",
)


@dataclass(frozen=True, slots=True)
class DemoIdentityProvider:
    client_id: str
    provider: str  # the simulated provider's name (`simulators.identity`)
    kind: str
    roles: Mapping[str, frozenset[str]]


def _roles(**roles: str) -> dict[str, frozenset[str]]:
    return {role.replace("_", "-"): frozenset(scopes.split()) for role, scopes in roles.items()}


DEMO_IDENTITY_PROVIDERS: tuple[DemoIdentityProvider, ...] = (
    DemoIdentityProvider("exit-entry-wuhan", "exit-entry-wuhan", "officer", _roles(
        border_officer="permit:validity permit:holder card:status",
    )),
    DemoIdentityProvider("si-agency-wuhan", "si-agency-wuhan", "officer", _roles(
        enrollment_officer="permit:validity permit:holder person:identity enrollment:read "
                           "enrollment:write",
        benefit_clerk="permit:validity enrollment:read",
    )),
    DemoIdentityProvider("essc-app", "essc", "subject", _roles(
        foreigner="self:read self:subscribe",
    )),
)


async def register_demo_identity_providers(
    auth: AuthService, locate: Callable[[str], tuple[str, str]]
) -> None:
    """Register the demo's providers afresh; `locate(provider)` gives (issuer, JWKS URL), which
    change with the simulator's port at each start."""
    for demo in DEMO_IDENTITY_PROVIDERS:
        for old in await auth.list_identity_providers(demo.client_id):
            await auth.remove_identity_provider(demo.client_id, old.issuer)
        issuer, jwks_url = locate(demo.provider)
        await auth.add_identity_provider(
            demo.client_id, issuer, demo.kind, demo.roles, jwks_url=jwks_url
        )

#: The demo purposes whose requests must name the officer acting and the case
#: (`needs_officer`: an officer's exchanged token and `X-Case-Reference`).
OFFICER_PURPOSES: frozenset[str] = frozenset({"investigation"})


#: Demo purposes whose operations grew in a later version, with those they covered before: a
#: demo database that still has exactly the old set gets the new one at its next start (one an
#: operator changed is left alone).
GROWN_PURPOSES: dict[str, tuple[frozenset[str], ...]] = {
    "self-service": (frozenset({"myAccessLog"}),),
}


async def seed_demo_purposes(auth: AuthService) -> None:
    """Register the demo purposes not registered yet (a demo database made before purposes
    covered operations gets them at its next start), and grow those of `GROWN_PURPOSES`
    still registered as a former version left them."""
    registered = {p.name: p for p in await auth.list_purposes()}
    for name, operations in DEMO_PURPOSES.items():
        found = registered.get(name)
        if found is None:
            await auth.add_purpose(
                name, sorted(operations), needs_officer=name in OFFICER_PURPOSES
            )
        elif found.operations in GROWN_PURPOSES.get(name, ()):
            await auth.set_purpose_operations(name, sorted(operations))


async def seed_demo_clients(
    auth: AuthService, only: Iterable[DemoAgency] | None = None
) -> list[dict[str, object]]:
    """Register the demo purposes (those not registered yet) and every demo client (the
    agencies and the e-SSC app), or those of `only`; return `{client_id, client_secret, scopes,
    purposes, purpose_operations, officer_purposes, jurisdiction}` each (`officer_purposes`:
    its purposes that need an officer's token and a case reference)."""
    await seed_demo_purposes(auth)
    seeded: list[dict[str, object]] = []
    for agency in (*DEMO_AGENCIES, ESSC_APP) if only is None else only:
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
                "officer_purposes": sorted(agency.purposes & OFFICER_PURPOSES),
                "jurisdiction": list(agency.jurisdiction),
            }
        )
    return seeded
