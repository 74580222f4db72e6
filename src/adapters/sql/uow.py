"""The SQL unit of work: one session, one transaction, repositories bound to it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sql.database import Database
from adapters.sql.repositories.auth import (
    SqlEmailTokenRepository,
    SqlOutboxRepository,
    SqlRefreshTokenRepository,
    SqlUserRepository,
)
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
from application.ports import persistence as ports


class SqlUnitOfWork:
    """Commit explicitly or everything rolls back when the block ends.

    On SQLite, units of work in this process take turns (one writer at a time is all SQLite
    allows); on Postgres they run concurrently and the constraints and guarded updates decide.
    """

    users: ports.UserRepository
    refresh_tokens: ports.RefreshTokenRepository
    email_tokens: ports.EmailTokenRepository
    outbox: ports.OutboxRepository
    cart: ports.CartRepository
    guest_carts: ports.GuestCartRepository
    orders: ports.OrderRepository
    inventory: ports.InventoryRepository
    reports: ports.ReportRepository
    categories: ports.CategoryRepository
    products: ports.ProductRepository
    reviews: ports.ReviewRepository
    favorites: ports.FavoriteRepository
    cart_cleanup: ports.CartCleanup
    webhooks: ports.WebhookRepository
    webhook_deliveries: ports.DeliveryRepository

    def __init__(self, db: Database) -> None:
        self._db = db
        self._session: AsyncSession | None = None
        self._turn: AbstractAsyncContextManager[None] | None = None

    @property
    def session(self) -> AsyncSession:
        assert self._session is not None, "unit of work used outside 'async with'"
        return self._session

    async def __aenter__(self) -> Self:
        if not self._db.is_postgres:
            turn = self._db.write_turn()
            await turn.__aenter__()  # bounded: past the budget the unit of work fails (503)
            self._turn = turn
        self._session = self._db.sessions()
        s = self._session
        self.users = SqlUserRepository(s)
        self.refresh_tokens = SqlRefreshTokenRepository(s)
        self.email_tokens = SqlEmailTokenRepository(s)
        self.outbox = SqlOutboxRepository(s)
        self.cart = SqlCartRepository(s, self._db.dialect)
        self.guest_carts = SqlGuestCartRepository(s)
        self.orders = SqlOrderRepository(s, self._db.dialect)
        self.inventory = SqlInventoryRepository(s, self._db.dialect)
        self.reports = SqlReportRepository(s)
        self.categories = SqlCategoryRepository(s, self._db.dialect)
        self.products = SqlProductRepository(s, self._db.dialect)
        self.reviews = SqlReviewRepository(s)
        self.favorites = SqlFavoriteRepository(s, self._db.dialect)
        self.cart_cleanup = SqlCartCleanup(s)
        self.webhooks = SqlWebhookRepository(s, self._db.dialect)
        self.webhook_deliveries = SqlDeliveryRepository(s, self._db.dialect)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._session is not None:
                await self._session.rollback()
                await self._session.close()
        finally:
            self._session = None
            turn, self._turn = self._turn, None
            if turn is not None:
                await turn.__aexit__(None, None, None)

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        await self.session.rollback()


class SqlUnitOfWorkFactory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db)
