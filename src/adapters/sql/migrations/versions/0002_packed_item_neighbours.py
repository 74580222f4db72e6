"""item_neighbours: one row per product with its neighbour list packed in one value

The first layout (one row per pair) meant ~5M rows at 100k products × 50 neighbours: rewriting
them with four indexes and two foreign keys took 220-260 s per refresh on Postgres and left 5M
dead tuples every 15 minutes. One row per product is ~100k rows, and a feed request reads one row
per item the user touched instead of fifty. The table only holds derived data (the next refresh
rebuilds it), so it is recreated rather than converted.

Revision ID: c5368e179cc0
Revises: c2853da890f0
Create Date: 2026-11-26 05:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "c5368e179cc0"
down_revision = "c2853da890f0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("item_neighbours")
    op.create_table(
        "item_neighbours",
        sa.Column("id", GUID(), nullable=False),
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("neighbours", sa.LargeBinary(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(), nullable=False),
        sa.Column("updated_at", DateTimeUTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_item_neighbours_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_neighbours")),
        sa.UniqueConstraint("product_id", name=op.f("uq_item_neighbours_product_id")),
    )


def downgrade() -> None:
    op.drop_table("item_neighbours")
    op.create_table(
        "item_neighbours",
        sa.Column("id", GUID(), nullable=False),
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("neighbour_id", GUID(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(), nullable=False),
        sa.Column("updated_at", DateTimeUTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["neighbour_id"],
            ["products.id"],
            name=op.f("fk_item_neighbours_neighbour_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_item_neighbours_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_neighbours")),
        sa.UniqueConstraint("product_id", "neighbour_id", name="uq_item_neighbours_pair"),
    )
    with op.batch_alter_table("item_neighbours", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_item_neighbours_neighbour_id"), ["neighbour_id"], unique=False)
        batch_op.create_index("ix_item_neighbours_product_score", ["product_id", "score"], unique=False)
