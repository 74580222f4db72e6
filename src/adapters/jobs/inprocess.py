"""Runs jobs as asyncio tasks in this process: the embedded default's job queue.

Retries with exponential backoff; jobs are idempotent, so a retry after a partial failure is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from application.ports.jobs import QueuedJob

log = logging.getLogger(__name__)
JobHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]


class InProcessJobQueue:
    def __init__(self, handler: JobHandler | None = None, *, retries: int = 3, backoff: float = 0.5) -> None:
        self.handler = handler
        self.retries = retries
        self.backoff = backoff
        self._running: dict[str, asyncio.Task[None]] = {}

    async def enqueue(self, kind: str, payload: dict[str, Any], *, key: str) -> None:
        if self.handler is None or key in self._running:
            return
        task = asyncio.create_task(self._run(kind, payload), name=key)
        self._running[key] = task
        task.add_done_callback(lambda _t: self._running.pop(key, None))

    async def enqueue_many(self, jobs: Sequence[QueuedJob]) -> None:
        for kind, payload, key in jobs:
            await self.enqueue(kind, payload, key=key)

    async def _run(self, kind: str, payload: dict[str, Any]) -> None:
        assert self.handler is not None
        for attempt in range(self.retries + 1):
            try:
                await self.handler(kind, payload)
                return
            except Exception:
                log.exception("job %s failed (attempt %d)", kind, attempt + 1)
                await asyncio.sleep(self.backoff * 2**attempt)

    async def ping(self) -> bool:
        return True

    async def depth(self) -> int:
        """Jobs running or waiting for a retry in this process (for metrics)."""
        return len(self._running)

    async def drain(self, timeout: float = 10) -> None:
        """Wait for running jobs (tests and shutdown)."""
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=timeout)
