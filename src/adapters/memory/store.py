"""In-memory twin of the database: plain dicts, serializable transactions by snapshot."""

from __future__ import annotations

import asyncio
import copy
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MemoryStore:
    """Tables as dicts keyed by id. Units of work run one at a time and roll back by snapshot."""

    tables: dict[str, dict[Any, Any]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def table(self, name: str) -> dict[Any, Any]:
        return self.tables.setdefault(name, {})

    def snapshot(self) -> dict[str, dict[Any, Any]]:
        return copy.deepcopy(self.tables)

    def restore(self, snapshot: dict[str, dict[Any, Any]]) -> None:
        self.tables.clear()
        self.tables.update(snapshot)


def new_uuid() -> uuid.UUID:
    from domain.ids import new_id

    return new_id()
