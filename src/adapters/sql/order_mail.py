"""What the order emails need, read straight from orders, order lines and users (two statements)."""

from __future__ import annotations

import uuid

from adapters.sql.executor import SqlAdapter
from adapters.sql.mapping import row_mapper
from adapters.sql.statements import orders as order_sql
from application.ports.order_mail import MailLine, OrderForMail

_mail_line = row_mapper(MailLine)


class SqlOrderMailQueries(SqlAdapter):
    async def order(self, order_id: uuid.UUID) -> OrderForMail | None:
        head = await self.sql.row(order_sql.ORDER_FOR_MAIL, order_id=order_id)
        if head is None:
            return None
        lines = await self.sql.rows(order_sql.LINES_FOR_MAIL, order_id=order_id)
        return row_mapper(OrderForMail, derived={"lines": lambda _row: tuple(_mail_line(line) for line in lines)})(head)
