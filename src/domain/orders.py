"""Cart lines and orders: quantities, snapshots and the order life cycle."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from domain.errors import Conflict, Forbidden, InvalidInput, RuleViolation
from domain.money import to_money

QUANTITY_MIN, QUANTITY_MAX = 1, 99
# Visible ASCII only, so a key survives every proxy and log line unchanged.
# What NUMERIC(12,2) holds: a bigger cart is refused instead of overflowing the column.
ORDER_TOTAL_MAX = Decimal("9999999999.99")
_IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
# A guest cart lives this long after its last use (sliding).
GUEST_CART_LIFETIME = timedelta(days=30)


def validate_quantity(value: int) -> int:
    if not QUANTITY_MIN <= value <= QUANTITY_MAX:
        raise RuleViolation(f"Quantity must be {QUANTITY_MIN}–{QUANTITY_MAX}.", field="quantity")
    return value


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    return to_money(unit_price * quantity)


def cart_total(line_totals: list[Decimal]) -> Decimal:
    """Exact sum of already-exact line totals ("0.30" for 0.10 + 0.20, never 0.30000000000000004)."""
    return to_money(sum(line_totals, Decimal("0")))


def validate_idempotency_key(value: str) -> str:
    """1–200 characters of visible ASCII; anything else is a malformed header (400), not a rule."""
    if not _IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InvalidInput("Idempotency-Key must be 1–200 visible ASCII characters.", field="Idempotency-Key")
    return value


def ensure_in_stock(*, quantity: int, stock: int, name: str) -> None:
    if quantity > stock:
        raise Conflict(f'Only {stock} of "{name}" in stock.', field="quantity")


def ensure_buyable(*, buyer_id: uuid.UUID | None, seller_id: uuid.UUID, quantity: int, stock: int, name: str) -> None:
    """A buyer cannot buy their own product, nor more than is in stock (a guest, ``None``, owns none)."""
    if buyer_id == seller_id:
        raise Forbidden("You cannot buy your own product.", field="product_id")
    ensure_in_stock(quantity=quantity, stock=stock, name=name)


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class CartOwner:
    """Whose cart a line is in: a user's or a guest cart's (exactly one of the two ids)."""

    user_id: uuid.UUID | None = None
    guest_cart_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.guest_cart_id is None):
            raise ValueError("a cart belongs to exactly one user or one guest cart")

    @classmethod
    def of_user(cls, user_id: uuid.UUID) -> CartOwner:
        return cls(user_id=user_id)

    @classmethod
    def of_guest(cls, guest_cart_id: uuid.UUID) -> CartOwner:
        return cls(guest_cart_id=guest_cart_id)


@dataclass(slots=True)
class GuestCart:
    """A cart without an account, reached by an opaque token stored only as its hash.

    It lives ``GUEST_CART_LIFETIME`` after its last use; merging it into a user's cart at login
    spends it for good.
    """

    id: uuid.UUID
    token_hash: str
    created_at: datetime
    last_used_at: datetime
    spent_at: datetime | None = None

    def is_live(self, now: datetime) -> bool:
        return self.spent_at is None and now < self.last_used_at + GUEST_CART_LIFETIME


def merged_quantity(*, current: int, added: int, cap: int) -> int:
    """A merged line's quantity: the sum, capped (stock, per-line limit), never below ``current``."""
    return max(current, min(current + added, cap))


@dataclass(slots=True)
class CartLine:
    id: uuid.UUID
    owner: CartOwner
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


def quantities_by_product(lines: list[OrderLine]) -> dict[uuid.UUID, int]:
    """The stock an order's lines take (at checkout) or give back (on cancel), per product."""
    quantities: dict[uuid.UUID, int] = {}
    for line in lines:
        quantities[line.product_id] = quantities.get(line.product_id, 0) + line.quantity
    return quantities


def order_total(lines: list[OrderLine]) -> Decimal:
    total = to_money(sum((line.line_total for line in lines), Decimal("0")))
    if total > ORDER_TOTAL_MAX:
        raise RuleViolation("The order total is larger than one order may be; split the cart.", field="total")
    return total
