"""A seller's order lines for the sales report, streamed in batches (server-side cursor)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import select

from adapters.sql.database import Database
from adapters.sql.tables import OrderLineRow, OrderRow, table_of
from application.ports.reports import SalesLine

OR = table_of(OrderRow)
OL = table_of(OrderLineRow)


class SqlSalesLineSource:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def sales_lines(
        self, seller_id: uuid.UUID, start: datetime, end: datetime, *, batch_size: int = 5000
    ) -> AsyncIterator[list[SalesLine]]:
        # ix_order_lines_seller_newest (seller_id, created_at, id) serves the filter and the order.
        query = (
            select(
                OL.c.order_id,
                OL.c.created_at,
                OL.c.product_id,
                OL.c.name,
                OL.c.unit_price,
                OL.c.quantity,
                OL.c.line_total,
                OR.c.status,
            )
            .join(OR, OR.c.id == OL.c.order_id)
            .where(OL.c.seller_id == seller_id, OL.c.created_at >= start, OL.c.created_at < end)
            .order_by(OL.c.created_at, OL.c.id)
        )
        async with self.db.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=batch_size))
            async for partition in result.partitions(batch_size):
                yield [SalesLine(*row) for row in partition]
