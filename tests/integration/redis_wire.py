"""Counting what a Redis client sends: each request (a command or a whole pipeline) is one write."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection


def count_redis_requests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, every request any client in this process sends appends to the returned list
    (``monkeypatch.undo()`` stops the counting)."""
    sent: list[int] = []
    send = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent.append(1)
        await send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return sent
