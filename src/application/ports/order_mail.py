from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MailLine:
    product_id: uuid.UUID
    seller_id: uuid.UUID | None
    name: str
    unit_price: Decimal
    quantity: int
    line_total: Decimal


@dataclass(frozen=True, slots=True)
class OrderForMail:
    """What the order emails show, read in one go from orders, order lines and users."""

    id: uuid.UUID
    status: str
    total: Decimal
    created_at: datetime
    buyer_email: str | None
    buyer_username: str | None
    lines: tuple[MailLine, ...]


class OrderMailQueries(Protocol):
    async def order(self, order_id: uuid.UUID) -> OrderForMail | None:
        """The order with its lines; buyer fields are None when the buyer's account is gone."""
        ...
