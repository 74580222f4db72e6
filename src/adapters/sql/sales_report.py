"""A seller's order lines for the sales report, read in keyset batches (no long transaction)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from adapters.sql.executor import SqlAdapter, page_rows
from adapters.sql.mapping import row_mapper
from adapters.sql.statements import orders as order_sql
from application.ports.reports import SalesLine

_sales_line = row_mapper(SalesLine)


class SqlSalesLineSource(SqlAdapter):
    async def sales_lines(
        self, seller_id: uuid.UUID, start: datetime, end: datetime, *, batch_size: int = 5000
    ) -> AsyncIterator[list[SalesLine]]:
        period = {"seller_id": seller_id, "start": start, "end": end, "limit": batch_size}
        after: tuple[datetime, uuid.UUID] | None = None
        while rows := await page_rows(self.sql, order_sql.SALES_OF_PERIOD, after, **period):
            yield [_sales_line(row) for row in rows]
            if len(rows) < batch_size:
                return
            after = (rows[-1]["created_at"], rows[-1]["line_id"])
