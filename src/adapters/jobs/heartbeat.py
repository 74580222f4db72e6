"""The job worker's heartbeat in Redis: each worker stamps it every few seconds while its event loop
turns; ``/ready`` and ``/metrics`` read its age. One key for all workers (the freshest stamp wins):
readiness asks whether *a* worker is taking jobs, not which one."""

from __future__ import annotations

import time
from typing import Any

HEARTBEAT_TTL_SECONDS = 24 * 3600


class WorkerHeartbeat:
    def __init__(self, client: Any, *, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}worker:heartbeat"

    async def beat(self, now: float | None = None) -> None:
        stamp = time.time() if now is None else now
        await self.client.set(self.key, f"{stamp:.3f}", ex=HEARTBEAT_TTL_SECONDS)

    async def age(self, now: float | None = None) -> float | None:
        """Seconds since the last beat of any worker (hosts' clocks), or None when none ever beat."""
        value = await self.client.get(self.key)
        if value is None:
            return None
        return max(0.0, (time.time() if now is None else now) - float(value))
