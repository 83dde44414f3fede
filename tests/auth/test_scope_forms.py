"""Accepted scope claim forms: `scope` string always; `scp` and arrays only when configured."""

from __future__ import annotations

from typing import Any

import pytest

from auth import Unauthenticated
from auth.tokens import scopes_from_claims
from tests.auth.conftest import Agency, Hub, HubFactory, config

FORMS: dict[str, dict[str, Any]] = {
    "scope string": {"scope": "permit:validity permit:holder"},
    "scope array": {"scope": ["permit:validity", "permit:holder"]},
    "scp string": {"scp": "permit:validity permit:holder"},
    "scp array": {"scp": ["permit:validity", "permit:holder"]},
}
# form -> the (accept_scp_claim, accept_scope_array) settings under which it is accepted
ACCEPTED = {
    "scope string": {(False, False), (True, False), (False, True), (True, True)},
    "scope array": {(False, True), (True, True)},
    "scp string": {(True, False), (True, True)},
    "scp array": {(True, True)},
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("scp", [False, True])
@pytest.mark.parametrize("array", [False, True])
def test_scope_claim_forms(form: str, scp: bool, array: bool) -> None:
    if (scp, array) in ACCEPTED[form]:
        scopes = scopes_from_claims(FORMS[form], accept_scp=scp, accept_array=array)
        assert scopes == {"permit:validity", "permit:holder"}
    else:
        with pytest.raises(Unauthenticated, match="scope claim form not accepted"):
            scopes_from_claims(FORMS[form], accept_scp=scp, accept_array=array)


def test_malformed_scope_claims_are_refused() -> None:
    for claims in ({"scope": 7}, {"scope": ["a", 1]}, {"scope": None}):
        with pytest.raises(Unauthenticated):
            scopes_from_claims(claims, accept_scp=True, accept_array=True)


async def test_scp_is_refused_by_default_over_http(hub: Hub, exit_entry: Agency) -> None:
    claims = hub.valid_claims(exit_entry.client_id, scp="permit:validity")
    del claims["scope"]
    response = await hub.call(hub.mint(claims))
    assert response.status_code == 401
    assert response.json()["description"] == "scope claim form not accepted (scp)"


async def test_scp_and_arrays_are_accepted_when_configured(
    make_hub: HubFactory, exit_entry: Agency
) -> None:
    lenient = await make_hub(config(accept_scp_claim=True, accept_scope_array=True))
    array = lenient.valid_claims(exit_entry.client_id, scope=["permit:validity", "card:status"])
    scp = lenient.valid_claims(exit_entry.client_id, scp=["permit:holder"])
    del scp["scope"]

    assert (await lenient.call(lenient.mint(array))).json()["scopes"] == [
        "card:status", "permit:validity"]
    assert (await lenient.call(lenient.mint(scp))).json()["scopes"] == ["permit:holder"]
