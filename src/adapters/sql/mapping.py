"""Rows to views and entities by column name: the one row mapping of the SQL adapters.

``row_mapper(ProductSummary)`` reads field ``name`` from column ``name``; a nested Struct or
dataclass field ``seller`` reads its own fields from columns ``seller_id``, ``seller_username``
(an optional one is None when its ``…_id`` column is NULL); an enum field is built from its value
and a ``float`` field from a Decimal. What no column holds is ``derived`` from the row. Statements
label their columns to match, so a new column is a new label, not a new mapping function.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from adapters.sql.executor import Row

T = TypeVar("T")
Reader = Callable[[Row], Any]


def _fields(target: type[Any]) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(target)
    if dataclasses.is_dataclass(target):
        return [(field.name, hints[field.name]) for field in dataclasses.fields(target) if field.init]
    if issubclass(target, msgspec.Struct):
        return [(name, hints[name]) for name in target.__struct_fields__]
    if issubclass(target, tuple) and hasattr(target, "_fields"):  # a NamedTuple
        return [(name, hints[name]) for name in target._fields]
    raise TypeError(f"{target!r} is not a dataclass, msgspec Struct or NamedTuple")


def _is_record(kind: Any) -> bool:
    return isinstance(kind, type) and (dataclasses.is_dataclass(kind) or issubclass(kind, msgspec.Struct))


def _optional(kind: Any) -> tuple[Any, bool]:
    """``X | None`` → (X, True); anything else → (itself, False)."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        members = [member for member in typing.get_args(kind) if member is not type(None)]
        if len(members) == 1:
            return members[0], True
    return kind, False


def _reader(name: str, kind: Any, column: str) -> Reader:
    inner, optional = _optional(kind)
    if _is_record(inner):
        nested = row_mapper(inner, prefix=f"{column}_")
        if optional:
            key = f"{column}_id"
            return lambda row: None if row[key] is None else nested(row)
        return nested
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        convert: Callable[[Any], Any] = inner
    elif inner is float:
        convert = float
    else:
        return lambda row: row[column]
    return lambda row: None if (value := row[column]) is None else convert(value)


def row_mapper(target: type[T], *, prefix: str = "", derived: Mapping[str, Reader] | None = None) -> Callable[[Row], T]:
    """A function building ``target`` from a row (see the module docstring)."""
    derived = derived or {}
    readers = [
        derived[name] if name in derived else _reader(name, kind, prefix + name) for name, kind in _fields(target)
    ]

    def build(row: Row) -> T:
        return target(*[read(row) for read in readers])

    build.__qualname__ = f"row_mapper({target.__name__})"
    return build


def as_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def params_of(entity: Any, **extra: Any) -> dict[str, Any]:
    """An entity's fields as statement parameters of the same names (enums as their values)."""
    params = {
        field.name: value.value if isinstance(value := getattr(entity, field.name), enum.Enum) else value
        for field in dataclasses.fields(entity)
    }
    params.update(extra)
    return params
