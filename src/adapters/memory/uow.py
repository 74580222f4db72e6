"""In-memory unit of work: serializable (one at a time); leaving without a commit restores a snapshot."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from adapters.memory.auth import (
    MemoryEmailTokenRepository,
    MemoryRefreshTokenRepository,
    MemoryUserRepository,
)
from adapters.memory.catalog import (
    MemoryCartCleanup,
    MemoryCategoryRepository,
    MemoryFavoriteRepository,
    MemoryProductRepository,
    MemoryReviewRepository,
)
from adapters.memory.orders import (
    MemoryCartRepository,
    MemoryGuestCartRepository,
    MemoryInventoryRepository,
    MemoryOrderRepository,
)
from adapters.memory.outbox import MemoryOutboxRepository
from adapters.memory.reports import MemoryReportRepository
from adapters.memory.store import MemoryStore
from adapters.memory.webhooks import MemoryDeliveryRepository, MemoryWebhookRepository


class MemoryUnitOfWork:
    """Serializable (units take turns on the store's lock); leaving without a commit restores a snapshot."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self._snapshot: dict[str, dict[Any, Any]] | None = None
        self.committed = False

    async def __aenter__(self) -> Self:
        await self.store.lock.acquire()
        self._snapshot = self.store.snapshot()
        self.committed = False
        s = self.store
        self.users = MemoryUserRepository(s)
        self.refresh_tokens = MemoryRefreshTokenRepository(s)
        self.email_tokens = MemoryEmailTokenRepository(s)
        self.outbox = MemoryOutboxRepository(s)
        self.cart = MemoryCartRepository(s)
        self.guest_carts = MemoryGuestCartRepository(s)
        self.orders = MemoryOrderRepository(s)
        self.inventory = MemoryInventoryRepository(s)
        self.reports = MemoryReportRepository(s)
        self.categories = MemoryCategoryRepository(s)
        self.products = MemoryProductRepository(s)
        self.reviews = MemoryReviewRepository(s)
        self.favorites = MemoryFavoriteRepository(s)
        self.cart_cleanup = MemoryCartCleanup(s)
        self.webhooks = MemoryWebhookRepository(s)
        self.webhook_deliveries = MemoryDeliveryRepository(s)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self.committed and self._snapshot is not None:
                self.store.restore(self._snapshot)
        finally:
            self._snapshot = None
            self.store.lock.release()

    async def commit(self) -> None:
        self._snapshot = self.store.snapshot()
        self.committed = True


class MemoryUnitOfWorkFactory:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.store)
