"""Foreigners for the tests of a person's own rows (`self:read`, `self:subscribe`).

`people` picks persons of the synthetic data set with everything the e-SSC app shows (a permit
valid today, an enrollment, cards); `person_token` gets one of them a person token the way the
app does: the identity-verification service's real-name check, then the hub's token exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from connectors.records import Card, Permit, PermitMedium
from simulators.synthetic import Dataset

__all__ = ["EXCHANGE", "JWT_TYPE", "Person", "people", "person_token"]

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass(frozen=True)
class Person:
    permit: Permit  # valid today, the one they prove who they are with
    permits: tuple[str, ...]  # every permit of theirs in the WMS
    ssns: tuple[str, ...]  # the SSNs of their permits' enrollments
    cards: tuple[Card, ...]  # the cards under those SSNs

    @property
    def id(self) -> str:
        return self.permit.holder.id

    @property
    def name(self) -> str:
        return self.permit.holder.name

    @property
    def identifiers(self) -> tuple[str, ...]:
        return (*self.permits, *self.ssns)


def people(dataset: Dataset, *, reverse: bool = False) -> list[Person]:
    """Persons with one permit, electronic and valid today, enrolled and carded, never a demo
    sample (other tests change those); ordered by holder id (`reverse`: from the other end, so
    that tests that change permits do not pick the persons others read)."""
    samples = set(dataset.samples.values())
    by_permit = {e.permit_number: e for e in dataset.enrollments.values()}
    found: list[Person] = []
    for holder in sorted(dataset.permits_by_holder, reverse=reverse):
        numbers = dataset.permits_by_holder[holder]
        if len(numbers) != 1 or numbers[0] in samples or numbers[0] not in by_permit:
            continue
        permit = dataset.permits[numbers[0]]
        enrollment = by_permit[permit.number]
        cards = dataset.cards.get(enrollment.ssn, ())
        if (
            not cards or permit.medium is not PermitMedium.ELECTRONIC
            or not permit.is_valid_on(dataset.today)
        ):
            continue
        found.append(Person(permit, numbers, (enrollment.ssn,), cards))
        if len(found) == 6:
            break
    return found


async def person_token(
    hub: httpx.AsyncClient, idp: httpx.AsyncClient, app_secret: str, permit: str, name: str,
    token_url: str = "/oauth/token",
) -> str:
    """The e-SSC app's token for the holder of `permit` (named `name`)."""
    verified = await idp.post("/essc/assertion", json={"permitNumber": permit, "name": name})
    assert verified.status_code == 200, verified.text
    response = await hub.post(
        token_url,
        data={"grant_type": EXCHANGE, "subject_token": verified.json()["assertion"],
              "subject_token_type": JWT_TYPE},
        auth=("essc-app", app_secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
