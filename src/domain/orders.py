"""Cart lines and orders: quantities, snapshots and the order life cycle."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from domain.errors import Conflict, RuleViolation
from domain.money import to_money

QUANTITY_MIN, QUANTITY_MAX = 1, 99


def validate_quantity(value: int) -> int:
    if not QUANTITY_MIN <= value <= QUANTITY_MAX:
        raise RuleViolation(f"Quantity must be {QUANTITY_MIN}–{QUANTITY_MAX}.", field="quantity")
    return value


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    return to_money(unit_price * quantity)


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class CartLine:
    id: uuid.UUID
    user_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    price_at_add: Decimal
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class OrderLine:
    id: uuid.UUID
    order_id: uuid.UUID
    product_id: uuid.UUID
    seller_id: uuid.UUID | None
    name: str
    unit_price: Decimal
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return line_total(self.unit_price, self.quantity)


@dataclass(slots=True)
class Order:
    id: uuid.UUID
    buyer_id: uuid.UUID | None
    status: OrderStatus
    total: Decimal
    created_at: datetime
    updated_at: datetime
    lines: list[OrderLine] = field(default_factory=list)
    idempotency_key: str | None = None

    def cancel(self) -> None:
        if self.status is not OrderStatus.PLACED:
            raise Conflict("Only a placed order can be cancelled.", field="status")
        self.status = OrderStatus.CANCELLED


def order_total(lines: list[OrderLine]) -> Decimal:
    return to_money(sum((line.line_total for line in lines), Decimal("0")))
