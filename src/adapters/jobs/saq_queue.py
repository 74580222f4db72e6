"""The job queue on SAQ's Redis broker.

Enqueueing uses a deterministic job ``key`` (``outbox:<id>``): while a job with that key is
queued, scheduled for a retry or running, SAQ ignores a second enqueue. Each kind gets its own
timeout and retry policy (``application.jobs.JOB_POLICIES``) with exponential backoff.

The API side talks to Redis with short socket timeouts and a hard deadline per enqueue, so a Redis
outage costs a request at most about a second; after a failure the queue reports itself
unavailable for a few seconds without trying, and the dispatcher leaves the outbox rows for the
relay. The worker side (``worker_redis_queue``) has to block in BLMOVE, so it gets longer timeouts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from saq import Job
from saq.queue.redis import RedisQueue

from adapters.circuit import CircuitBreaker
from application.jobs import JobPolicy, job_policy
from application.ports.errors import Unavailable

# How long SAQ keeps a finished job's record (seconds): long enough to inspect, then gone.
JOB_RECORD_TTL = 24 * 3600


def api_redis_queue(url: str, name: str, *, socket_timeout: float = 0.5) -> RedisQueue:
    client = Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)
    return RedisQueue(client, name=name)


def worker_redis_queue(url: str, name: str, *, dequeue_timeout: float) -> RedisQueue:
    client = Redis.from_url(
        url,
        socket_timeout=dequeue_timeout + 10,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return RedisQueue(client, name=name)


class SaqJobQueue:
    def __init__(
        self,
        queue: RedisQueue,
        *,
        enqueue_timeout: float = 1.0,
        pause_after_failure: float = 3.0,
        policy: Callable[[str], JobPolicy] = job_policy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.enqueue_timeout = enqueue_timeout
        self.policy = policy
        # Open for pause_after_failure after each failure: no doubling, the relay probes with ping().
        self.breaker = CircuitBreaker(min_backoff=pause_after_failure, max_backoff=pause_after_failure, clock=clock)

    @classmethod
    def from_url(cls, url: str, *, name: str, enqueue_timeout: float = 1.0, **kwargs: Any) -> SaqJobQueue:
        socket_timeout = min(0.5, enqueue_timeout)
        return cls(api_redis_queue(url, name, socket_timeout=socket_timeout), enqueue_timeout=enqueue_timeout, **kwargs)

    @property
    def name(self) -> str:
        return self.queue.name

    @property
    def depth_key(self) -> str:
        """The Redis list of jobs waiting to be picked up (readiness and metrics read its length)."""
        return self.queue.namespace("queued")

    def job(self, kind: str, payload: dict[str, Any], *, key: str) -> Job:
        policy = self.policy(kind)
        return Job(
            function=kind,
            kwargs={"payload": payload},
            key=key,
            timeout=policy.timeout_seconds,
            retries=policy.attempts,
            retry_delay=policy.retry_delay_seconds,
            retry_backoff=policy.max_retry_delay_seconds,
            ttl=JOB_RECORD_TTL,
        )

    async def enqueue(self, kind: str, payload: dict[str, Any], *, key: str) -> None:
        if not self.breaker.allows_call():
            raise Unavailable("job queue", "it failed moments ago; not retrying yet")
        try:
            async with asyncio.timeout(self.enqueue_timeout):
                await self.queue.enqueue(self.job(kind, payload, key=key))
        except Exception as error:
            self.breaker.failed()
            raise Unavailable("job queue", f"could not enqueue {kind}: {type(error).__name__}") from error
        self.breaker.succeeded()

    async def ping(self) -> bool:
        """Whether Redis answers; a yes also ends the pause after a failure (the relay, probing for
        Redis to return, enqueues at once)."""
        try:
            async with asyncio.timeout(self.enqueue_timeout):
                answered = bool(await cast("Awaitable[bool]", self.queue.redis.ping()))
        except Exception:
            return False
        if answered:
            self.breaker.succeeded()
        return answered

    async def depth(self) -> int:
        """Jobs waiting to be picked up (for metrics); -1 when Redis does not answer."""
        try:
            async with asyncio.timeout(self.enqueue_timeout):
                return await self.queue.count("queued")
        except Exception:
            return -1

    async def close(self) -> None:
        try:
            await self.queue.disconnect()
        except Exception:  # SAQ unsubscribes on close, which needs the very Redis that may be gone
            await self.queue.redis.connection_pool.disconnect()
