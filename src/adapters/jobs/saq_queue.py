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
import copy
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from saq import Job
from saq.queue.redis import RedisQueue

from adapters.circuit import CircuitBreaker
from application.jobs import JobPolicy, job_policy
from application.ports.errors import Unavailable
from application.ports.jobs import QueuedJob

# How long SAQ keeps a finished job's record (seconds): long enough to inspect, then gone.
JOB_RECORD_TTL = 24 * 3600
# How job records are written and read on both sides: the same JSON as SAQ's default
# (``json.dumps``/``json.loads``, which can read these records and the other way round), made
# several times faster by msgspec, as every write with jobs serialises them on the request path.
JOB_CODEC: dict[str, Any] = {"dump": msgspec.json.encode, "load": msgspec.json.decode}


class PipelinedRedisQueue(RedisQueue):
    """SAQ's Redis queue that can enqueue several jobs in one round trip.

    SAQ enqueues a job with one script call on ``self.redis``; ``enqueue_all`` runs SAQ's own
    ``enqueue`` for each job on a view of this queue whose client is a pipeline, then sends the
    pipeline once. SAQ still builds, checks and serialises every job; only the round trips go.
    """

    _script_loaded = False  # once Redis has the enqueue script, a batch skips asking for it

    async def enqueue_all(self, jobs: Sequence[Job]) -> None:
        if len(jobs) == 1:
            await self.enqueue(jobs[0])
            return
        for _attempt in range(2):
            async with self.redis.pipeline(transaction=False) as pipe:
                view = copy.copy(self)
                view.redis = pipe
                for job in jobs:
                    await view.enqueue(job)
                self._enqueue_script = self._enqueue_script or view._enqueue_script
                if self._script_loaded:
                    pipe.scripts.clear()  # no SCRIPT EXISTS round trip
                outcomes = await pipe.execute(raise_on_error=False)
            if self._script_loaded and any(isinstance(o, NoScriptError) for o in outcomes):
                self._script_loaded = False  # Redis restarted and forgot it: send it with the batch
                continue
            if failed := next((o for o in outcomes if isinstance(o, Exception)), None):
                raise failed
            self._script_loaded = True
            return


def api_redis_queue(url: str, name: str, *, socket_timeout: float = 0.5) -> PipelinedRedisQueue:
    client = Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)
    return PipelinedRedisQueue(client, name=name, **JOB_CODEC)


def worker_redis_queue(url: str, name: str, *, dequeue_timeout: float) -> RedisQueue:
    client = Redis.from_url(
        url,
        socket_timeout=dequeue_timeout + 10,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return RedisQueue(client, name=name, **JOB_CODEC)


class SaqJobQueue:
    def __init__(
        self,
        queue: PipelinedRedisQueue,
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
        await self.enqueue_many([QueuedJob(kind, payload, key)])

    async def enqueue_many(self, jobs: Sequence[QueuedJob]) -> None:
        if not self.breaker.allows_call():
            raise Unavailable("job queue", "it failed moments ago; not retrying yet")
        try:
            async with asyncio.timeout(self.enqueue_timeout):
                await self.queue.enqueue_all([self.job(kind, payload, key=key) for kind, payload, key in jobs])
        except Exception as error:
            self.breaker.failed()
            kinds = ", ".join(sorted({job.kind for job in jobs}))
            raise Unavailable("job queue", f"could not enqueue {kinds}: {type(error).__name__}") from error
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
