"""The relational schema for the whole marketplace (Postgres and SQLite).

These ORM classes are persistence details: repositories translate rows to domain entities and
back. Alembic migrations (``adapters/sql/migrations``) create this schema; nothing calls
``create_all``. Dialect-specific search structures (a tsvector column with a GIN index on
Postgres, an FTS5 table on SQLite) live in the migrations only.
"""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any, cast

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.types import Money

NOT_WITHDRAWN = text("withdrawn_at IS NULL")


class UserRow(UUIDv7AuditBase):
    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    __table_args__ = (
        Index("uq_users_username_lower", func.lower(text("username")), unique=True),
        Index("uq_users_email_lower", func.lower(text("email")), unique=True),
        CheckConstraint("role IN ('user', 'admin')", name="role"),
    )


class RefreshTokenRow(UUIDv7AuditBase):
    __tablename__ = "refresh_tokens"
    user_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(GUID, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class EmailTokenRow(UUIDv7AuditBase):
    __tablename__ = "email_tokens"
    user_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class CategoryRow(UUIDv7AuditBase):
    __tablename__ = "categories"
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID, ForeignKey("categories.id", ondelete="RESTRICT"), nullable=True, index=True
    )


class ProductRow(UUIDv7AuditBase):
    __tablename__ = "products"
    seller_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID, ForeignKey("categories.id", ondelete="RESTRICT"), index=True, nullable=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Money)
    image_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    stock: Mapped[int] = mapped_column(Integer, default=1)
    # Denormalised for fast sorting; kept exact in the transaction of every review write.
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    review_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_avg: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    favorite_count: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_nonnegative"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("review_count >= 0 AND favorite_count >= 0", name="counts_nonnegative"),
        Index(
            "ix_products_newest",
            "created_at",
            "id",
            postgresql_where=NOT_WITHDRAWN,
            sqlite_where=NOT_WITHDRAWN,
        ),
        Index("ix_products_price", "price", "id", postgresql_where=NOT_WITHDRAWN, sqlite_where=NOT_WITHDRAWN),
        Index(
            "ix_products_rating",
            "rating_avg",
            "id",
            postgresql_where=NOT_WITHDRAWN,
            sqlite_where=NOT_WITHDRAWN,
        ),
        Index(
            "ix_products_category_newest",
            "category_id",
            "created_at",
            "id",
            postgresql_where=NOT_WITHDRAWN,
            sqlite_where=NOT_WITHDRAWN,
        ),
        Index(
            "ix_products_category_price",
            "category_id",
            "price",
            "id",
            postgresql_where=NOT_WITHDRAWN,
            sqlite_where=NOT_WITHDRAWN,
        ),
        Index(
            "ix_products_category_rating",
            "category_id",
            "rating_avg",
            "id",
            postgresql_where=NOT_WITHDRAWN,
            sqlite_where=NOT_WITHDRAWN,
        ),
        Index(
            "ix_products_seller_newest",
            "seller_id",
            "created_at",
            "id",
            postgresql_where=NOT_WITHDRAWN,
            sqlite_where=NOT_WITHDRAWN,
        ),
    )


class ReviewRow(UUIDv7AuditBase):
    __tablename__ = "reviews"
    product_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("products.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    verified_purchase: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        UniqueConstraint("product_id", "author_id", name="uq_reviews_product_author"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        Index("ix_reviews_product_newest", "product_id", "created_at", "id"),
    )


class FavoriteRow(UUIDv7AuditBase):
    __tablename__ = "favorites"
    user_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    __table_args__ = (
        UniqueConstraint("user_id", "product_id", name="uq_favorites_user_product"),
        Index("ix_favorites_user_newest", "user_id", "created_at", "id"),
    )


class GuestCartRow(UUIDv7AuditBase):
    """A cart without an account; the token is stored only as its SHA-256 hash."""

    __tablename__ = "guest_carts"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_used_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    spent_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class CartItemRow(UUIDv7AuditBase):
    """A cart line of a user (``user_id``) or of a guest cart (``guest_cart_id``), never both."""

    __tablename__ = "cart_items"
    user_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=True)
    guest_cart_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID, ForeignKey("guest_carts.id", ondelete="CASCADE"), nullable=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    price_at_add: Mapped[Decimal] = mapped_column(Money)
    __table_args__ = (
        UniqueConstraint("user_id", "product_id", name="uq_cart_items_user_product"),
        UniqueConstraint("guest_cart_id", "product_id", name="uq_cart_items_guest_product"),
        CheckConstraint("quantity BETWEEN 1 AND 99", name="quantity_range"),
        CheckConstraint("(user_id IS NULL) <> (guest_cart_id IS NULL)", name="one_owner"),
    )


class OrderRow(UUIDv7AuditBase):
    __tablename__ = "orders"
    buyer_id: Mapped[uuid.UUID | None] = mapped_column(GUID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="placed")
    total: Mapped[Decimal] = mapped_column(Money)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    __table_args__ = (
        UniqueConstraint("buyer_id", "idempotency_key", name="uq_orders_buyer_idempotency_key"),
        Index("ix_orders_buyer_newest", "buyer_id", "created_at", "id"),
        CheckConstraint("status IN ('placed', 'cancelled')", name="status"),
    )


class OrderLineRow(UUIDv7AuditBase):
    __tablename__ = "order_lines"
    order_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("products.id", ondelete="RESTRICT"), index=True)
    seller_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    buyer_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[Decimal] = mapped_column(Money)
    quantity: Mapped[int] = mapped_column(Integer)
    line_total: Mapped[Decimal] = mapped_column(Money)
    __table_args__ = (Index("ix_order_lines_seller_newest", "seller_id", "created_at", "id"),)


class ReportRow(UUIDv7AuditBase):
    __tablename__ = "reports"
    owner_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="sales")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    period_from: Mapped[datetime.date] = mapped_column(Date)
    period_to: Mapped[datetime.date] = mapped_column(Date)
    file_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    error: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    finished_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class OutboxRow(UUIDv7AuditBase):
    """Jobs written in the same transaction as the change that needs them (transactional outbox).

    A relay hands undispatched rows to the job queue, so a queue outage delays work, never loses it.
    """

    __tablename__ = "outbox"
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB)
    dispatched_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    processed_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    __table_args__ = (Index("ix_outbox_pending", "processed_at", "created_at"),)


class ItemNeighbourRow(UUIDv7AuditBase):
    """The recommendation model's output: one row per product, rebuilt by a scheduled job.

    ``neighbours`` packs the product's top neighbours best first (``adapters.sql.recommendations``
    has the format): ~100k rows at 100k products instead of ~5M pair rows, which took minutes to
    rewrite. ``created_at`` is the build time of the model, the same on every row.
    """

    __tablename__ = "item_neighbours"
    product_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("products.id", ondelete="CASCADE"), unique=True)
    neighbours: Mapped[bytes] = mapped_column(LargeBinary)


class ItemFactorsRow(UUIDv7AuditBase):
    """The model's ALS item vectors: one row, ``model`` packed as ``adapters.sql.recommendations``
    describes; ``created_at`` is the model's build time."""

    __tablename__ = "item_factors"
    model: Mapped[bytes] = mapped_column(LargeBinary)


class FeedRankingRow(UUIDv7AuditBase):
    """A user's feed ranking computed ahead (``ranking``: msgspec JSON of ``list[Ranked]``);
    ``updated_at`` is when its computation began, which tells whether a newer signal exists."""

    __tablename__ = "feed_rankings"
    user_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    ranking: Mapped[bytes] = mapped_column(LargeBinary)


class PopularItemRow(UUIDv7AuditBase):
    """Recent, time-decayed popularity per product (and so per category) for cold starts."""

    __tablename__ = "popular_items"
    product_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("products.id", ondelete="CASCADE"), unique=True)
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID, ForeignKey("categories.id", ondelete="CASCADE"), nullable=True
    )
    score: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_popular_items_category_score", "category_id", "score"),)


PENDING_DELIVERY = text("status = 'pending'")


class WebhookRow(UUIDv7AuditBase):
    """A seller's subscription; ``secret`` is kept as issued because every delivery is signed with it."""

    __tablename__ = "webhooks"
    user_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JsonB)
    secret: Mapped[str] = mapped_column(String(128))
    __table_args__ = (Index("ix_webhooks_user_newest", "user_id", "created_at", "id"),)


class WebhookDeliveryRow(UUIDv7AuditBase):
    """One event for one webhook: the body to send and the attempts so far (unique per pair)."""

    __tablename__ = "webhook_deliveries"
    webhook_id: Mapped[uuid.UUID] = mapped_column(GUID, ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(GUID, index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    first_attempt_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    delivered_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
        Index("ix_webhook_deliveries_webhook_newest", "webhook_id", "created_at", "id"),
        Index(
            "ix_webhook_deliveries_due",
            "next_retry_at",
            postgresql_where=PENDING_DELIVERY,
            sqlite_where=PENDING_DELIVERY,
        ),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    )


metadata = UUIDv7AuditBase.metadata


def table_of(model: type[UUIDv7AuditBase]) -> Table:
    """The Core table behind an ORM class, for column-level statements (typed for mypy)."""
    return cast("Table", model.__table__)


# Core handles of every table, by their full names (statements in ``adapters/sql/statements`` use these).
USERS = table_of(UserRow)
REFRESH_TOKENS = table_of(RefreshTokenRow)
EMAIL_TOKENS = table_of(EmailTokenRow)
CATEGORIES = table_of(CategoryRow)
PRODUCTS = table_of(ProductRow)
REVIEWS = table_of(ReviewRow)
FAVORITES = table_of(FavoriteRow)
GUEST_CARTS = table_of(GuestCartRow)
CART_ITEMS = table_of(CartItemRow)
ORDERS = table_of(OrderRow)
ORDER_LINES = table_of(OrderLineRow)
REPORTS = table_of(ReportRow)
OUTBOX = table_of(OutboxRow)
ITEM_NEIGHBOURS = table_of(ItemNeighbourRow)
ITEM_FACTORS = table_of(ItemFactorsRow)
FEED_RANKINGS = table_of(FeedRankingRow)
POPULAR_ITEMS = table_of(PopularItemRow)
WEBHOOKS = table_of(WebhookRow)
WEBHOOK_DELIVERIES = table_of(WebhookDeliveryRow)
