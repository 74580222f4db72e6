"""Time budgets for work on database connections: requests get a short one, background work a long one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Budget:
    """How long work on one connection may take. Postgres enforces the statement and lock waits
    itself (``statement_timeout``, ``lock_timeout``), so a stalled statement ends with an error and
    a rollback on a connection that stays usable; ``acquire_seconds`` bounds the wait for a pooled
    connection, and on SQLite for the write lock (``busy_timeout`` and this process's turn)."""

    statement_seconds: float
    lock_seconds: float
    acquire_seconds: float

    @classmethod
    def for_requests(cls, deadline: float) -> Budget:
        # A little under the request's deadline, so the database's own error (clean, 503) comes
        # before the request timer has to cancel a statement (which costs the connection).
        # Lock waits give up first, so a stalled table reads as such ("lock timeout") in the logs.
        share = max(0.1, round(deadline * 0.8, 3))
        return cls(statement_seconds=share, lock_seconds=round(share * 0.75, 3), acquire_seconds=share)

    @classmethod
    def for_jobs(cls, seconds: float) -> Budget:
        return cls(statement_seconds=seconds, lock_seconds=seconds, acquire_seconds=min(seconds, 30.0))

    def server_settings(self) -> dict[str, str]:
        """Postgres session settings (milliseconds) for every connection under this budget."""
        return {
            "statement_timeout": str(max(1, int(self.statement_seconds * 1000))),
            "lock_timeout": str(max(1, int(self.lock_seconds * 1000))),
        }


REQUEST_BUDGET = Budget.for_requests(5.0)
