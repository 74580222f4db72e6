from __future__ import annotations

from typing import Protocol

from application.ports.orders import CartEntry
from domain.orders import CartOwner, GuestCart


class CartReads(Protocol):
    """The cart as its owner sees it, read outside any unit of work (one statement, no locks).

    For ``GET /api/cart``, the hottest authenticated read, and the guest-token check in front of
    every guest cart request. It must read the primary: the buyer expects to see what they just
    added, and a spent guest token must be refused at once.
    """

    async def entries(self, owner: CartOwner) -> list[CartEntry]:
        """The owner's lines with live products, oldest first (withdrawn products left out)."""
        ...

    async def guest_cart(self, token_hash: str) -> GuestCart | None:
        """The guest cart with this token hash, live or not."""
        ...
