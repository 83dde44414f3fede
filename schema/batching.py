"""Using the request's DataLoaders a page at a time, without a coroutine or callback per item.

`load` answers at once what the request has already loaded, and `then` goes on from a value
that may or may not be there yet: a resolver built from them is synchronous for every item
whose data its list field loaded beforehand (`schema.links`), which spares the executor a
coroutine, a future and a task per item. `load_all` and `settle_all` load a page of keys and
wait for them one at a time: a DataLoader settles a whole batch at once, so after the first
wait of a batch its other loads are done, and the page costs no callback per key beyond the
DataLoader's own (`load_many` adds one through `asyncio.gather`). Nothing here holds state:
whatever is loaded lives in the request's DataLoaders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from inspect import isawaitable
from typing import TypeVar, cast

from graphql.pyutils import AwaitableOrValue
from strawberry.dataloader import DataLoader

__all__ = ["load", "load_all", "settle_all", "then"]

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


def load(loader: DataLoader[K, V], key: K) -> AwaitableOrValue[V]:
    """`loader.load(key)`, or its value itself if this request has already loaded it.

    A load that failed raises its error here, as awaiting it would.
    """
    future = loader.cache_map.get(key) if loader.cache else None
    if future is not None and future.done() and not future.cancelled():
        value: V = future.result()
        return value
    return loader.load(key)


def then(
    value: AwaitableOrValue[V], use: Callable[[V], AwaitableOrValue[R]]
) -> AwaitableOrValue[R]:
    """`use(value)`: at once if `value` is there, else once it is (and awaited if need be)."""
    if isawaitable(value):
        return _then(value, use)
    return use(value)


async def _then(value: Awaitable[V], use: Callable[[V], AwaitableOrValue[R]]) -> R:
    result = use(await value)
    if isawaitable(result):
        return await result
    return result


async def load_all(loader: DataLoader[K, V], keys: Iterable[K]) -> list[V]:
    """`loader.load_many(keys)`: every key's value, in order; raises the first load's error."""
    ended = await settle_all(loader, keys)  # every error looked at, as `load_many` does
    failed = next((e for e in ended if isinstance(e, BaseException)), None)
    if failed is not None:
        raise failed
    return cast(list[V], ended)


async def settle_all(loader: DataLoader[K, V], keys: Iterable[K]) -> list[V | BaseException]:
    """Every key's value, or the error its load ended with (a cancelled load: CancelledError)."""
    ended: list[V | BaseException] = []
    for future in await _ended(loader, keys):
        if future.cancelled():
            ended.append(asyncio.CancelledError())
        elif (error := future.exception()) is not None:
            ended.append(error)
        else:
            ended.append(future.result())
    return ended


async def _ended(loader: DataLoader[K, V], keys: Iterable[K]) -> Sequence[asyncio.Future[V]]:
    futures = [asyncio.ensure_future(loader.load(key)) for key in keys]
    for future in futures:
        if not future.done():
            await asyncio.wait([future])
    return futures
