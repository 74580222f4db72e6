"""Stopping background tasks (listeners, heartbeats, scheduled loops) on shutdown."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel each task (None: one never started) and wait until all have ended; how they end,
    cancelled or failed, is theirs to report, not the caller's."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
