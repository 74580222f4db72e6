"""In-memory twins for reports, the sales-line source, report files and order-mail reads.

Orders are read from ``store.table("orders")`` (``domain.orders.Order`` with its ``lines``) and
users from ``store.table("users")``, the same tables the other memory repositories keep.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from adapters.memory.store import MemoryStore, view_of
from application.ports.order_mail import MailLine, OrderForMail
from application.ports.reports import SalesLine
from domain.orders import Order
from domain.reports import Report, ReportStatus
from domain.users import User


class MemoryReportRepository:
    def __init__(self, store: MemoryStore) -> None:
        self.rows: dict[uuid.UUID, Report] = store.table("reports")

    async def add(self, report: Report) -> None:
        self.rows[report.id] = copy.copy(report)

    async def get(self, report_id: uuid.UUID) -> Report | None:
        report = self.rows.get(report_id)
        return copy.copy(report) if report else None

    async def update(self, report: Report) -> None:
        self.rows[report.id] = copy.copy(report)

    async def count_unfinished(self, owner_id: uuid.UUID) -> int:
        return sum(
            1
            for r in self.rows.values()
            if r.owner_id == owner_id and r.status in (ReportStatus.QUEUED, ReportStatus.RUNNING)
        )


class MemorySalesLineSource:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def sales_lines(
        self, seller_id: uuid.UUID, start: datetime, end: datetime, *, batch_size: int = 5000
    ) -> AsyncIterator[list[SalesLine]]:
        orders: list[Order] = sorted(self.store.table("orders").values(), key=lambda o: (o.created_at, o.id))
        lines = [
            SalesLine(
                order.id,
                order.created_at,
                line.product_id,
                line.name,
                line.unit_price,
                line.quantity,
                line.line_total,
                order.status.value,
            )
            for order in orders
            if start <= order.created_at < end
            for line in order.lines
            if line.seller_id == seller_id
        ]
        for index in range(0, len(lines), batch_size):
            yield lines[index : index + batch_size]


class MemoryReportStorage:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.saves = 0

    async def save(self, name: str, content: bytes) -> None:
        self.files[name] = content
        self.saves += 1

    async def exists(self, name: str) -> bool:
        return name in self.files

    async def read(self, name: str, *, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        content = self.files[name]
        for index in range(0, len(content), chunk_size):
            yield content[index : index + chunk_size]


class MemoryOrderMailQueries:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    async def order(self, order_id: uuid.UUID) -> OrderForMail | None:
        order: Order | None = self.store.table("orders").get(order_id)
        if order is None:
            return None
        buyer: User | None = self.store.table("users").get(order.buyer_id) if order.buyer_id else None
        if buyer is not None and buyer.deleted_at is not None:
            buyer = None
        return OrderForMail(
            id=order.id,
            status=order.status.value,
            total=order.total,
            created_at=order.created_at,
            buyer_email=buyer.email if buyer else None,
            buyer_username=buyer.username if buyer else None,
            lines=tuple(view_of(MailLine, line) for line in order.lines),
        )
