"""``GET /api/cart`` and the guest-token check: one statement each, outside any transaction.

The same statements as the cart repository's (``statements.carts``), run on ``Database.reads``:
on Postgres one round trip on the primary (a buyer expects to see what they just added; a spent
guest token must be refused at once).
"""

from __future__ import annotations

from adapters.sql.executor import SqlAdapter
from adapters.sql.repositories.orders import cart_entry, guest_cart, owner_key
from adapters.sql.statements import carts as cart_sql
from application.ports.orders import CartEntry
from domain.orders import CartOwner, GuestCart


class SqlCartReads(SqlAdapter):
    async def entries(self, owner: CartOwner) -> list[CartEntry]:
        column, owner_id = owner_key(owner)
        return [cart_entry(row) for row in await self.sql.rows(cart_sql.LINES[column], owner_id=owner_id)]

    async def guest_cart(self, token_hash: str) -> GuestCart | None:
        row = await self.sql.row(cart_sql.GUEST_CART_BY_HASH, token_hash=token_hash)
        return guest_cart(row) if row is not None else None
