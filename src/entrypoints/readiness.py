"""``/ready``: the database, cache, queue and (with Redis) the job worker, checked concurrently on
connections of their own, never the request pool, so a stalled or exhausted pool cannot make
readiness hang or lie. Each check has ``CHECK_SECONDS``; the whole answer comes within
``READY_SECONDS``. A check that fails says how: ``down`` (an error), ``stalled`` (no answer in
time) or, for the worker, how long since one reported.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from adapters.jobs.heartbeat import WorkerHeartbeat
from adapters.sql.probe import DatabaseProbe

CHECK_SECONDS = 1.0
READY_SECONDS = 2.0


class WorkerSilent(RuntimeError):
    """No worker heartbeat recently enough."""


async def _check(probe: Callable[[], Awaitable[object]], timeout: float) -> str | None:
    """None when ``probe`` answered in time (and did not say False), else why not."""
    try:
        async with asyncio.timeout(timeout):
            answer = await probe()
    except TimeoutError:
        return f"stalled: no answer within {timeout:g} s"
    except WorkerSilent as error:
        return str(error)
    except Exception as error:
        return f"down: {type(error).__name__}"
    return "down: did not answer yes" if answer is False else None


class Readiness:
    def __init__(
        self,
        *,
        database_url: str,
        replica_url: str | None,
        redis_url: str | None,
        queue_key: str | None,
        key_prefix: str,
        worker_max_age: float,
        local_queue_ping: Callable[[], Awaitable[bool]] | None = None,
        timeout: float = CHECK_SECONDS,
    ) -> None:
        self.timeout = timeout
        self.probes = {"database": DatabaseProbe(database_url, timeout=timeout)}
        if replica_url:
            self.probes["replica"] = DatabaseProbe(replica_url, timeout=timeout)
        self.redis: Any = None
        self.heartbeat: WorkerHeartbeat | None = None
        self.queue_key = queue_key
        self.worker_max_age = worker_max_age
        self.local_queue_ping = local_queue_ping
        if redis_url:
            from redis.asyncio import Redis

            self.redis = Redis.from_url(
                redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, max_connections=8
            )
            self.heartbeat = WorkerHeartbeat(self.redis, prefix=key_prefix)

    async def _queue(self) -> bool:
        if self.redis is not None and self.queue_key is not None:
            await self.redis.llen(self.queue_key)  # the queue's own key answers
            return True
        return await self.local_queue_ping() if self.local_queue_ping is not None else True

    async def _worker(self) -> bool:
        age = await self.worker_age()
        if age is None:
            raise WorkerSilent("no worker has reported")
        if age > self.worker_max_age:
            raise WorkerSilent(f"no worker has reported for {age:.0f} s")
        return True

    async def worker_age(self) -> float | None:
        return await self.heartbeat.age() if self.heartbeat is not None else None

    async def check(self) -> dict[str, str | None]:
        """Check name → None (fine) or what is wrong, within ``READY_SECONDS``."""
        checks: dict[str, Callable[[], Awaitable[object]]] = dict(self.probes)
        checks["cache"] = self.redis.ping if self.redis is not None else _yes
        checks["queue"] = self._queue
        if self.heartbeat is not None and self.worker_max_age > 0:
            checks["worker"] = self._worker
        tasks = {name: asyncio.ensure_future(_check(probe, self.timeout)) for name, probe in checks.items()}
        # Each check has its own second; this is the backstop for an event loop too busy to keep time.
        done, pending = await asyncio.wait(tasks.values(), timeout=READY_SECONDS - 0.2)
        for task in pending:
            task.cancel()
        late = f"stalled: no answer within {READY_SECONDS - 0.2:g} s"
        return {name: task.result() if task in done else late for name, task in tasks.items()}

    async def queue_depth(self) -> float:
        """Jobs waiting in the queue, NaN when it does not answer (for /metrics)."""
        if self.redis is None or self.queue_key is None:
            return math.nan
        try:
            async with asyncio.timeout(self.timeout):
                return float(await self.redis.llen(self.queue_key))
        except Exception:
            return math.nan

    async def close(self) -> None:
        for probe in self.probes.values():
            await probe.close()
        if self.redis is not None:
            await self.redis.aclose()


async def _yes() -> bool:
    return True


__all__ = ["CHECK_SECONDS", "READY_SECONDS", "Readiness"]
