"""The hub's address opened in a browser says where to go next, and every link it gives works."""

from __future__ import annotations

import re

from tests.conftest import HubClient


async def test_the_root_page_links_only_to_routes_that_answer(hub: HubClient) -> None:
    page = await hub.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = re.findall(r'href="([^"]+)"', page.text)
    assert "/graphql" in links and "/.well-known/jwks.json" in links
    assert not [link for link in links if not link.startswith("/")]  # nothing from elsewhere
    for link in links:
        answered = await hub.http.get(link, headers={"accept": "text/html"})
        assert answered.status_code in (200, 503), link  # 503: readiness may say "unready"


async def test_the_root_answers_json_to_a_program(hub: HubClient) -> None:
    index = await hub.http.get("/", headers={"accept": "application/json"})
    assert index.json()["graphql"] == "/graphql"
