"""Money is an exact Decimal with two places; never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from domain.errors import RuleViolation

CENT = Decimal("0.01")
MAX_PRICE = Decimal("1000000")


def to_money(value: Decimal) -> Decimal:
    """Quantize an already-valid amount to cents (for totals and snapshots)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def validate_price(value: Decimal | str | int, *, field: str = "price") -> Decimal:
    """A price is > 0, ≤ 1,000,000 and has at most two decimal places."""
    try:
        price = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise RuleViolation('Price must be a decimal number such as "19.99".', field=field) from None
    if not price.is_finite():
        raise RuleViolation("Price must be a finite decimal number.", field=field)
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and price != price.quantize(CENT):
        raise RuleViolation("Price may have at most two decimal places.", field=field)
    if price <= 0:
        raise RuleViolation("Price must be greater than 0.", field=field)
    if price > MAX_PRICE:
        raise RuleViolation("Price must be at most 1000000.", field=field)
    return to_money(price)
