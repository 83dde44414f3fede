"""Process tuning for a serving hub worker (`hub serve`, the benchmark's workers).

After start-up a worker holds some 150,000 container objects that live as long as it does: the
modules, the GraphQL schema, pydantic and SQLAlchemy metadata. CPython's cyclic collector walks
all of them on every full (oldest-generation) collection, about 130 ms on the benchmark machine,
a pause that lands on whichever requests are in flight and shows in p99. `settle_heap` collects
once, then moves the survivors into the permanent generation (`gc.freeze`), so later full
collections walk only what requests allocated. The collector itself stays on: reference cycles
made while serving are still reclaimed.

Not called by `create_app`: the test suite opens many hubs in one process, and freezing there
would keep every earlier hub's garbage for good.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    """Collect, then freeze the start-up heap out of the collector's way (once per process)."""
    gc.collect()
    gc.freeze()
