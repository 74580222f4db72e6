"""In-memory twin of the database: plain dicts, serializable transactions by snapshot."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


@dataclass
class MemoryStore:
    """Tables as dicts keyed by id. Units of work run one at a time and roll back by snapshot."""

    tables: dict[str, dict[Any, Any]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def table(self, name: str) -> dict[Any, Any]:
        return self.tables.setdefault(name, {})

    def snapshot(self) -> dict[str, dict[Any, Any]]:
        return copy.deepcopy(self.tables)

    def restore(self, snapshot: dict[str, dict[Any, Any]]) -> None:
        self.tables.clear()
        self.tables.update(snapshot)


def view_of(target: type[T], source: object, **values: Any) -> T:
    """A read model built from ``source``'s attributes of the same names, as the SQL adapters build
    it from columns of the same names (``adapters.sql.mapping.row_mapper``); ``values`` gives what
    ``source`` holds under another name or in another form."""
    if dataclasses.is_dataclass(target):
        names = [f.name for f in dataclasses.fields(target) if f.init]
    elif issubclass(target, msgspec.Struct):
        names = list(target.__struct_fields__)
    else:
        raise TypeError(f"{target!r} is not a dataclass or msgspec Struct")
    return target(**{name: values[name] if name in values else getattr(source, name) for name in names})


def new_uuid() -> uuid.UUID:
    from domain.ids import new_id

    return new_id()
