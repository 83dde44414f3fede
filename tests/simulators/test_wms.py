from __future__ import annotations

import datetime as dt

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from connectors.identifiers import make_permit_number
from connectors.wire import event_from_wire, permit_from_wire
from simulators import Dataset, build_wms_app, generate_signing_key, qr_payload
from simulators.wms import load_or_create_signing_key

UNKNOWN = make_permit_number("420100", 2020, 9_999_999)


async def test_get_permit_returns_the_permit(wms: httpx.AsyncClient, dataset: Dataset) -> None:
    number = dataset.samples["valid_permit"]
    response = await wms.get(f"/permits/{number}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert permit_from_wire(response.json()) == dataset.permits[number]


async def test_unknown_permit_is_404_not_found(wms: httpx.AsyncClient) -> None:
    response = await wms.get(f"/permits/{UNKNOWN}")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}


async def test_batch_keeps_order_and_answers_null_for_unknown(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    s = dataset.samples
    numbers = [s["expired_permit"], UNKNOWN, s["valid_permit"], "garbage", s["expired_permit"]]
    response = await wms.post("/permits:batch", json={"numbers": numbers})
    permits = response.json()["permits"]
    assert [p and p["number"] for p in permits] == [
        s["expired_permit"], None, s["valid_permit"], None, s["expired_permit"],
    ]


async def test_batch_accepts_500_and_refuses_501(wms: httpx.AsyncClient, dataset: Dataset) -> None:
    numbers = [*dataset.permits, *[UNKNOWN] * 500][:500]
    answered = await wms.post("/permits:batch", json={"numbers": numbers})
    assert len(answered.json()["permits"]) == 500
    too_many = await wms.post("/permits:batch", json={"numbers": [*numbers, UNKNOWN]})
    assert too_many.status_code == 400
    assert too_many.json()["error"] == "bad_request"


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"numbers": "420100"}', b'{"numbers": [1, 2]}', b"{}"]
)
async def test_malformed_batch_is_400(wms: httpx.AsyncClient, body: bytes) -> None:
    response = await wms.post("/permits:batch", content=body)
    assert response.status_code == 400


async def test_history_batch_has_every_requested_number(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    number = dataset.samples["cancelled_permit"]
    response = await wms.post("/permits/history:batch", json={"numbers": [number, UNKNOWN]})
    history = response.json()["history"]
    assert history[UNKNOWN] == []
    assert tuple(event_from_wire(e) for e in history[number]) == dataset.histories[number]


async def test_history_of_one_permit(wms: httpx.AsyncClient, dataset: Dataset) -> None:
    number = dataset.samples["expired_permit"]
    response = await wms.get(f"/permits/{number}/history")
    events = tuple(event_from_wire(e) for e in response.json()["history"])
    assert events == dataset.histories[number]
    assert (await wms.get(f"/permits/{UNKNOWN}/history")).status_code == 404


async def test_permits_of_holders(wms: httpx.AsyncClient, dataset: Dataset) -> None:
    holder = dataset.samples["valid_permit_holder"]
    response = await wms.post("/foreigners/permits:batch", json={"ids": [holder, "FRN-NOBODY"]})
    permits = response.json()["permits"]
    assert permits == {holder: list(dataset.permits_by_holder[holder]), "FRN-NOBODY": []}
    assert dataset.samples["valid_permit"] in permits[holder]


async def _served_keys(wms: httpx.AsyncClient) -> KeySet:
    jwks = (await wms.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])  # never the private half
    return KeySet.import_key_set(jwks)


async def test_qr_payload_verifies_against_the_served_jwks(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    number = dataset.samples["valid_permit"]
    payload = (await wms.get(f"/permits/{number}/qr", params={"ttl": 60})).json()["payload"]
    token = jwt.decode(payload, await _served_keys(wms), algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and token.header["kid"]
    assert token.claims["sub"] == number and token.claims["iss"] == "wms"
    assert token.claims["exp"] - token.claims["iat"] == 60


async def test_tampered_qr_payload_does_not_verify(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    payload = (await wms.get(f"/permits/{dataset.samples['valid_permit']}/qr")).json()["payload"]
    header, _, signature = payload.split(".")
    forged_claims = jwt.encode(
        {"alg": "ES256"}, {"sub": dataset.samples["cancelled_permit"], "iss": "wms"},
        generate_signing_key(),
    ).split(".")[1]
    keys = await _served_keys(wms)
    with pytest.raises(BadSignatureError):
        jwt.decode(f"{header}.{forged_claims}.{signature}", keys, algorithms=["ES256"])


async def test_qr_signed_by_another_key_does_not_verify(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    foreign = qr_payload(generate_signing_key(), dataset.samples["valid_permit"], 60)
    with pytest.raises(JoseError):
        jwt.decode(foreign, await _served_keys(wms), algorithms=["ES256"])


@pytest.mark.parametrize("ttl", ["0", "-5", "soon", str(10**9)])
async def test_qr_with_a_bad_ttl_is_400(wms: httpx.AsyncClient, dataset: Dataset, ttl: str) -> None:
    response = await wms.get(f"/permits/{dataset.samples['valid_permit']}/qr", params={"ttl": ttl})
    assert response.status_code == 400


async def test_qr_of_unknown_permit_is_404(wms: httpx.AsyncClient) -> None:
    assert (await wms.get(f"/permits/{UNKNOWN}/qr")).status_code == 404


def test_qr_payload_helper_uses_the_app_key_and_the_given_clock(dataset: Dataset) -> None:
    app = build_wms_app(dataset)
    now = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
    payload = qr_payload(app, dataset.samples["cancelled_permit"], 120, now=now)
    token = jwt.decode(payload, app.state.signing_key, algorithms=["ES256"])
    assert token.claims["iat"] == int(now.timestamp())
    assert token.claims["exp"] == int(now.timestamp()) + 120


def test_a_stored_signing_key_is_reused(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "keys" / "wms.json"
    first = load_or_create_signing_key(path)
    assert load_or_create_signing_key(path).kid == first.kid
    assert path.stat().st_mode & 0o077 == 0


async def test_healthz_is_ok(wms: httpx.AsyncClient) -> None:
    assert (await wms.get("/healthz")).json() == {"status": "ok"}
