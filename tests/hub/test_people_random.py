"""A foreigner's token (the e-SSC app's) reads nothing of another person, whatever the document.

Hypothesis writes documents naming another person's permits and SSNs through every root field
(aliases, inline and named fragments, literals or variables), alone or beside the person's own
data tracker (`myAccessLog`). Each is sent over HTTP with the person's token: no answer may
carry the other person's identifiers, a document naming anything but `myAccessLog` is refused
whole, and the tracker's entries hold only agency, time and purpose.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.demo_clients import register_demo_identity_providers
from simulators import IdentityProviders, build_identity_app
from tests.conftest import HubClient, Simulators, open_hub
from tests.services import fresh_database
from tests.simulators.servers import serve

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


@dataclass
class People:
    hub: HubClient
    idp: httpx.AsyncClient
    mine: str  # the person's permit
    name: str
    other_permits: tuple[str, ...]
    other_ssns: tuple[str, ...]

    async def token(self) -> str:
        verified = await self.idp.post(
            "/essc/assertion", json={"permitNumber": self.mine, "name": self.name})
        assert verified.status_code == 200, verified.text
        response = await self.hub.http.post(
            "/oauth/token",
            data={"grant_type": EXCHANGE, "subject_token": verified.json()["assertion"],
                  "subject_token_type": JWT_TYPE},
            auth=("essc-app", self.hub.secrets["essc-app"]),
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@pytest.fixture(scope="module")
async def people(
    simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[People]:
    tmp = tmp_path_factory.mktemp("people-random")
    dataset = simulators.dataset
    identity = IdentityProviders(dataset, "http://127.0.0.1:8000/oauth/token")
    enrolled = sorted(dataset.enrollments.values(), key=lambda e: e.ssn)
    mine = dataset.permits[enrolled[0].permit_number]
    others = [e for e in enrolled
              if dataset.permits[e.permit_number].holder.id != mine.holder.id][:4]
    async with serve(build_identity_app(identity)) as idp_url, fresh_database(tmp) as url, \
            open_hub(simulators, url, tmp) as hub, httpx.AsyncClient(base_url=idp_url) as idp:
        await register_demo_identity_providers(
            hub.hub.auth, lambda name: (identity.issuer(idp_url, name),
                                        identity.jwks_url(idp_url, name)),
        )
        # Agencies look at the others (so that their records exist to be leaked).
        for e in others:
            await hub.graphql("si-agency-wuhan" if e.ssn.startswith("4201") else
                              "si-agency-yichang",
                              "query($s: ID!) { enrollment(ssn: $s) { status } }", {"s": e.ssn})
        yield People(hub, idp, mine.number, mine.holder.name,
                     tuple(e.permit_number for e in others), tuple(e.ssn for e in others))


@dataclass
class Doc:
    counter: itertools.count[int] = field(default_factory=itertools.count)
    fragments: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)

    def key(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def value(self, draw: st.DrawFn, value: Any, graphql_type: str) -> str:
        if draw(st.booleans()):
            name = self.key("v")
            self.params.append(f"${name}: {graphql_type}")
            self.variables[name] = value
            return f"${name}"
        if isinstance(value, list):
            return "[" + ", ".join(f'"{v}"' for v in value) + "]"
        return f'"{value}"'

    def wrap(self, draw: st.DrawFn, type_name: str, body: str) -> str:
        how = draw(st.sampled_from(["plain", "inline", "fragment"]))
        if how == "inline":
            return f"... on {type_name} {{ {body} }}"
        if how == "fragment":
            name = self.key("F")
            self.fragments.append(f"fragment {name} on {type_name} {{ {body} }}")
            return f"...{name}"
        return body


_TRACKER = "entries { agency purpose time } hasNextPage"
_EDGES = "edges { node { agency purpose subjects } }"


@st.composite
def documents(draw: st.DrawFn, people: People) -> tuple[str, dict[str, Any], bool]:
    doc = Doc()
    roots: list[str] = []
    kinds = ["myAccessLog", "permit", "permits", "foreigner", "enrollment", "cards",
             "subjectAccessLog", "accessLog"]
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=3))
    permit = st.sampled_from(people.other_permits)
    ssn = st.sampled_from(people.other_ssns)
    for kind in chosen:
        alias = doc.key("r") + ": "  # unique: two roots of one name would conflict
        if kind == "myAccessLog":
            roots.append(f"{alias}myAccessLog {{ {doc.wrap(draw, 'MyAccessLog', _TRACKER)} }}")
        elif kind == "permit":
            argument = doc.value(draw, draw(permit), "ID!")
            body = doc.wrap(draw, "WorkPermit", "number status holder { name }")
            roots.append(f"{alias}permit(number: {argument}) {{ {body} }}")
        elif kind == "permits":
            numbers = draw(st.lists(permit, min_size=1, max_size=3))
            body = doc.wrap(draw, "WorkPermit", "number isValid")
            roots.append(f"{alias}permits(numbers: {doc.value(draw, numbers, '[ID!]!')}) "
                         f"{{ {body} }}")
        elif kind == "foreigner":
            argument = (f"permitNumber: {doc.value(draw, draw(permit), 'ID')}"
                        if draw(st.booleans()) else f"ssn: {doc.value(draw, draw(ssn), 'ID')}")
            body = doc.wrap(draw, "Foreigner", "name permits { number }")
            roots.append(f"{alias}foreigner({argument}) {{ {body} }}")
        elif kind in ("enrollment", "cards"):
            type_name = "Enrollment" if kind == "enrollment" else "SocialSecurityCard"
            body = doc.wrap(draw, type_name, "ssn status")
            roots.append(f"{alias}{kind}(ssn: {doc.value(draw, draw(ssn), 'ID!')}) {{ {body} }}")
        elif kind == "subjectAccessLog":
            subject = doc.value(draw, draw(st.one_of(permit, ssn)), "ID!")
            roots.append(f"{alias}subjectAccessLog(subject: {subject}) {{ {_EDGES} }}")
        else:
            subject = doc.value(draw, draw(st.one_of(permit, ssn)), "ID")
            roots.append(f"{alias}accessLog(filter: {{subject: {subject}}}) {{ {_EDGES} }}")
    params = f"({', '.join(doc.params)})" if doc.params else ""
    query = f"query P{params} {{ {' '.join(roots)} }} " + " ".join(doc.fragments)
    return query, doc.variables, set(chosen) == {"myAccessLog"}


@settings(
    max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_document_shows_a_foreigner_another_persons_data(
    people: People, data: st.DataObject
) -> None:
    query, variables, only_tracker = data.draw(documents(people), label="document")
    response = await people.hub.http.post(
        "/graphql", json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {await people.token()}",
                 "X-Purpose-Of-Use": "self-service"},
    )
    body = response.json()
    for identifier in (*people.other_permits, *people.other_ssns):
        assert identifier not in response.text, (query, variables)
    if not only_tracker:
        assert response.status_code == 403, response.text[:300]
        assert "data" not in body or body["data"] is None, response.text[:300]
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        return
    assert response.status_code == 200, response.text[:300]
    for answer in body["data"].values():
        for entry in answer["entries"]:
            assert set(entry) <= {"agency", "purpose", "time"}
            assert entry["agency"] is not None
