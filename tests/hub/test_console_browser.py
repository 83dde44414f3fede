"""The auditor's console in a real headless browser (the system Chromium, driven by Playwright).

A real hub over HTTP on 127.0.0.1: sign in, filter, page, open a subject's timeline, verify the
chain; every request the pages made stays on the hub, no page logs an error (a script or style
the Content-Security-Policy blocked would), and the run leaves a screenshot.

Under CI (CI=true) a missing Chromium or Playwright fails the test: the CI machine has both.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.async_api import ConsoleMessage

from connectors.identifiers import make_permit_number
from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import seed_demo_clients
from tests.conftest import Simulators, _drop_prefix, hub_settings
from tests.simulators.servers import serve

PERMIT_QUERY = "query($n: ID!) { permit(number: $n) { status } }"
_CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def _chromium() -> str:
    found = next((p for p in _CHROMIUM_PATHS if os.access(p, os.X_OK)), None)
    found = found or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser test: install Debian's chromium")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    return found


async def test_the_console_in_a_real_browser(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    executable = _chromium()
    if os.environ.get("CI") == "true":
        from playwright.async_api import async_playwright
    else:
        playwright_api = pytest.importorskip("playwright.async_api")
        async_playwright = playwright_api.async_playwright
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    secrets: dict[str, str] = {}

    async def seed(hub: Hub) -> None:
        for client in await seed_demo_clients(hub.auth):
            secrets[str(client["client_id"])] = str(client["client_secret"])

    app = create_app(hub_settings(simulators, database_url, tmp_path, prefix), on_ready=seed)
    await simulators.reset()
    try:
        async with serve(app, lifespan="on") as base:
            asked = await _make_records(base, secrets["exit-entry-wuhan"])
            requested: list[str] = []
            errors: list[str] = []
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=executable)
                page = await browser.new_page()
                page.on("request", lambda request: requested.append(request.url))

                def console_error(message: ConsoleMessage) -> None:
                    if message.type == "error":  # e.g. a resource the CSP or a 404 refused
                        errors.append(f"{message.text} {message.location}")

                page.on("console", console_error)
                page.on("pageerror", lambda error: errors.append(str(error)))

                await page.goto(f"{base}/audit/")
                assert page.url == f"{base}/audit/sign-in"
                await page.fill("#client_id", "auditor-hubei")
                await page.fill("#client_secret", secrets["auditor-hubei"])
                await page.click("#sign-in")
                await page.wait_for_url(f"{base}/audit/log")
                assert "auditor-hubei" in await page.inner_text("header")

                await page.fill("input[name=client_id]", "exit-entry-wuhan")
                await page.select_option("select[name=first]", "25")
                await page.click("#apply")
                await page.wait_for_url("**/audit/log?view=*")
                clients = await page.locator("#records tbody tr td:nth-child(4)").all_inner_texts()
                assert len(clients) == 25
                assert set(clients) == {"exit-entry-wuhan"}
                first_seqs = await page.locator("#records td.seq").all_inner_texts()

                await page.click("#next")
                await page.wait_for_url("**after=*")
                next_seqs = await page.locator("#records td.seq").all_inner_texts()
                assert next_seqs
                assert min(map(int, first_seqs)) > max(map(int, next_seqs))

                opened = page.locator("#records button.link").first
                subject = await opened.inner_text()
                assert subject in asked
                await opened.click()
                await page.wait_for_url("**/audit/timeline?view=*")
                assert await page.inner_text("#subject") == subject
                assert await page.locator("#chart rect.bar").count() >= 1
                assert "Wuhan Exit-Entry Administration" in await page.inner_text("#legend")
                timeline_shot = tmp_path / "audit-console-timeline.png"
                await page.screenshot(path=str(timeline_shot), full_page=True)
                print(f"console timeline screenshot: {timeline_shot}")

                await page.click("text=Chain")
                await page.click("#verify")
                # The status page refreshes itself (meta refresh) until the run is over.
                await page.wait_for_selector("#verdict", timeout=60_000)
                assert "ok: the chain is intact" in await page.inner_text("#verdict")

                shot = tmp_path / "audit-console.png"
                await page.screenshot(path=str(shot), full_page=True)
                print(f"console screenshot: {shot}")
                await page.click("#sign-out")
                await page.wait_for_url(f"{base}/audit/sign-in")
                await browser.close()
            assert shot.stat().st_size > 0
            assert requested
            assert {urlsplit(url).hostname for url in requested} == {"127.0.0.1"}
            assert errors == []
    finally:
        await _drop_prefix(prefix)


async def _make_records(base: str, secret: str) -> list[str]:
    """30 validity requests by one agency; returns the permit numbers asked about."""
    async with httpx.AsyncClient(base_url=base) as http:
        token = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                auth=("exit-entry-wuhan", secret))
        headers = {"authorization": f"Bearer {token.json()['access_token']}",
                   "x-purpose-of-use": "residence-permit-check"}
        numbers = [make_permit_number("420100", 2024, 500 + i) for i in range(30)]
        for number in numbers:
            response = await http.post("/graphql", headers=headers,
                                       json={"query": PERMIT_QUERY, "variables": {"n": number}})
            assert response.status_code == 200, response.text
    return numbers
