"""item_neighbours: one row per product with its neighbour list packed in one value

The first layout (one row per pair) meant ~5M rows at 100k products × 50 neighbours: rewriting
them with four indexes and two foreign keys took 220-260 s per refresh on Postgres and left 5M
dead tuples every 15 minutes. One row per product is ~100k rows, and a feed request reads one row
per item the user touched instead of fifty. The table only holds derived data (the next refresh
rebuilds it), so it is recreated rather than converted.
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

from adapters.sql.migrations.helpers import create_pairwise_item_neighbours, create_table

revision = "c5368e179cc0"
down_revision = "c2853da890f0"


def upgrade() -> None:
    op.drop_table("item_neighbours")
    create_table(
        "item_neighbours",
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("neighbours", sa.LargeBinary(), nullable=False),
        references={"product_id": ("products", "CASCADE")},
        unique=["product_id"],
    )


def downgrade() -> None:
    op.drop_table("item_neighbours")
    create_pairwise_item_neighbours()
