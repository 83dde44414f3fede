"""A foreigner's token (the e-SSC app's) reads their own rows and nothing of another person's.

Hypothesis writes documents naming the person's own permits and SSNs and other people's through
every root field open to `self:read` (`permit`, `permits` batches, `enrollment`, `cards`, `me`,
`_entities` representations, `myPermitQr`, `myAccessLog`), nested every way the schema links
rows (`permit.enrollment`, `permit.cards`, `Enrollment.permit`, `Enrollment.cards`,
`me.permits`, `me.enrollments`), with aliases, inline and named fragments, literals or
variables, sometimes beside a field the person's scopes do not open (`foreigner`, the access
logs, a passport number). Each is sent over HTTP with the person's token from a real token
exchange. Whatever the shape:

- no answer carries another person's permit number or SSN, anywhere in its body;
- a document with a field not open to the person is refused whole (403 FORBIDDEN, no data);
- otherwise each row of another person is null with FORBIDDEN / OUT_OF_JURISDICTION (the
  jurisdiction's refusal, nothing else), and each root naming only the person's own rows
  answers them;
- the tracker's entries hold only agency, time and purpose.
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
from tests.conftest import HubClient, Simulators, open_hub, si_agency_of
from tests.hub.foreigners import Person, people, person_token
from tests.services import fresh_database
from tests.simulators.servers import serve


@dataclass
class People:
    hub: HubClient
    idp: httpx.AsyncClient
    me: Person
    others: tuple[Person, ...]

    @property
    def other_permits(self) -> tuple[str, ...]:
        return tuple(n for p in self.others for n in p.permits)

    @property
    def other_ssns(self) -> tuple[str, ...]:
        return tuple(s for p in self.others for s in p.ssns)

    async def token(self) -> str:
        return await person_token(self.hub.http, self.idp, self.hub.secrets["essc-app"],
                                  self.me.permit.number, self.me.name)


@pytest.fixture(scope="module")
async def crowd(
    simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[People]:
    tmp = tmp_path_factory.mktemp("people-random")
    identity = IdentityProviders(simulators.dataset, "http://127.0.0.1:8000/oauth/token")
    me, *others = people(simulators.dataset)[:5]
    async with serve(build_identity_app(identity)) as idp_url, fresh_database(tmp) as url, \
            open_hub(simulators, url, tmp) as hub, httpx.AsyncClient(base_url=idp_url) as idp:
        await register_demo_identity_providers(
            hub.hub.auth, lambda name: (identity.issuer(idp_url, name),
                                        identity.jwks_url(idp_url, name)),
        )
        # Agencies look at everyone (so that records naming the others exist to be leaked).
        for person in (me, *others):
            await hub.graphql(si_agency_of(person.permit.number),
                              "query($s: ID!) { enrollment(ssn: $s) { status } }",
                              {"s": person.ssns[0]})
        yield People(hub, idp, me, tuple(others))


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
# Selections of each row type, open to `self:read`, each reaching the linked rows.
_CARD = ("kind", "status", "issuedOn", "region { code }")
_ENROLLMENT = ("ssn", "status", "permitNumber", "region { code }", "permit { number status }",
               "cards { status }")
_PERMIT = ("number", "status", "isValid", "validUntil", "holder { id name nationality }",
           "employer { name }", "position", "history { kind }", "enrollment { ssn status }",
           "enrollment { permit { number } cards { kind } }", "cards { status }")
_FOREIGNER = ("id", "name", "permits { number holder { id } }",
              "permits { enrollment { ssn } }", "enrollments { ssn permit { number } }",
              "enrollments { cards { status } }")
_REFUSED_WHOLE = frozenset({"foreigner", "subjectAccessLog", "accessLog", "passport"})


def _body(draw: st.DrawFn, doc: Doc, type_name: str, fields: tuple[str, ...]) -> str:
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True))
    return doc.wrap(draw, type_name, " ".join(chosen))


@dataclass(frozen=True)
class Root:
    key: str
    kind: str
    names: tuple[str, ...]  # the identifiers it names, in order (a batch: one per item)


@st.composite
def documents(draw: st.DrawFn, crowd: People) -> tuple[str, dict[str, Any], list[Root]]:
    doc = Doc()
    text: list[str] = []
    roots: list[Root] = []
    kinds = ["permit", "permits", "enrollment", "cards", "me", "entities", "myPermitQr",
             "myAccessLog", *sorted(_REFUSED_WHOLE)]
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4))
    permit = st.sampled_from((*crowd.me.permits, *crowd.other_permits))
    ssn = st.sampled_from((*crowd.me.ssns, *crowd.other_ssns))
    for kind in chosen:
        key = doc.key("r")  # unique: two roots of one name would conflict
        names: tuple[str, ...] = ()
        if kind == "permit":
            names = (draw(permit),)
            text.append(f"{key}: permit(number: {doc.value(draw, names[0], 'ID!')}) "
                        f"{{ {_body(draw, doc, 'WorkPermit', _PERMIT)} }}")
        elif kind == "permits":
            names = tuple(draw(st.lists(permit, min_size=1, max_size=4)))
            text.append(f"{key}: permits(numbers: {doc.value(draw, list(names), '[ID!]!')}) "
                        f"{{ {_body(draw, doc, 'WorkPermit', _PERMIT)} }}")
        elif kind in ("enrollment", "cards"):
            names = (draw(ssn),)
            type_name, fields = (("Enrollment", _ENROLLMENT) if kind == "enrollment"
                                 else ("SocialSecurityCard", _CARD))
            text.append(f"{key}: {kind}(ssn: {doc.value(draw, names[0], 'ID!')}) "
                        f"{{ {_body(draw, doc, type_name, fields)} }}")
        elif kind == "me":
            text.append(f"{key}: me {{ {_body(draw, doc, 'Foreigner', _FOREIGNER)} }}")
        elif kind == "entities":
            names = tuple(draw(st.lists(st.one_of(permit, ssn), min_size=1, max_size=3)))
            representations = [
                {"__typename": "Enrollment", "ssn": n} if n in (*crowd.me.ssns, *crowd.other_ssns)
                else {"__typename": "WorkPermit", "number": n}
                for n in names
            ]
            doc.params.append(f"${key}: [_Any!]!")
            doc.variables[key] = representations
            text.append(
                f"{key}: _entities(representations: ${key}) {{ "
                f"... on WorkPermit {{ {' '.join(draw(st.lists(st.sampled_from(_PERMIT), min_size=1, max_size=2, unique=True)))} }} "  # noqa: E501
                # Aliased: fields of one name must agree in type across the two fragments
                # (a permit's `status` and an enrollment's are different enums).
                f"... on Enrollment {{ {' '.join(f'e{i}: {f}' for i, f in enumerate(draw(st.lists(st.sampled_from(_ENROLLMENT), min_size=1, max_size=2, unique=True))))} }} }}"  # noqa: E501
            )
        elif kind == "myPermitQr":
            text.append(f"{key}: myPermitQr {{ permitNumber payload }}")
        elif kind == "myAccessLog":
            text.append(f"{key}: myAccessLog {{ {doc.wrap(draw, 'MyAccessLog', _TRACKER)} }}")
        elif kind == "foreigner":
            names = (draw(permit),)
            text.append(f"{key}: foreigner(permitNumber: {doc.value(draw, names[0], 'ID')}) "
                        f"{{ name }}")
        elif kind == "passport":
            names = (draw(permit),)
            text.append(f"{key}: permit(number: {doc.value(draw, names[0], 'ID!')}) "
                        f"{{ holder {{ passportNumber }} }}")
        elif kind == "subjectAccessLog":
            subject = doc.value(draw, draw(st.one_of(permit, ssn)), "ID!")
            text.append(f"{key}: subjectAccessLog(subject: {subject}) {{ {_EDGES} }}")
        else:
            subject = doc.value(draw, draw(st.one_of(permit, ssn)), "ID")
            text.append(f"{key}: accessLog(filter: {{subject: {subject}}}) {{ {_EDGES} }}")
        roots.append(Root(key, kind, names))
    params = f"({', '.join(doc.params)})" if doc.params else ""
    query = f"query P{params} {{ {' '.join(text)} }} " + " ".join(doc.fragments)
    return query, doc.variables, roots


@settings(
    max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_no_document_shows_a_foreigner_another_persons_rows(
    crowd: People, data: st.DataObject
) -> None:
    query, variables, roots = data.draw(documents(crowd), label="document")
    response = await crowd.hub.http.post(
        "/graphql", json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {await crowd.token()}",
                 "X-Purpose-Of-Use": "self-service"},
    )
    body = response.json()
    for identifier in (*crowd.other_permits, *crowd.other_ssns):
        assert identifier not in response.text, (query, variables)
    if {r.kind for r in roots} & _REFUSED_WHOLE:
        assert response.status_code == 403, response.text[:300]
        assert "data" not in body or body["data"] is None, response.text[:300]
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        return
    assert response.status_code == 200, response.text[:300]
    for error in body.get("errors", ()):
        assert error["extensions"]["code"] == "FORBIDDEN", error
        assert error["extensions"]["reason"] == "OUT_OF_JURISDICTION", error
    mine = set(crowd.me.identifiers)
    for root in roots:
        answer = body["data"][root.key]
        if root.kind in ("permits", "entities"):
            for name, item in zip(root.names, answer, strict=True):
                assert (item is not None) == (name in mine), (query, variables, name)
        elif root.names:
            assert (answer is not None) == (root.names[0] in mine), (query, variables)
        elif root.kind == "myAccessLog":
            for entry in answer["entries"]:
                assert set(entry) <= {"agency", "purpose", "time"}
                assert entry["agency"] is not None
        else:  # me, myPermitQr: the person's own, always there
            assert answer is not None, (query, variables)
