"""The auditor's console (`/audit/`) over HTTP: sign-in, CSRF, filters, paging, timeline, chain,
evidence, and that every page view is itself audited."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from connectors.identifiers import make_permit_number
from observability.audit import AuditEvent, AuditFilter, AuditRecord
from observability.audit._tables import records
from tests.conftest import HubClient, Simulators, open_hub

AUDITOR = "auditor-hubei"
PERMIT_QUERY = "query($n: ID!) { permit(number: $n) { status } }"
PAGES = ["/audit/log", "/audit/timeline", "/audit/chain", "/audit/evidence", "/audit/"]
POSTS = ["/audit/log", "/audit/timeline", "/audit/chain/verify", "/audit/evidence",
         "/audit/sign-out"]
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


async def _sign_in(hub: HubClient, client_id: str, secret: str | None = None) -> httpx.Response:
    form = await hub.http.get("/audit/sign-in")
    assert form.status_code == 200
    return await hub.http.post("/audit/sign-in", data={
        "csrf": _csrf(form.text), "client_id": client_id,
        "client_secret": hub.secrets[client_id] if secret is None else secret,
    })


async def _signed_in(hub: HubClient) -> str:
    """Signs the auditor in; returns the session's CSRF token."""
    response = await _sign_in(hub, AUDITOR)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/audit/log"
    page = await hub.http.get("/audit/log")
    assert page.status_code == 200
    return _csrf(page.text)


async def _records(hub: HubClient, where: AuditFilter, first: int = 200) -> list[AuditRecord]:
    page = await hub.hub.audit.search(where, first, None, subject_view=False,
                                      today=dt.date.today())
    return list(page.records)


def _seqs(html: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'<td class="seq">(\d+)</td>', html)]


async def _filtered(hub: HubClient, csrf: str, **fields: str) -> httpx.Response:
    chosen = await hub.http.post("/audit/log", data={"csrf": csrf, **fields})
    assert chosen.status_code == 303, chosen.text
    assert "view=" in chosen.headers["location"]
    return await hub.http.get(chosen.headers["location"])


async def test_nothing_is_reachable_without_signing_in(hub: HubClient) -> None:
    await hub.graphql("exit-entry-wuhan", PERMIT_QUERY,
                      {"n": make_permit_number("420100", 2024, 1)})
    hub.http.cookies.set("hub_console", "x" * 43, domain="127.0.0.1", path="/audit/")
    for path in PAGES:
        response = await hub.http.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/audit/sign-in"
        assert "exit-entry-wuhan" not in response.text
    for path in POSTS:
        response = await hub.http.post(path, data={"csrf": "x"})
        assert response.status_code == 403, path
        assert "Sign in first" in response.text
    sign_in = await hub.http.get("/audit/sign-in")
    assert sign_in.headers["content-security-policy"].startswith("default-src 'self'")
    assert sign_in.headers["x-frame-options"] == "DENY"
    assert sign_in.headers["cache-control"] == "no-store"


async def test_the_auditor_signs_in_with_a_session_cookie_and_never_sees_the_token(
    hub: HubClient,
) -> None:
    response = await _sign_in(hub, AUDITOR)
    assert response.status_code == 303
    cookie = next(v for k, v in response.headers.multi_items()
                  if k == "set-cookie" and v.startswith("hub_console="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/audit/" in cookie
    page = await hub.http.get("/audit/log")
    assert page.status_code == 200
    assert "auditor-hubei" in page.text
    assert hub.secrets[AUDITOR] not in page.text
    assert "eyJ" not in page.text  # no JWT in the page
    issued = await _records(hub, AuditFilter(client_id=AUDITOR, operation="token_issued"))
    assert issued, "the sign-in's token is audited as the token endpoint's are"


async def test_a_client_without_audit_read_cannot_sign_in_and_is_audited(hub: HubClient) -> None:
    response = await _sign_in(hub, "exit-entry-wuhan")
    assert response.status_code == 401
    assert "lacks audit:read" in response.text
    assert "hub_console=" not in response.headers.get("set-cookie", "")
    assert (await hub.http.get("/audit/log")).status_code == 303
    refused = await _records(hub, AuditFilter(client_id="exit-entry-wuhan",
                                              operation="token_refused"))
    assert [r.error_codes for r in refused] == [("invalid_scope",)]


async def test_a_wrong_secret_is_refused_and_audited(hub: HubClient) -> None:
    response = await _sign_in(hub, AUDITOR, secret="not-the-secret")
    assert response.status_code == 401
    assert "wrong secret" in response.text
    assert (await hub.http.get("/audit/log")).status_code == 303
    refused = await _records(hub, AuditFilter(client_id=AUDITOR, operation="token_refused"))
    assert [(r.outcome, r.error_codes) for r in refused] == [("DENIED", ("invalid_client",))]


async def test_posts_without_the_csrf_token_or_from_another_origin_are_refused(
    hub: HubClient,
) -> None:
    csrf = await _signed_in(hub)
    assert (await hub.http.post("/audit/chain/verify", data={"x": "1"})).status_code == 403
    wrong = await hub.http.post("/audit/chain/verify", data={"csrf": csrf + "x"})
    assert wrong.status_code == 403
    foreign = await hub.http.post("/audit/chain/verify", data={"csrf": csrf},
                                  headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    cross_site = await hub.http.post("/audit/log", data={"csrf": csrf},
                                     headers={"sec-fetch-site": "cross-site"})
    assert cross_site.status_code == 403
    denied = await _records(hub, AuditFilter(client_id=AUDITOR, outcome="DENIED"))
    assert sum(1 for r in denied if r.error_codes == ("CSRF",)) == 4
    assert (await hub.http.get("/audit/chain")).text.count("Not verified from the console") == 1
    # The sign-in form is CSRF-checked too (double submit): a post without its cookie fails.
    hub.http.cookies.clear()
    blind = await hub.http.post("/audit/sign-in", data={
        "csrf": "guess", "client_id": AUDITOR, "client_secret": hub.secrets[AUDITOR]})
    assert blind.status_code == 403
    assert "hub_console=" not in blind.headers.get("set-cookie", "")


async def test_filters_and_paging_over_real_requests(hub: HubClient) -> None:
    permits = [make_permit_number("420100", 2024, 100 + i) for i in range(30)]
    for number in permits:
        response = await hub.graphql("exit-entry-wuhan", PERMIT_QUERY, {"n": number})
        assert response.status_code == 200
    await hub.graphql("si-agency-wuhan", PERMIT_QUERY, {"n": permits[0]})
    csrf = await _signed_in(hub)
    mine = [r for r in await _records(hub, AuditFilter(client_id="exit-entry-wuhan"))
            if r.kind == "graphql"]
    assert len(mine) == 30

    first = await _filtered(hub, csrf, client_id="exit-entry-wuhan", outcome="OK", first="25")
    assert first.status_code == 200
    page_one = _seqs(first.text)
    assert len(page_one) == 25
    assert "si-agency-wuhan" not in first.text.split("<table")[1]
    following = re.search(r'href="(/audit/log\?view=[^"]+after=[^"]+)" id="next"', first.text)
    assert following is not None
    second = await hub.http.get(following.group(1).replace("&amp;", "&"))
    page_two = _seqs(second.text)
    assert 'id="next"' not in second.text
    on_pages = set(page_one) | set(page_two)
    assert len(page_one) + len(page_two) == len(on_pages)  # no record twice
    assert {r.seq for r in mine} <= on_pages
    assert page_one == sorted(page_one, reverse=True)  # newest first

    accesses = await _records(hub, AuditFilter(subject=permits[0]))
    assert len(accesses) == 2
    by_subject = await _filtered(hub, csrf, subject=permits[0])
    assert _seqs(by_subject.text) == [r.seq for r in accesses]
    assert "si-agency-wuhan" in by_subject.text and "exit-entry-wuhan" in by_subject.text
    # No identity number in any URL the console made (access logs, history, Referer).
    assert permits[0] not in by_subject.url.query.decode()

    trace = mine[0].trace_id
    assert trace is not None
    traced = await _records(hub, AuditFilter(trace_id=trace), 25)
    by_trace = await _filtered(hub, csrf, trace_id=trace)
    assert _seqs(by_trace.text) == [r.seq for r in traced]
    assert set(re.findall(r'<td class="trace">([^<]*)<', by_trace.text)) == {trace}

    future = await _filtered(hub, csrf, **{"from": "2999-01-01T00:00"})
    assert _seqs(future.text) == []
    assert 'id="empty"' in future.text

    bad = await hub.http.post("/audit/log", data={"csrf": csrf, "subject": "not-an-id"})
    assert bad.status_code == 400
    assert "subject: expected a permit number" in bad.text


async def test_recorded_strings_render_inert(hub: HubClient) -> None:
    """Audit records hold strings a caller chose (a refused client id, an operation name)."""
    script = "<script>alert(1)</script>"
    await hub.http.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": script, "client_secret": "x"})
    await hub.http.post("/graphql", json={"query": "{ __typename }", "operationName": script})
    csrf = await _signed_in(hub)
    page = await _filtered(hub, csrf, first="100")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script" not in page.text
    assert "script-src 'none'" in page.headers["content-security-policy"]


async def test_a_disabled_clients_session_dies(hub: HubClient) -> None:
    await _signed_in(hub)
    await hub.hub.auth.disable_client(AUDITOR)
    response = await hub.http.get("/audit/log")
    assert response.status_code == 303
    assert response.headers["location"] == "/audit/sign-in"
    await hub.hub.auth.enable_client(AUDITOR)
    assert (await hub.http.get("/audit/log")).status_code == 303  # the session stays ended


async def test_signing_out_ends_the_session(hub: HubClient) -> None:
    csrf = await _signed_in(hub)
    session = hub.http.cookies.get("hub_console")
    out = await hub.http.post("/audit/sign-out", data={"csrf": csrf})
    assert out.status_code == 303
    hub.http.cookies.set("hub_console", str(session), domain="127.0.0.1", path="/audit/")
    assert (await hub.http.get("/audit/log")).status_code == 303


async def test_every_page_view_is_audited_with_its_subject(hub: HubClient) -> None:
    subject = make_permit_number("420100", 2024, 777)
    await hub.graphql("exit-entry-wuhan", PERMIT_QUERY, {"n": subject})
    csrf = await _signed_in(hub)
    await _filtered(hub, csrf, subject=subject)
    await hub.http.get("/audit/chain")
    await hub.http.get("/audit/evidence")
    views = await _records(hub, AuditFilter(client_id=AUDITOR))
    pages = [(r.kind, r.operation, r.subjects) for r in views if r.kind == "audit_read"]
    assert ("audit_read", "console log", (subject,)) in pages
    assert ("audit_read", "console chain", ()) in pages
    assert ("audit_read", "console evidence", ()) in pages
    assert ("audit_read", "console sign-in", ()) in pages
    assert all(r.agency == "Hubei Audit Office" for r in views if r.kind == "audit_read")


async def test_a_subjects_timeline_is_an_svg_of_accesses_per_day_by_agency(
    hub: HubClient,
) -> None:
    subject = make_permit_number("420100", 2024, 4242)
    for _ in range(3):
        await hub.graphql("exit-entry-wuhan", PERMIT_QUERY, {"n": subject})
    await hub.graphql("si-agency-wuhan", PERMIT_QUERY, {"n": subject})
    csrf = await _signed_in(hub)
    chosen = await hub.http.post("/audit/timeline",
                                 data={"csrf": csrf, "subject": subject, "days": "7"})
    assert chosen.status_code == 303
    page = await hub.http.get(chosen.headers["location"])
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="chart"' in page.text
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert f"<title>{today}: Wuhan Exit-Entry Administration: 3</title>" in page.text
    assert f"<title>{today}: Wuhan Social Insurance Agency: 1</title>" in page.text
    assert 'id="total">Accesses: 4<' in page.text
    assert subject not in page.url.query.decode()
    bad = await hub.http.post("/audit/timeline", data={"csrf": csrf, "subject": "<b>x</b>"})
    assert bad.status_code == 400
    assert "<b>x" not in bad.text


async def test_verify_now_runs_in_the_background_and_reports(hub: HubClient) -> None:
    for i in range(5):
        await hub.graphql("exit-entry-wuhan", PERMIT_QUERY,
                          {"n": make_permit_number("420100", 2024, 900 + i)})
    await hub.hub.audit.checkpoint()
    csrf = await _signed_in(hub)
    chain = await hub.http.get("/audit/chain")
    assert 'id="checkpoint"' in chain.text and "No checkpoint" not in chain.text
    started = await hub.http.post("/audit/chain/verify", data={"csrf": csrf})
    assert started.status_code == 303
    for _ in range(200):
        chain = await hub.http.get("/audit/chain")
        if 'http-equiv="refresh"' not in chain.text:
            break
    assert "ok: the chain is intact" in chain.text
    assert 'http-equiv="refresh"' not in chain.text
    checked = int(re.search(r"<dt>Records checked</dt><dd>(\d+)</dd>", chain.text)[1])  # type: ignore[index]
    assert checked >= 5


async def test_the_evidence_checker_verifies_a_response_and_says_why_not(
    hub: HubClient,
) -> None:
    response = await hub.graphql("exit-entry-wuhan", PERMIT_QUERY,
                                 {"n": make_permit_number("420100", 2024, 31)})
    evidence = response.headers["x-hub-evidence"]
    csrf = await _signed_in(hub)
    ok = await hub.http.post("/audit/evidence", data={
        "csrf": csrf, "evidence": evidence, "body": response.text})
    assert ok.status_code == 200
    assert f'<dd id="record-id">{response.headers["x-hub-audit-record"]}</dd>' in ok.text
    tampered = await hub.http.post("/audit/evidence", data={
        "csrf": csrf, "evidence": evidence, "body": response.text.replace("}", " }", 1)})
    assert "Not verified: the body differs from the one the hub signed" in tampered.text
    junk = await hub.http.post("/audit/evidence", data={
        "csrf": csrf, "evidence": "junk", "body": "{}"})
    assert "Not verified:" in junk.text


async def _verified(hub: HubClient, csrf: str) -> str:
    started = await hub.http.post("/audit/chain/verify", data={"csrf": csrf})
    assert started.status_code == 303
    for _ in range(500):  # the status page refreshes itself until the run is over
        chain = await hub.http.get("/audit/chain")
        if 'http-equiv="refresh"' not in chain.text:
            return chain.text
    raise AssertionError("the verification did not finish")


async def test_verification_in_ranges_finds_an_edit_in_a_later_range(hub: HubClient) -> None:
    """Over 400 records the run takes several ranges; each range starts from the hash the
    one before it verified, so an edit deep in the log is found at its seq."""
    for i in range(450):
        await hub.hub.audit.append(AuditEvent(
            time=dt.datetime.now(dt.UTC), kind="admin", outcome="OK", operation=f"filler {i}"))
    csrf = await _signed_in(hub)
    assert "ok: the chain is intact" in await _verified(hub, csrf)
    async with hub.hub.engine.begin() as conn:
        await conn.execute(update(records).where(records.c.seq == 333).values(purpose="curiosity"))
    page = await _verified(hub, csrf)
    assert "BROKEN at seq 333: contents do not match the record&#39;s hash" in page


@pytest.mark.parametrize("path", ["/audit/static/console.css", "/audit/static/favicon.svg"])
async def test_the_stylesheet_is_served_by_the_hub(hub: HubClient, path: str) -> None:
    response = await hub.http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in ("text/css", "image/svg+xml")


async def test_sign_in_failures_meet_the_token_endpoints_throttle(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with open_hub(simulators, database_url, tmp_path, auth_failures_per_minute=3) as hub:
        for _ in range(3):
            assert (await _sign_in(hub, AUDITOR, secret="wrong")).status_code == 401
        throttled = await _sign_in(hub, AUDITOR)  # the right secret, too late
        assert throttled.status_code == 429
        assert "Too many failed sign-ins" in throttled.text
        assert (await hub.http.get("/audit/log")).status_code == 303
        # The token endpoint counts the same failures: it refuses this client now too.
        token = await hub.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                    auth=(AUDITOR, hub.secrets[AUDITOR]))
        assert token.status_code == 429


async def test_with_the_shared_store_down_the_console_answers_503_and_shows_nothing(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """Sessions and the sign-in throttle live in the shared store: without it, no page."""
    async with open_hub(simulators, database_url, tmp_path,
                        redis_url="redis://127.0.0.1:1/0") as hub:
        # The secret is checked as the token endpoint checks it (which issues tokens without
        # the store), but the token's revocation status cannot be read: no session.
        refused = await _sign_in(hub, AUDITOR)
        assert refused.status_code == 503
        assert "cannot answer now" in refused.text
        assert "hub_console=" not in refused.headers.get("set-cookie", "")
        hub.http.cookies.set("hub_console", "x" * 43, domain="127.0.0.1", path="/audit/")
        page = await hub.http.get("/audit/log")
        assert page.status_code == 503
        assert page.headers["retry-after"]
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert "<table" not in page.text
