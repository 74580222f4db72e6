"""One circuit breaker for every adapter that falls back while Redis fails.

Closed: calls go through. A failure opens it for a backoff (``min_backoff``, doubling on each
failed retry up to ``max_backoff``); while open, callers use their fallback at once instead of
waiting on a dead server. Once the backoff has passed it is half-open: the next call is a retry;
success closes it, failure opens it again for the doubled backoff. The clock is injectable so
tests step time instead of sleeping. Given an ``OutageLog``, the breaker logs the two lines of an
outage: one warning when a failure opens it, one info line when a success closes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class OutageLog:
    """How an adapter reports its Redis outages, in its own logger."""

    log: logging.Logger
    service: str  # "cache": "cache unavailable (...)", "cache available again"
    meanwhile: str  # what callers get while it is down: "reads go to the database"

    def began(self, error: BaseException | None) -> None:
        self.log.warning(
            "%s unavailable (%s: %s); %s until Redis answers again",
            self.service,
            type(error).__name__,
            error,
            self.meanwhile,
        )

    def ended(self) -> None:
        self.log.info("%s available again", self.service)


@dataclass(kw_only=True, eq=False)
class CircuitBreaker:
    min_backoff: float = 1.0
    max_backoff: float = 5.0
    clock: Callable[[], float] = time.monotonic
    outages: OutageLog | None = None
    open: bool = field(default=False, init=False)
    backoff: float = field(init=False)
    _until: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.backoff = self.min_backoff

    @property
    def state(self) -> Literal["closed", "open", "half-open"]:
        if not self.open:
            return "closed"
        return "open" if self.clock() < self._until else "half-open"

    def allows_call(self) -> bool:
        """True when closed or half-open: the caller may try the real service."""
        return not self.open or self.clock() >= self._until

    def failed(self, error: BaseException | None = None) -> bool:
        """Record a failure; True when it opened a closed circuit (then ``error`` is logged, once)."""
        opened = not self.open
        self.backoff = self.min_backoff if opened else min(self.backoff * 2, self.max_backoff)
        self.open = True
        self._until = self.clock() + self.backoff
        if opened and self.outages is not None:
            self.outages.began(error)
        return opened

    def succeeded(self) -> bool:
        """Record a success; True when it closed an open circuit (the caller recovers)."""
        closed = self.open
        self.open = False
        self.backoff = self.min_backoff
        if closed and self.outages is not None:
            self.outages.ended()
        return closed
