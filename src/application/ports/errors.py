"""The error every port may raise, whichever adapter stands behind it."""

from __future__ import annotations


class Unavailable(Exception):
    """A backing service (the database, Redis, the job queue, the mail server) is down, restarting,
    stalled or out of connections. Nothing is wrong with the request: it may be tried again shortly.

    Adapters raise it chained to the driver's error, so callers above them never need to know a
    driver's exceptions to tell an outage from a bug. ``reason`` is safe to log (never SQL text or
    parameters)."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service} unavailable: {reason}")
        self.service = service
        self.reason = reason
