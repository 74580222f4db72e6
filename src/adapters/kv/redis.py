"""Key-value store on Redis (redis-py asyncio), shared by every API process."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisKeyValueStore:
    def __init__(self, client: Redis, *, prefix: str = "mkt:") -> None:
        self.client = client
        self.prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.prefix + key)
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self.client.set(self.prefix + key, value, ex=max(1, ttl_seconds))

    async def delete(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        full = self.prefix + key
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(full)
            pipe.expire(full, max(1, ttl_seconds), nx=True)
            value, _ = await pipe.execute()
        return int(value)

    async def ttl(self, key: str) -> int:
        return max(0, int(await self.client.ttl(self.prefix + key)))
