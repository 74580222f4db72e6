"""Column types that keep money exact on both databases.

Postgres stores NUMERIC(12,2). SQLite has no exact decimal (NUMERIC decays to a float), so there
the same column is an integer number of cents; sums and comparisons stay exact on both.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

CENTS = Decimal(100)


class Money(TypeDecorator[Decimal]):
    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(value).quantize(Decimal("0.01"))
        if dialect.name == "sqlite":
            return int(amount * CENTS)
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / CENTS).quantize(Decimal("0.01"))
        return Decimal(value).quantize(Decimal("0.01"))
