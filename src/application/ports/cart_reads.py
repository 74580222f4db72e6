from __future__ import annotations

import uuid
from typing import Protocol

from application.ports.orders import CartEntry


class CartReads(Protocol):
    """The cart as its owner sees it, read outside any unit of work (one statement, no locks).

    For ``GET /api/cart``, the hottest authenticated read. It must read the primary: the buyer
    expects to see what they just added.
    """

    async def entries(self, user_id: uuid.UUID) -> list[CartEntry]:
        """The user's lines with live products, oldest first (withdrawn products left out)."""
        ...
