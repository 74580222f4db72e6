"""``GET /api/cart`` on Postgres: one prepared statement on the raw asyncpg pool, no transaction.

The same statement serves a user's cart and a guest cart; only the owner column differs (each
has its own unique index leading with it). The guest-token check in front of every guest cart
request is one more prepared statement here.
"""

from __future__ import annotations

from adapters.sql.read_pool import PgReadPool
from application.ports.orders import CartEntry, CartProductView, CartSellerView
from domain.orders import CartOwner, GuestCart

_CART_SQL = (
    "SELECT c.id, c.quantity, c.price_at_add, p.id, p.name, p.price, p.image_url, p.stock, p.seller_id, u.username "
    "FROM cart_items c JOIN products p ON p.id = c.product_id JOIN users u ON u.id = p.seller_id "
    "WHERE c.{owner} = $1 AND p.withdrawn_at IS NULL ORDER BY c.created_at, c.id"
)
CART_SQL = _CART_SQL.format(owner="user_id")
GUEST_CART_LINES_SQL = _CART_SQL.format(owner="guest_cart_id")
GUEST_CART_SQL = "SELECT id, token_hash, created_at, last_used_at, spent_at FROM guest_carts WHERE token_hash = $1"


class PgCartReads:
    def __init__(self, reads: PgReadPool) -> None:
        self.reads = reads

    async def entries(self, owner: CartOwner) -> list[CartEntry]:
        if owner.user_id is not None:
            records = await self.reads.fetch(CART_SQL, owner.user_id)
        else:
            records = await self.reads.fetch(GUEST_CART_LINES_SQL, owner.guest_cart_id)
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
            for r in records
        ]

    async def guest_cart(self, token_hash: str) -> GuestCart | None:
        r = await self.reads.fetchrow(GUEST_CART_SQL, token_hash)
        if r is None:
            return None
        return GuestCart(id=r[0], token_hash=r[1], created_at=r[2], last_used_at=r[3], spent_at=r[4])
