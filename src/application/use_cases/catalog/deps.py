"""What every catalog use case is given, and the after-commit steps they share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.cached_catalog import CacheInvalidation
from application.jobs import Job, JobDispatcher, OutboxJob, feed_update
from application.ports.catalog import CatalogQueries
from application.ports.clock import Clock
from application.ports.persistence import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class CatalogDeps:
    uow: UnitOfWorkFactory
    queries: CatalogQueries
    clock: Clock
    # Told after each commit what changed, so cached reads never outlive it (None: no cache).
    invalidation: CacheInvalidation | None = None
    # Hands outbox jobs (webhook events) to the queue after a commit (None: the relay does).
    jobs: JobDispatcher | None = None

    def interaction(self, user_id: uuid.UUID, product_id: uuid.UUID) -> list[Job]:
        """A favorite or review: the feed update job to record with it (none without a dispatcher)."""
        return [feed_update(user_id, [product_id])] if self.jobs is not None else []

    async def dispatch(self, jobs: list[OutboxJob]) -> None:
        if jobs and self.jobs is not None:
            await self.jobs.dispatch(jobs)

    async def products_changed(self, *product_ids: uuid.UUID, feed_of: uuid.UUID | None = None) -> None:
        if self.invalidation is not None:
            await self.invalidation.products_changed(product_ids, feed_of=feed_of)

    async def listings_changed(self) -> None:
        if self.invalidation is not None:
            await self.invalidation.listings_changed()
