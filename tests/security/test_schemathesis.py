"""Issue 6, item 7: schemathesis in GraphQL mode against the hub; zero 500s, zero leaks.

schemathesis reads the hub's SDL and generates operations over the whole schema, queries
and mutations, with arguments of every shape (wrong types, empty strings, unicode, huge
numbers). A client holding every data scope sends them, so they get past the field policy
to argument validation and execution. The corpus is drawn first, derandomized (the hub is
async and the generator is not), then sent.
"""

from __future__ import annotations

import schemathesis
from hypothesis import Phase, given, settings

from schema import public_sdl
from schema.purposes import ROOT_FIELDS
from tests.conftest import HubClient, Simulators
from tests.security._leaks import assert_safe_error

SCOPES = [
    "permit:validity", "permit:holder", "permit:detail", "person:identity", "enrollment:read",
    "enrollment:write", "card:status", "card:read", "card:write", "audit:read", "audit:subject",
]
PURPOSE = "fuzzing"


def _corpus(count: int) -> list[str]:
    schema = schemathesis.graphql.from_file(public_sdl())
    drawn: list[str] = []

    @settings(
        max_examples=count, deadline=None, database=None, derandomize=True,
        phases=[Phase.generate],
    )
    @given(schema.as_strategy())
    def collect(case: schemathesis.Case) -> None:
        drawn.append(str(case.body))

    collect()
    return drawn


async def test_schemathesis_operations_never_give_a_500_or_a_leak(
    hub: HubClient, simulators: Simulators
) -> None:
    await hub.hub.auth.add_purpose(PURPOSE, sorted(ROOT_FIELDS))  # every operation: fuzzed
    _, secret = await hub.hub.auth.add_client("fuzzer", "Fuzzing agency", SCOPES, [PURPOSE])
    assert secret is not None
    hub.secrets["fuzzer"] = secret
    corpus = _corpus(150)
    assert len(corpus) > 100 and any(q.lstrip().startswith("mutation") for q in corpus)
    statuses: set[int] = set()
    for document in corpus:
        response = await hub.graphql("fuzzer", document, purpose=PURPOSE)
        statuses.add(response.status_code)
        if response.status_code >= 400 or "errors" in response.json():
            assert_safe_error(response, simulators.wms_url, simulators.cards_url)
    assert all(s < 500 for s in statuses), statuses
    assert (await hub.hub.audit.verify()).ok
