"""Key-value store on Redis (redis-py asyncio), shared by every API process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from application.ports.errors import Unavailable


@contextmanager
def _outages_as_unavailable() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        raise Unavailable("key-value store", type(error).__name__) from error


class RedisKeyValueStore:
    def __init__(self, client: Redis, *, prefix: str = "mkt:") -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> bytes | None:
        with _outages_as_unavailable():
            value = await self.client.get(self.prefix + key)
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with _outages_as_unavailable():
            await self.client.set(self.prefix + key, value, ex=max(1, ttl_seconds))

    async def delete(self, key: str) -> None:
        with _outages_as_unavailable():
            await self.client.delete(self.prefix + key)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        full = self.prefix + key
        with _outages_as_unavailable():
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(full)
                pipe.expire(full, max(1, ttl_seconds), nx=True)
                value, _ = await pipe.execute()
        return int(value)

    async def ttl(self, key: str) -> int:
        with _outages_as_unavailable():
            return max(0, int(await self.client.ttl(self.prefix + key)))
