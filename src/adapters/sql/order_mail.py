"""What the order emails need, read straight from orders, order lines and users (two statements)."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, select

from adapters.sql.database import Database
from adapters.sql.tables import OrderLineRow, OrderRow, UserRow, table_of
from application.ports.order_mail import MailLine, OrderForMail

OR = table_of(OrderRow)
OL = table_of(OrderLineRow)
U = table_of(UserRow)


class SqlOrderMailQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def order(self, order_id: uuid.UUID) -> OrderForMail | None:
        head = (
            select(OR.c.id, OR.c.status, OR.c.total, OR.c.created_at, U.c.email, U.c.username)
            .select_from(OR.outerjoin(U, and_(U.c.id == OR.c.buyer_id, U.c.deleted_at.is_(None))))
            .where(OR.c.id == order_id)
        )
        lines = (
            select(OL.c.product_id, OL.c.seller_id, OL.c.name, OL.c.unit_price, OL.c.quantity, OL.c.line_total)
            .where(OL.c.order_id == order_id)
            .order_by(OL.c.created_at, OL.c.id)
        )
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(head)).first()
            if row is None:
                return None
            line_rows = (await conn.execute(lines)).all()
        return OrderForMail(
            id=row.id,
            status=row.status,
            total=row.total,
            created_at=row.created_at,
            buyer_email=row.email,
            buyer_username=row.username,
            lines=tuple(
                MailLine(
                    product_id=line.product_id,
                    seller_id=line.seller_id,
                    name=line.name,
                    unit_price=line.unit_price,
                    quantity=line.quantity,
                    line_total=line.line_total,
                )
                for line in line_rows
            ),
        )
