"""X-Purpose-Of-Use: required, one of the client's registered purposes (a refusal lists them)."""

from __future__ import annotations

from tests.auth.conftest import Agency, Hub


async def test_a_registered_purpose_is_accepted(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    response = await hub.call(token, purpose=" investigation ")
    assert response.status_code == 200
    assert response.json()["purpose"] == "investigation"


async def test_missing_or_unregistered_purpose_is_purpose_required(
    hub: Hub, exit_entry: Agency
) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    for purpose in (None, "", "   ", "enrollment", "<script>"):
        response = await hub.call(token, purpose=purpose)
        assert response.status_code == 403
        assert response.json()["code"] == "PURPOSE_REQUIRED"
        assert "<script>" not in response.text
        # What it may use instead: its own registration, never the value it sent.
        description = response.json()["description"]
        assert description.endswith(
            "client exit-entry-wuhan may use: investigation, residence-permit"
        )
        assert purpose is None or not purpose.strip() or purpose not in description
