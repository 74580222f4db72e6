"""Cache-aside in one line per read: ``await cached(cache, key, ttl, loader, encode, decode)``.

Keys can live in a versioned namespace (``namespace="products"``): writes call
``cache.bump("products")`` and every older entry becomes unreachable at once, then expires by TTL.
Concurrent misses for the same key in one process share a single load (no stampede on a hot key
when it expires).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from application.ports.cache import Cache

log = logging.getLogger(__name__)
T = TypeVar("T")

# (event loop, cache, key) → the load in flight; a task belongs to one loop.
_inflight: dict[tuple[int, int, str], asyncio.Task[Any]] = {}


async def versioned_key(cache: Cache, namespace: str, key: str) -> str:
    return f"{namespace}:v{await cache.version(namespace)}:{key}"


async def cached(
    cache: Cache,
    key: str,
    ttl: float,
    loader: Callable[[], Awaitable[T]],
    encode: Callable[[T], bytes],
    decode: Callable[[bytes], T],
    *,
    namespace: str | None = None,
) -> T:
    """Return the cached value for ``key``, or load it, store it for ``ttl`` seconds and return it.

    Errors from ``loader`` propagate and nothing is cached. A cached value that no longer decodes
    (a schema change) counts as a miss.
    """
    full_key = await versioned_key(cache, namespace, key) if namespace else key
    raw = await cache.get(full_key)
    if raw is not None:
        try:
            return decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, TypeError):
            log.warning("cached value for %s no longer decodes; reloading", full_key)
    flight = (id(asyncio.get_running_loop()), id(cache), full_key)
    task = _inflight.get(flight)
    if task is None:
        task = asyncio.ensure_future(_load_and_store(cache, full_key, ttl, loader, encode))
        _inflight[flight] = task
        task.add_done_callback(lambda done: _finished(flight, done))
    # shield: a caller that goes away (client disconnect) does not cancel the load others await.
    result: T = await asyncio.shield(task)
    return result


def _finished(flight: tuple[int, int, str], task: asyncio.Task[Any]) -> None:
    _inflight.pop(flight, None)
    if not task.cancelled():
        task.exception()  # retrieved here too, so a load nobody awaits any more logs no warning


async def _load_and_store(
    cache: Cache, key: str, ttl: float, loader: Callable[[], Awaitable[T]], encode: Callable[[T], bytes]
) -> T:
    value = await loader()
    await cache.set(key, encode(value), ttl)
    return value


def struct_codec(kind: type[T]) -> tuple[Callable[[T], bytes], Callable[[bytes], T]]:
    """msgspec JSON encode/decode for a Struct (or any msgspec-typed value) to pass to ``cached``."""
    encoder = msgspec.json.Encoder()
    decoder = msgspec.json.Decoder(kind)

    def decode(raw: bytes) -> T:
        value: T = decoder.decode(raw)
        return value

    return encoder.encode, decode
