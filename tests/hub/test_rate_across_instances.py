"""Two hub instances on one Redis: a client over its rate on one is refused on the other once
the counters have synced (each instance counts in its own process: `infra.counters`).

The instances are two hub apps served over HTTP in this process, on one hub database and one
Redis prefix (the shared Redis of HUB_TEST_REDIS_URL, or a private redis-server without it).
The test waits for syncs by counting them, never for a time.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from infra.counters import Counters, RateLimit
from tests.conftest import Simulators, _drop_prefix
from tests.hub.test_events import LiveHub, _live_hub
from tests.services import REDIS_URL, private_redis

CLIENT = "exit-entry-wuhan"
STATUS = "query Status($n: ID!) { permit(number: $n) { number status } }"


async def _synced(*counters: Counters) -> None:
    """Until each has made two more syncs, so one begun after this call was made."""
    targets = [c.syncs + 2 for c in counters]
    async with asyncio.timeout(30):
        # The counters offer a count of their syncs, not an event to wait on.
        pending = list(zip(counters, targets, strict=True))
        while any(c.syncs < t for c, t in pending):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _ask(live: LiveHub, token: str, number: str) -> httpx.Response:
    return await live.http.post(
        live.url + "/graphql",
        json={"query": STATUS, "variables": {"n": number}},
        headers={"authorization": f"Bearer {token}", "x-purpose-of-use": "residence-permit-check"},
    )


async def test_a_client_over_its_rate_on_one_instance_is_refused_on_the_other_after_a_sync(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    number = sorted(simulators.dataset.permits)[0]
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with AsyncExitStack() as stack:
        redis_url = REDIS_URL if REDIS_URL else await stack.enter_async_context(private_redis())
        stack.push_async_callback(_drop_prefix, prefix)
        first = await stack.enter_async_context(
            _live_hub(simulators, database_url, tmp_path / "a", prefix, redis_url=redis_url)
        )
        second = await stack.enter_async_context(  # same database: same clients, same keys
            _live_hub(simulators, database_url, tmp_path / "b", prefix, first.secrets,
                      redis_url=redis_url)
        )
        for live in (first, second):  # one window for the whole test
            live.hub.rate_limit = RateLimit(live.hub.counters, 3, clock=lambda: 605.0)
        token = await first.token(CLIENT)

        assert (await _ask(second, token, number)).status_code == 200
        on_first = [(await _ask(first, token, number)).status_code for _ in range(4)]
        assert on_first[0] == 200 and on_first[-1] == 429
        await _synced(first.hub.counters)  # the first's counts are in Redis
        await _synced(second.hub.counters)  # and the second has read them back
        refused = await _ask(second, token, number)

    assert refused.status_code == 429
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == 55
    assert refused.headers["retry-after"] == "55"
