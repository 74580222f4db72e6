from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from domain.reports import Report


class ReportRepository(Protocol):
    async def add(self, report: Report) -> None: ...

    async def get(self, report_id: uuid.UUID) -> Report | None: ...

    async def update(self, report: Report) -> None: ...

    async def count_unfinished(self, owner_id: uuid.UUID) -> int:
        """Reports of ``owner_id`` still queued or running (a cap on work one user can queue)."""
        ...


class SalesLine(NamedTuple):
    """One order line of a seller's product, as the sales report lists it."""

    order_id: uuid.UUID
    created_at: datetime
    product_id: uuid.UUID
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal
    status: str


class SalesLineSource(Protocol):
    def sales_lines(
        self, seller_id: uuid.UUID, start: datetime, end: datetime, *, batch_size: int = 5000
    ) -> AsyncIterator[list[SalesLine]]:
        """The seller's order lines with ``start <= created_at < end``, oldest first, in batches."""
        ...


class ReportStorage(Protocol):
    """Where finished report files live (a directory, or object storage)."""

    async def save(self, name: str, content: bytes) -> None:
        """Write ``name`` atomically, replacing an earlier version (a retried job overwrites)."""
        ...

    async def exists(self, name: str) -> bool: ...

    def read(self, name: str, *, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """The file's bytes in chunks, so large reports stream instead of filling memory."""
        ...
