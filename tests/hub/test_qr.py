"""Issue 5, item 3: public security scans a permit's QR code (`Query.verifyPermitQr`)."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx

from simulators.wms import generate_signing_key, qr_payload
from tests.conftest import HubClient, Simulators

VERIFY = """query($p: String!) {
  verifyPermitQr(payload: $p) { valid reason permit { number status } } }"""
SCANNER = "exit-entry-wuhan"
JWKS = "GET /.well-known/jwks.json"


async def _wms_qr(simulators: Simulators, number: str, ttl: int = 300) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{simulators.wms_url}/permits/{number}/qr?ttl={ttl}")
    response.raise_for_status()
    payload: str = response.json()["payload"]
    return payload


async def _verify(hub: HubClient, payload: str) -> dict[str, object]:
    response = await hub.graphql(SCANNER, VERIFY, {"p": payload})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    result: dict[str, object] = body["data"]["verifyPermitQr"]
    return result


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_a_genuine_code_of_a_valid_permit_is_valid(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    result = await _verify(hub, await _wms_qr(simulators, number))
    permit = {"number": number, "status": "VALID"}
    assert result == {"valid": True, "reason": None, "permit": permit}


async def test_a_cancelled_permit_fails_even_with_a_genuine_signature(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["cancelled_permit"]
    result = await _verify(hub, await _wms_qr(simulators, number))
    assert result["valid"] is False
    assert result["reason"] == "PERMIT_NOT_VALID"
    assert result["permit"] == {"number": number, "status": "CANCELLED"}


async def test_a_tampered_code_has_an_invalid_signature_and_reveals_no_permit(
    hub: HubClient, simulators: Simulators
) -> None:
    samples = simulators.dataset.samples
    header, _, signature = (await _wms_qr(simulators, samples["cancelled_permit"])).split(".")
    claims = {"sub": samples["valid_permit"], "iat": 1, "exp": 4_000_000_000, "iss": "wms"}
    swapped = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    flipped_signature = f"{header}.{_b64(json.dumps(claims).encode())}.{signature[::-1]}"
    for payload in (swapped, flipped_signature):
        assert await _verify(hub, payload) == {
            "valid": False, "reason": "SIGNATURE_INVALID", "permit": None,
        }


async def test_a_code_signed_by_another_key_is_refused_and_the_jwks_is_fetched_once(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    forged = qr_payload(generate_signing_key(), number)
    for payload in (await _wms_qr(simulators, number), forged, forged, forged):
        await _verify(hub, payload)
    assert await _verify(hub, forged) == {
        "valid": False, "reason": "SIGNATURE_INVALID", "permit": None,
    }
    # Cached; unknown kids right after a fetch do not turn into a flood of fetches.
    assert (await simulators.stats(simulators.wms_url))["requests"][JWKS] == 1


async def test_unsigned_and_hmac_codes_are_refused(hub: HubClient, simulators: Simulators) -> None:
    number = simulators.dataset.samples["valid_permit"]
    claims = _b64(json.dumps({"sub": number, "exp": 4_000_000_000, "iss": "wms"}).encode())
    for alg in ("none", "HS256"):
        header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "x"}).encode())
        result = await _verify(hub, f"{header}.{claims}.{_b64(b'sig') if alg != 'none' else ''}")
        assert result == {"valid": False, "reason": "SIGNATURE_INVALID", "permit": None}


async def test_an_expired_code_is_refused(hub: HubClient, simulators: Simulators) -> None:
    payload = await _wms_qr(simulators, simulators.dataset.samples["valid_permit"], ttl=1)
    await asyncio.sleep(1.1)
    assert await _verify(hub, payload) == {
        "valid": False, "reason": "CODE_EXPIRED", "permit": None,
    }


async def test_garbage_and_oversized_payloads_are_malformed_without_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    genuine = await _wms_qr(simulators, simulators.dataset.samples["valid_permit"])
    before = await simulators.upstream_calls()
    for payload in ("", "garbage", "a.b.c", "é.é.é", genuine + "." + "A" * 5000, "x" * 5000):
        assert await _verify(hub, payload) == {
            "valid": False, "reason": "MALFORMED", "permit": None,
        }
    assert await simulators.upstream_calls() == before


async def test_a_client_without_permit_validity_may_not_verify_codes(
    hub: HubClient, simulators: Simulators
) -> None:
    before = await simulators.upstream_calls()
    response = await hub.graphql("auditor-hubei", VERIFY, {"p": "a.b.c"})
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await simulators.upstream_calls() == before
