from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Current time in UTC; a port so tests can move time (token expiry, decay)."""

    def now(self) -> datetime: ...
