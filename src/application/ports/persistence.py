"""Repositories and the unit of work.

A use case opens a unit of work, reads and writes through its repositories, and commits; leaving
the block without ``commit()`` rolls everything back, so a request's writes land together or
not at all. Repositories translate storage errors into domain errors (``Conflict`` for a
violated unique constraint), so use cases never see a driver exception.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from application.ports.catalog import CartCleanup as CartCleanup  # re-exported for the units of work
from application.ports.catalog import CategoryRepository as CategoryRepository
from application.ports.catalog import FavoriteRepository as FavoriteRepository
from application.ports.catalog import ProductRepository as ProductRepository
from application.ports.catalog import ReviewRepository as ReviewRepository
from application.ports.orders import CartRepository as CartRepository  # re-exported for the units of work
from application.ports.orders import GuestCartRepository as GuestCartRepository
from application.ports.orders import InventoryRepository as InventoryRepository
from application.ports.orders import OrderRepository as OrderRepository
from application.ports.outbox import OutboxRepository as OutboxRepository  # re-exported for the units of work
from application.ports.reports import ReportRepository as ReportRepository  # re-exported for the units of work
from application.ports.webhooks import DeliveryRepository as DeliveryRepository
from application.ports.webhooks import WebhookRepository as WebhookRepository
from domain.sessions import EmailToken, EmailTokenPurpose, RefreshToken
from domain.users import User


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...

    async def get(self, user_id: uuid.UUID) -> User | None:
        """An active (not deleted) user."""
        ...

    async def get_by_login(self, login: str) -> User | None:
        """An active user whose email or username equals ``login``, case-insensitively."""
        ...

    async def update(self, user: User) -> None: ...


class RefreshTokenRepository(Protocol):
    async def add(self, token: RefreshToken) -> None: ...

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None: ...

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Mark unused → used atomically; False when someone else spent or revoked it first."""
        ...

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None: ...

    async def revoke_user(self, user_id: uuid.UUID, now: datetime, *, keep_family: uuid.UUID | None = None) -> None: ...


class EmailTokenRepository(Protocol):
    async def add(self, token: EmailToken) -> None: ...

    async def get_by_hash(self, token_hash: str, purpose: EmailTokenPurpose) -> EmailToken | None: ...

    async def spend(self, token_id: uuid.UUID, now: datetime) -> bool: ...

    async def spend_all(self, user_id: uuid.UUID, purpose: EmailTokenPurpose, now: datetime) -> None:
        """Spend every unused token of the account for ``purpose`` (an email change voids old links)."""
        ...


class UnitOfWork(Protocol):
    """One transaction and the repositories that work in it (read-only here: an adapter assigns
    its own implementations; nothing lasts unless ``commit`` is called)."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def email_tokens(self) -> EmailTokenRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def reports(self) -> ReportRepository: ...

    @property
    def cart(self) -> CartRepository: ...

    @property
    def guest_carts(self) -> GuestCartRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def inventory(self) -> InventoryRepository: ...

    @property
    def categories(self) -> CategoryRepository: ...

    @property
    def products(self) -> ProductRepository: ...

    @property
    def reviews(self) -> ReviewRepository: ...

    @property
    def favorites(self) -> FavoriteRepository: ...

    @property
    def cart_cleanup(self) -> CartCleanup: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def webhook_deliveries(self) -> DeliveryRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
