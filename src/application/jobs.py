"""Job kinds and the dispatcher that moves committed outbox rows onto the job queue."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from application.ports.jobs import JobQueue, QueuedJob
from application.ports.outbox import OutboxJobStore
from application.ports.persistence import UnitOfWork

log = logging.getLogger(__name__)

SEND_WELCOME = "send_welcome_email"
SEND_VERIFICATION = "send_verification_email"
SEND_PASSWORD_RESET = "send_password_reset_email"
SEND_EMAIL_CHANGED = "send_email_changed_notice"
SEND_ORDER_CONFIRMATION = "send_order_confirmation"
SEND_SALE_NOTICE = "send_sale_notice"
BUILD_SALES_REPORT = "build_sales_report"
# Webhooks: an outbox job fans an event out to deliveries; a queue-only job makes one attempt.
WEBHOOK_EVENT = "webhook_event"
DELIVER_WEBHOOK = "deliver_webhook"
# A user's favorite, order or review: refresh their feed and the touched products' neighbours.
UPDATE_FEED = "update_feed"


# A job as a use case records it (kind, payload), and once written, with its outbox id.
Job = tuple[str, dict[str, Any]]
OutboxJob = tuple[uuid.UUID, str, dict[str, Any]]


async def record(uow: UnitOfWork, jobs: Sequence[Job]) -> list[OutboxJob]:
    """Write the jobs to the outbox (one statement); what the dispatcher needs after the commit."""
    if not jobs:
        return []
    ids = await uow.outbox.add_many(jobs)
    return [(outbox_id, kind, payload) for outbox_id, (kind, payload) in zip(ids, jobs, strict=True)]


def feed_update(user_id: uuid.UUID, product_ids: Iterable[uuid.UUID]) -> Job:
    """The outbox job (kind, payload) a user's interaction with these products records."""
    return UPDATE_FEED, {"user_id": str(user_id), "product_ids": sorted({str(p) for p in product_ids})}


class JobDispatcher:
    """Enqueue outbox rows after their transaction committed.

    The rows were written claimed by their writer (``OutboxRepository.add_many``), so a job that
    reaches the queue costs no further write. One the queue refuses is released for the periodic
    relay, which retries it: the change that needed the job stands, and the job is delayed, never
    lost (if even the release fails, the relay takes the row once its claim is stale).
    """

    def __init__(
        self, queue: JobQueue, outbox: OutboxJobStore, context: Callable[[], Mapping[str, str]] | None = None
    ) -> None:
        self._queue = queue
        self._outbox = outbox
        # Correlation data of the current request (its request id), carried into the job.
        self._context = context

    async def dispatch(self, jobs: Iterable[OutboxJob]) -> int:
        """Enqueue the rows in one batch (one queue round trip); how many reached the queue."""
        context = dict(self._context()) if self._context is not None else {}
        batch = list(jobs)
        if not batch:
            return 0
        try:
            await self._queue.enqueue_many([queued(*job, context=context) for job in batch])
        except Exception:  # the relay retries them; the caller's work already committed
            log.warning("job queue unavailable; %d outbox rows left for the relay", len(batch))
            try:
                await self._outbox.unclaim(outbox_id for outbox_id, _, _ in batch)
            except Exception:
                log.warning("could not release %d outbox rows; the relay takes them once stale", len(batch))
            return 0
        return len(batch)


def queued(outbox_id: uuid.UUID, kind: str, payload: Mapping[str, Any], *, context: Mapping[str, str]) -> QueuedJob:
    """An outbox row as the queue gets it, from its writer or the relay: the same key either way,
    so the queue drops a second copy while the first is queued or running."""
    return QueuedJob(kind, {"outbox_id": str(outbox_id), **payload, **context}, f"outbox:{outbox_id}")


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """How long one attempt may run and how often a failing job is retried (exponential backoff).

    SAQ's defaults (10 s, no retry) suit neither a slow SMTP server nor a big report.
    """

    timeout_seconds: int = 30
    attempts: int = 5
    retry_delay_seconds: float = 2.0
    max_retry_delay_seconds: float = 300.0


EMAIL_POLICY = JobPolicy(timeout_seconds=30, attempts=6, retry_delay_seconds=5.0, max_retry_delay_seconds=600.0)
JOB_POLICIES: dict[str, JobPolicy] = {
    SEND_WELCOME: EMAIL_POLICY,
    SEND_VERIFICATION: EMAIL_POLICY,
    SEND_PASSWORD_RESET: EMAIL_POLICY,
    SEND_EMAIL_CHANGED: EMAIL_POLICY,
    SEND_ORDER_CONFIRMATION: EMAIL_POLICY,
    SEND_SALE_NOTICE: EMAIL_POLICY,
    BUILD_SALES_REPORT: JobPolicy(timeout_seconds=600, attempts=3, retry_delay_seconds=10.0),
    WEBHOOK_EVENT: JobPolicy(timeout_seconds=30, attempts=5, retry_delay_seconds=2.0),
    # One attempt per job: the delivery row keeps its own backoff (a 10 s request, then bookkeeping).
    DELIVER_WEBHOOK: JobPolicy(timeout_seconds=30, attempts=1),
    UPDATE_FEED: JobPolicy(timeout_seconds=30, attempts=3, retry_delay_seconds=1.0, max_retry_delay_seconds=30.0),
}


def job_policy(kind: str) -> JobPolicy:
    return JOB_POLICIES.get(kind, JobPolicy())
