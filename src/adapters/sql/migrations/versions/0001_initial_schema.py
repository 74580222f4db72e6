"""initial schema"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

from adapters.sql.migrations.helpers import create_index, create_pairwise_item_neighbours, create_table
from adapters.sql.types import Money

revision = "c2853da890f0"
down_revision = None


LIVE = "withdrawn_at IS NULL"  # the product listings' partial indexes cover live products only


def upgrade() -> None:
    create_table(
        "categories",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("parent_id", GUID(), nullable=True),
        references={"parent_id": ("categories", "RESTRICT")},
        unique=["slug"],
    )
    create_index("categories", "parent_id")

    create_table(
        "outbox",
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", JsonB, nullable=False),
        sa.Column("dispatched_at", DateTimeUTC(), nullable=True),
        sa.Column("processed_at", DateTimeUTC(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
    )
    create_index("outbox", "processed_at", "created_at", name="ix_outbox_pending")

    create_table(
        "users",
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", DateTimeUTC(), nullable=True),
        checks={"role": "role IN ('user', 'admin')"},
    )
    # Usernames and emails are unique case-insensitively.
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    create_table(
        "email_tokens",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", DateTimeUTC(), nullable=False),
        sa.Column("used_at", DateTimeUTC(), nullable=True),
        references={"user_id": ("users", "CASCADE")},
        unique=["token_hash"],
    )
    create_index("email_tokens", "user_id")

    create_table(
        "orders",
        sa.Column("buyer_id", GUID(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", Money(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        checks={"status": "status IN ('placed', 'cancelled')"},
        references={"buyer_id": ("users", "SET NULL")},
        unique_together={"uq_orders_buyer_idempotency_key": ("buyer_id", "idempotency_key")},
    )
    create_index("orders", "buyer_id", "created_at", "id", name="ix_orders_buyer_newest")

    create_table(
        "products",
        sa.Column("seller_id", GUID(), nullable=False),
        sa.Column("category_id", GUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price", Money(), nullable=False),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("rating_sum", sa.Integer(), nullable=False),
        sa.Column("review_count", sa.Integer(), nullable=False),
        sa.Column("rating_avg", Money(), nullable=False),
        sa.Column("favorite_count", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", DateTimeUTC(), nullable=True),
        checks={
            "price_positive": "price > 0",
            "counts_nonnegative": "review_count >= 0 AND favorite_count >= 0",
            "stock_nonnegative": "stock >= 0",
        },
        references={"category_id": ("categories", "RESTRICT"), "seller_id": ("users", "RESTRICT")},
    )
    create_index("products", "category_id")
    create_index("products", "category_id", "created_at", "id", name="ix_products_category_newest", where=LIVE)
    create_index("products", "category_id", "price", "id", name="ix_products_category_price", where=LIVE)
    create_index("products", "category_id", "rating_avg", "id", name="ix_products_category_rating", where=LIVE)
    create_index("products", "created_at", "id", name="ix_products_newest", where=LIVE)
    create_index("products", "price", "id", name="ix_products_price", where=LIVE)
    create_index("products", "rating_avg", "id", name="ix_products_rating", where=LIVE)
    create_index("products", "seller_id")
    create_index("products", "seller_id", "created_at", "id", name="ix_products_seller_newest", where=LIVE)

    create_table(
        "refresh_tokens",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("family_id", GUID(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", DateTimeUTC(), nullable=False),
        sa.Column("used_at", DateTimeUTC(), nullable=True),
        sa.Column("revoked_at", DateTimeUTC(), nullable=True),
        references={"user_id": ("users", "CASCADE")},
        unique=["token_hash"],
    )
    create_index("refresh_tokens", "family_id")
    create_index("refresh_tokens", "user_id")

    create_table(
        "reports",
        sa.Column("owner_id", GUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("file_path", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.String(length=1024), nullable=True),
        sa.Column("finished_at", DateTimeUTC(), nullable=True),
        references={"owner_id": ("users", "CASCADE")},
    )
    create_index("reports", "owner_id")

    create_table(
        "cart_items",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("price_at_add", Money(), nullable=False),
        checks={"quantity_range": "quantity BETWEEN 1 AND 99"},
        references={"product_id": ("products", "CASCADE"), "user_id": ("users", "CASCADE")},
        unique_together={"uq_cart_items_user_product": ("user_id", "product_id")},
    )
    create_index("cart_items", "product_id")

    create_table(
        "favorites",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("product_id", GUID(), nullable=False),
        references={"product_id": ("products", "CASCADE"), "user_id": ("users", "CASCADE")},
        unique_together={"uq_favorites_user_product": ("user_id", "product_id")},
    )
    create_index("favorites", "product_id")
    create_index("favorites", "user_id", "created_at", "id", name="ix_favorites_user_newest")

    create_pairwise_item_neighbours()

    create_table(
        "order_lines",
        sa.Column("order_id", GUID(), nullable=False),
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("seller_id", GUID(), nullable=True),
        sa.Column("buyer_id", GUID(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_price", Money(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("line_total", Money(), nullable=False),
        references={
            "buyer_id": ("users", "SET NULL"),
            "order_id": ("orders", "CASCADE"),
            "product_id": ("products", "RESTRICT"),
            "seller_id": ("users", "SET NULL"),
        },
    )
    create_index("order_lines", "buyer_id")
    create_index("order_lines", "order_id")
    create_index("order_lines", "product_id")
    create_index("order_lines", "seller_id", "created_at", "id", name="ix_order_lines_seller_newest")

    create_table(
        "popular_items",
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("category_id", GUID(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        references={"category_id": ("categories", "CASCADE"), "product_id": ("products", "CASCADE")},
        unique=["product_id"],
    )
    create_index("popular_items", "category_id", "score", name="ix_popular_items_category_score")

    create_table(
        "reviews",
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("author_id", GUID(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("verified_purchase", sa.Boolean(), nullable=False),
        checks={"rating_range": "rating BETWEEN 1 AND 5"},
        references={"author_id": ("users", "CASCADE"), "product_id": ("products", "CASCADE")},
        unique_together={"uq_reviews_product_author": ("product_id", "author_id")},
    )
    create_index("reviews", "author_id")
    create_index("reviews", "product_id", "created_at", "id", name="ix_reviews_product_newest")

    _create_search()


def _create_search() -> None:
    """Full-text search over name and description: tsvector + GIN on Postgres, FTS5 on SQLite."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE products ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(name, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'B')) STORED"
        )
        op.execute("CREATE INDEX ix_products_search ON products USING GIN (search_vector)")
        return
    op.execute(
        "CREATE VIRTUAL TABLE products_fts USING fts5(name, description, content='products', "
        "content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')"
    )
    op.execute(
        "CREATE TRIGGER products_fts_ai AFTER INSERT ON products BEGIN "
        "INSERT INTO products_fts(rowid, name, description) VALUES (new.rowid, new.name, new.description); END"
    )
    op.execute(
        "CREATE TRIGGER products_fts_ad AFTER DELETE ON products BEGIN "
        "INSERT INTO products_fts(products_fts, rowid, name, description) "
        "VALUES ('delete', old.rowid, old.name, old.description); END"
    )
    op.execute(
        "CREATE TRIGGER products_fts_au AFTER UPDATE OF name, description ON products BEGIN "
        "INSERT INTO products_fts(products_fts, rowid, name, description) "
        "VALUES ('delete', old.rowid, old.name, old.description); "
        "INSERT INTO products_fts(rowid, name, description) VALUES (new.rowid, new.name, new.description); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("products_fts_ai", "products_fts_ad", "products_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS products_fts")
    # In the reverse order of their creation; a table's indexes go with it.
    for table in (
        "reviews",
        "popular_items",
        "order_lines",
        "item_neighbours",
        "favorites",
        "cart_items",
        "reports",
        "refresh_tokens",
        "products",
        "orders",
        "email_tokens",
        "users",
        "outbox",
        "categories",
    ):
        op.drop_table(table)
