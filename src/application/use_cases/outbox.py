"""Running outbox jobs exactly once to completion, and relaying the ones the queue never got.

Delivery is at least once (the queue may hand a job over twice: a retry after a crash, a relay
re-enqueue, a duplicate dispatch); the outbox row's ``processed_at`` turns that into "effectively
once": a job whose row is processed returns at once, and the row is marked only after the work
succeeded.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import Any

from application.jobs import queued
from application.ports.clock import Clock
from application.ports.jobs import JobQueue
from application.ports.outbox import OutboxEntry, OutboxJobStore

log = logging.getLogger(__name__)

# A handler does the job's work and returns a short note for logs and the queue's job result.
JobHandler = Callable[[OutboxEntry], Awaitable[str]]
ERROR_MAX_LENGTH = 1000
# Payload fields only the job needs (raw email tokens): dropped from the row once it is processed,
# so the outbox does not keep working verification and reset secrets at rest.
SECRET_FIELDS = frozenset({"token"})
# Failed attempts kept in memory while the database cannot take them (one entry per outbox row).
MAX_UNRECORDED = 10_000


class UnknownJobKind(LookupError):
    """No handler for this kind: the row stays unprocessed and visible (``last_error``)."""


class RunOutboxJob:
    """Run the outbox job ``payload["outbox_id"]`` unless it already completed.

    Every failed attempt is counted on its row with its error, also when the database is what
    failed: a failure that cannot be written is kept in this process (a bounded ledger) and written
    by the next call that reaches the database — any job's, or the relay's ``flush_unrecorded``.
    """

    def __init__(
        self,
        outbox: OutboxJobStore,
        handlers: Mapping[str, JobHandler],
        clock: Clock,
        *,
        max_unrecorded: int = MAX_UNRECORDED,
    ) -> None:
        self.outbox = outbox
        self.handlers = handlers
        self.clock = clock
        self.max_unrecorded = max_unrecorded
        # outbox id -> (failed attempts not yet written, the last one's error)
        self.unrecorded: dict[uuid.UUID, tuple[int, str]] = {}

    async def execute(self, kind: str, payload: Mapping[str, Any]) -> dict[str, str]:
        try:
            outbox_id = uuid.UUID(str(payload["outbox_id"]))
        except (KeyError, ValueError):
            log.error("job %s without a valid outbox_id; dropped", kind)
            return {"kind": kind, "outcome": "invalid payload"}
        try:
            await self.flush_unrecorded()
            entry = await self.outbox.get(outbox_id)
        except Exception as error:  # the database failed before the work began: still an attempt
            self._remember(outbox_id, error)
            raise
        if entry is None:
            log.warning("outbox row %s (%s) not found; nothing to do", outbox_id, kind)
            return {"kind": kind, "outcome": "missing"}
        result = {"kind": entry.kind, "outbox_id": str(outbox_id)}
        if entry.processed_at is not None:
            return {**result, "outcome": "already processed"}
        handler = self.handlers.get(entry.kind)
        try:
            if handler is None:
                raise UnknownJobKind(f"no handler for job kind {entry.kind!r}")
            note = await handler(entry)
            kept = {key: value for key, value in entry.payload.items() if key not in SECRET_FIELDS}
            await self.outbox.mark_processed(outbox_id, self.clock.now(), payload=kept)
        except Exception as error:
            await self._record_failure(outbox_id, error)
            raise
        return {**result, "outcome": note}

    async def flush_unrecorded(self) -> int:
        """Write the failures the database could not take when they happened; returns how many rows.

        Each entry is taken out before it is written, so concurrent jobs flushing at once write it
        once; one that cannot be written goes back (merged with any failure noted meanwhile)."""
        written = 0
        while self.unrecorded:
            outbox_id = next(iter(self.unrecorded))
            attempts, error = self.unrecorded.pop(outbox_id)
            try:
                await self.outbox.record_failure(outbox_id, error, self.clock.now(), attempts=attempts)
            except Exception:
                newer_attempts, newer_error = self.unrecorded.pop(outbox_id, (0, error))
                self.unrecorded[outbox_id] = (attempts + newer_attempts, newer_error)
                raise
            written += 1
        if written:
            log.info("recorded the failed attempts of %d outbox rows the database missed", written)
        return written

    async def _record_failure(self, outbox_id: uuid.UUID, error: Exception) -> None:
        try:
            await self.outbox.record_failure(outbox_id, _describe(error), self.clock.now())
        except Exception:
            log.warning("could not record the failure of outbox row %s; kept until the database answers", outbox_id)
            self._remember(outbox_id, error)

    def _remember(self, outbox_id: uuid.UUID, error: Exception) -> None:
        attempts, _ = self.unrecorded.pop(outbox_id, (0, ""))
        if len(self.unrecorded) >= self.max_unrecorded:  # bounded: the oldest entry goes
            dropped = next(iter(self.unrecorded))
            del self.unrecorded[dropped]
            log.warning("too many unrecorded job failures; the count of outbox row %s is lost", dropped)
        self.unrecorded[outbox_id] = (attempts + 1, _describe(error))


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:ERROR_MAX_LENGTH]


@dataclass(eq=False)
class RelayOutbox:
    """Re-enqueue outbox rows the queue lost or never got (runs every few seconds).

    Rows qualify when unprocessed, below ``max_attempts`` failures, and either unclaimed (released by
    a writer whose enqueue failed, and older than ``grace``) or claimed more than ``stale_after``
    ago: their writer died before enqueueing them, or the queue gave up on them or lost them. A
    guarded claim makes concurrent relays (several API processes or workers) enqueue each row once.
    """

    outbox: OutboxJobStore
    queue: JobQueue
    clock: Clock
    _: KW_ONLY
    # A re-enqueue while the queue still holds the job is ignored (same key), so "stale" can be
    # short: a job the queue gave up on or lost (a killed worker) runs again within minutes.
    stale_after: timedelta = timedelta(minutes=2)
    grace: timedelta = timedelta(seconds=10)
    # Failures caused by an outage count too (the books are honest), so the cap is generous.
    max_attempts: int = 30
    batch_size: int = 200
    max_batches: int = 10

    async def execute(self, *, grace: timedelta | None = None) -> int:
        """Enqueue due rows; returns how many were handed to the queue. ``grace`` overrides the
        configured one (zero right after the queue came back: every row written meanwhile is due)."""
        sent = 0
        grace = self.grace if grace is None else grace
        for _ in range(self.max_batches):
            now = self.clock.now()
            stale_before = now - self.stale_after
            due = await self.outbox.due_for_relay(
                created_before=now - grace,
                dispatched_before=stale_before,
                max_attempts=self.max_attempts,
                limit=self.batch_size,
            )
            if not due:
                break
            claimed = set(await self.outbox.claim([e.id for e in due], dispatched_before=stale_before, now=now))
            batch = [entry for entry in due if entry.id in claimed]
            enqueued, ok = await self._enqueue(batch)
            sent += enqueued
            if not ok or len(due) < self.batch_size:
                break
        if sent:
            log.info("outbox relay enqueued %d jobs", sent)
        return sent

    async def _enqueue(self, batch: list[OutboxEntry]) -> tuple[int, bool]:
        if not batch:
            return 0, True
        try:
            await self.queue.enqueue_many([queued(e.id, e.kind, e.payload, context={}) for e in batch])
        except Exception:
            log.warning("job queue unavailable; %d outbox rows wait for the next relay run", len(batch))
            await self.outbox.unclaim(e.id for e in batch)
            return 0, False
        return len(batch), True
