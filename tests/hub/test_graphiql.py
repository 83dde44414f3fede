"""GraphiQL offline: the hub serves the IDE's files itself, from files pinned by a lock, and the
page works in a real headless Chromium with no request leaving 127.0.0.1.

The browser is Debian's `chromium` driven by Playwright (no browser download). Without it the
browser test is skipped with the reason, except under CI=true, where it fails (CI installs it:
.ci/run).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hub.graphiql import CSP, FOLDER
from tests.conftest import HubClient, Simulators
from tests.hub.test_events import LiveHub, _own_live_hub

LOCK = json.loads((FOLDER / "lock.json").read_text())
CLIENT = "exit-entry-wuhan"
PURPOSE = "residence-permit-check"
# What the page's Content-Security-Policy blocked, collected from the page's first moment.
VIOLATIONS = """window.violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.violations.push(e.violatedDirective + " " + e.blockedURI));"""


def _sri(data: bytes, algorithm: str = "sha384") -> str:
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def test_the_committed_files_are_the_locked_ones() -> None:
    """Every vendored file has the sha384 the lock recorded from its registry tarball, whose
    own pin is the registry's sha512 `dist.integrity`."""
    seen = set()
    for name, package in LOCK["packages"].items():
        assert package["tarball"].startswith(f"https://registry.npmjs.org/{name}/-/")
        assert package["version"] in package["tarball"]
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", package["integrity"])
        for file in package["files"].values():
            assert _sri((FOLDER / file["as"]).read_bytes()) == file["sha384"], file["as"]
            seen.add(file["as"])
    own = {"hub-graphiql.js", "hub-graphiql.css", "lock.json"}
    assert {p.name for p in FOLDER.iterdir()} == seen | own  # nothing unlocked ships


async def test_the_page_names_only_the_hubs_own_files(hub: HubClient) -> None:
    page = await hub.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert "default-src 'self'" in CSP and "script-src 'self';" in CSP
    html = page.text
    assert "://" not in html  # no absolute URL at all: no CDN, no other host
    linked = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [u for u in linked if u != "data:,"]
    assert len(assets) == 6 and all(u.startswith("/graphiql/") for u in assets)
    integrity = dict(re.findall(r'(?:src|href)="(/graphiql/[^"]+)" integrity="([^"]+)"', html))
    assert integrity.keys() == set(assets)
    for url in assets:
        served = await hub.http.get(url)
        assert served.status_code == 200, url
        assert _sri(served.content) == integrity[url]
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-type"].startswith(("text/javascript", "text/css"))
        vendored = "hub-graphiql" not in url
        assert ("immutable" in served.headers["cache-control"]) is vendored
        again = await hub.http.get(url, headers={"if-none-match": served.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert (await hub.http.get("/graphiql/lock.json")).status_code == 404
    assert (await hub.http.get("/graphiql/..%2Fgraphiql.py")).status_code == 404


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "no chromium on this machine (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
async def live(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[LiveHub]:
    async with _own_live_hub(simulators, database_url, tmp_path) as hub:
        yield hub


async def _set_editor(page: object, selector: str, text: str) -> None:
    """Type into one of GraphiQL's editors as a user would: focus, select all, type."""
    from playwright.async_api import Page

    assert isinstance(page, Page)
    await page.locator(selector).first.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(text)  # as typed text, without the editor's auto-closing


async def test_graphiql_runs_a_query_in_chromium_with_nothing_leaving_loopback(
    live: LiveHub, simulators: Simulators
) -> None:
    executable = _chromium()
    playwright_api = pytest.importorskip("playwright.async_api")
    number = simulators.dataset.samples["valid_permit"]
    token = await live.token(CLIENT)
    hub_origin = urlsplit(live.url).netloc
    requested: list[str] = []
    problems: list[str] = []
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            await page.add_init_script(VIOLATIONS)
            await page.goto(live.url + "/graphql", wait_until="load")
            await page.locator(".graphiql-query-editor .CodeMirror").wait_for()
            headers = json.dumps({"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": PURPOSE})
            await _set_editor(page, ".graphiql-editor-tool .graphiql-editor:visible", headers)
            query = f'{{ permit(number: "{number}") {{ number status }} }}'
            await _set_editor(page, ".graphiql-query-editor .CodeMirror", query)
            await page.locator(".graphiql-execute-button").click()
            result = page.locator(".graphiql-response .CodeMirror-code")
            await playwright_api.expect(result).to_contain_text(f'"number": "{number}"')
            shown = await result.inner_text()
            violations = await page.evaluate("() => window.violations")
        finally:
            await browser.close()
    assert violations == []  # the page lives within its Content-Security-Policy
    assert '"status"' in shown and "errors" not in shown
    assert requested, "the page made no request"
    outside = [
        u for u in requested if urlsplit(u).netloc != hub_origin and not u.startswith("data:")
    ]
    assert outside == []
    assert [u for u in requested if urlsplit(u).path == "/graphql"]  # the page and the query
    # The introspection before the headers were set is refused (401): that is the only error.
    assert [p for p in problems if "401" not in p] == []
    audited = [r for r in await live.audit("graphql") if r.outcome == "OK"]
    assert audited and audited[-1].subjects  # the browser's query was audited like any other
