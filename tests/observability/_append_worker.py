"""A separate hub instance for the multi-process test: appends COUNT records concurrently.

Usage: python -m tests.observability._append_worker DATABASE_URL JWK_FILE COUNT LABEL START_AT
Waits until the epoch START_AT (so that both instances write at the same time), then appends in
waves of 20 concurrent requests, so that the instances' batches interleave.
Prints the number of acknowledged appends.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from observability.audit import AuditLog, LocalSigner
from tests.observability.conftest import event

_WAVE = 20


async def main(signer: LocalSigner, url: str, count: int, label: str, start_at: float) -> int:
    engine = create_async_engine(url)
    log = AuditLog(engine, signer, checkpoint_every=50, checkpoint_seconds=3600)
    await log.start()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    stored = 0
    try:
        for wave in range(0, count, _WAVE):
            done = await asyncio.gather(*(
                log.append(event(i, client_id=label)) for i in range(wave, min(wave + _WAVE, count))
            ))
            stored += len(done)
    finally:
        await log.close()
        await engine.dispose()
    return stored


if __name__ == "__main__":
    url, jwk_file, count, label, start_at = sys.argv[1:6]
    key = LocalSigner.from_jwk(json.loads(Path(jwk_file).read_text()))
    print(asyncio.run(main(key, url, int(count), label, float(start_at))))
