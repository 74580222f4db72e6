"""The SQL unit of work: one transaction, the repositories bound to its executor."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

from adapters.sql.database import Database, Transaction
from adapters.sql.outbox import SqlOutboxRepository
from adapters.sql.repositories.auth import SqlEmailTokenRepository, SqlRefreshTokenRepository, SqlUserRepository
from adapters.sql.repositories.catalog import (
    SqlCartCleanup,
    SqlCategoryRepository,
    SqlFavoriteRepository,
    SqlProductRepository,
    SqlReviewRepository,
)
from adapters.sql.repositories.orders import (
    SqlCartRepository,
    SqlGuestCartRepository,
    SqlInventoryRepository,
    SqlOrderRepository,
)
from adapters.sql.repositories.reports import SqlReportRepository
from adapters.sql.repositories.webhooks import SqlDeliveryRepository, SqlWebhookRepository


class SqlUnitOfWork:
    """Commit explicitly or everything rolls back when the block ends.

    On Postgres a connection of the pool holds the transaction and units of work run concurrently
    (the constraints and guarded updates decide); on SQLite they take turns (one writer at a time
    is all SQLite allows).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._scope: AbstractAsyncContextManager[Transaction] | None = None
        self._transaction: Transaction | None = None

    async def __aenter__(self) -> Self:
        scope = self._db.transaction()
        transaction = await scope.__aenter__()  # bounded: past the budget the unit of work fails (503)
        self._scope, self._transaction = scope, transaction
        sql = self.executor = transaction.executor  # also for tools and tests that run a statement of their own
        self.users = SqlUserRepository(sql)
        self.refresh_tokens = SqlRefreshTokenRepository(sql)
        self.email_tokens = SqlEmailTokenRepository(sql)
        self.outbox = SqlOutboxRepository(sql)
        self.cart = SqlCartRepository(sql, self._db.dialect)
        self.guest_carts = SqlGuestCartRepository(sql)
        self.orders = SqlOrderRepository(sql, self._db.dialect)
        self.inventory = SqlInventoryRepository(sql, self._db.dialect)
        self.reports = SqlReportRepository(sql)
        self.categories = SqlCategoryRepository(sql)
        self.products = SqlProductRepository(sql)
        self.reviews = SqlReviewRepository(sql)
        self.favorites = SqlFavoriteRepository(sql)
        self.cart_cleanup = SqlCartCleanup(sql)
        self.webhooks = SqlWebhookRepository(sql)
        self.webhook_deliveries = SqlDeliveryRepository(sql)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        scope, self._scope, self._transaction = self._scope, None, None
        if scope is not None:
            await scope.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        assert self._transaction is not None, "unit of work used outside 'async with'"
        await self._transaction.commit()


class SqlUnitOfWorkFactory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db)
