"""Per-test SAQ queues on the shared Redis: unique names, removed afterwards."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from tests.conftest import REDIS_URL


def queue_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def clear_queue(name: str) -> None:
    """Delete every key SAQ keeps for queue ``name`` (jobs, cron entries, stats)."""
    client = Redis.from_url(REDIS_URL)
    try:
        for pattern in (f"saq:{name}:*", f"saq:job:{name}:*"):
            keys = [key async for key in client.scan_iter(match=pattern)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
