"""guest carts: a guest_carts table, and cart lines owned by a user or a guest cart

A cart line keeps one table and one set of statements for both kinds of owner: ``user_id``
becomes nullable, ``guest_cart_id`` joins it, a check says exactly one is set, and each owner
kind has its own unique (owner, product) constraint for the upsert to conflict on (NULLs never
collide, so user lines and guest lines do not meet there).
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from adapters.sql.migrations.helpers import create_index, create_table

revision = "a17c00000004"
down_revision = "a13f00000003"


def upgrade() -> None:
    create_table(
        "guest_carts",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", DateTimeUTC(), nullable=False),
        sa.Column("spent_at", DateTimeUTC(), nullable=True),
        unique=["token_hash"],
    )
    create_index("guest_carts", "last_used_at")

    # SQLite rebuilds the table (batch mode: reflected, copied, renamed; the id columns come back
    # declared NUMERIC(16) instead of BINARY(16), the same column affinity, so values are stored
    # alike); Postgres alters it in place.
    with op.batch_alter_table("cart_items", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=GUID(), nullable=True)
        batch_op.add_column(sa.Column("guest_cart_id", GUID(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_cart_items_guest_cart_id_guest_carts"),
            "guest_carts",
            ["guest_cart_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint("uq_cart_items_guest_product", ["guest_cart_id", "product_id"])
        batch_op.create_check_constraint(
            batch_op.f("ck_cart_items_one_owner"), "(user_id IS NULL) <> (guest_cart_id IS NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM cart_items WHERE guest_cart_id IS NOT NULL")
    with op.batch_alter_table("cart_items", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cart_items_one_owner"), type_="check")
        batch_op.drop_constraint("uq_cart_items_guest_product", type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_cart_items_guest_cart_id_guest_carts"), type_="foreignkey")
        batch_op.drop_column("guest_cart_id")
        batch_op.alter_column("user_id", existing_type=GUID(), nullable=False)
    op.drop_table("guest_carts")
