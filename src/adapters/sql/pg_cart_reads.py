"""``GET /api/cart`` on Postgres: one prepared statement on the raw asyncpg pool, no transaction."""

from __future__ import annotations

import uuid

from adapters.sql.read_pool import PgReadPool
from application.ports.orders import CartEntry, CartProductView, CartSellerView

CART_SQL = (
    "SELECT c.id, c.quantity, c.price_at_add, p.id, p.name, p.price, p.image_url, p.stock, p.seller_id, u.username "
    "FROM cart_items c JOIN products p ON p.id = c.product_id JOIN users u ON u.id = p.seller_id "
    "WHERE c.user_id = $1 AND p.withdrawn_at IS NULL ORDER BY c.created_at, c.id"
)


class PgCartReads:
    def __init__(self, reads: PgReadPool) -> None:
        self.reads = reads

    async def entries(self, user_id: uuid.UUID) -> list[CartEntry]:
        return [
            CartEntry(
                id=r[0],
                quantity=r[1],
                price_at_add=r[2],
                product=CartProductView(
                    id=r[3],
                    name=r[4],
                    price=r[5],
                    image_url=r[6],
                    stock=r[7],
                    seller=CartSellerView(id=r[8], username=r[9]),
                ),
            )
            for r in await self.reads.fetch(CART_SQL, user_id)
        ]
