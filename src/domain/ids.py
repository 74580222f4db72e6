"""UUIDv7 identifiers: time-ordered, so B-tree inserts stay local and ids sort by creation."""

from __future__ import annotations

import os
import time
import uuid

_last_ms = 0
_counter = 0


def new_id() -> uuid.UUID:
    """Return a UUIDv7 (RFC 9562), monotonic within this process."""
    global _last_ms, _counter
    ms = time.time_ns() // 1_000_000
    if ms <= _last_ms:
        _counter += 1
        if _counter > 0xFFF:
            _last_ms += 1
            _counter = 0
        ms = _last_ms
    else:
        _last_ms = ms
        _counter = 0
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= _counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def parse_id(raw: str, *, field: str = "id") -> uuid.UUID:
    """Parse a client-supplied id; anything that is not a UUID is simply not found."""
    from domain.errors import NotFound

    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"No such {field}.", field=field) from None
