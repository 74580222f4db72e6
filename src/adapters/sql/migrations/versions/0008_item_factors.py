"""item_factors: the model's ALS item vectors, one row holding them all

Derived data like item_neighbours (the next refresh rebuilds it). One packed value rather than a
row per product: a feed ranking scores every product with a vector, so a process loads them all
at once, after each refresh.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adapters.sql.migrations.helpers import create_table

revision = "a14f00000008"
down_revision = "a14r00000007"


def upgrade() -> None:
    create_table("item_factors", sa.Column("model", sa.LargeBinary(), nullable=False))


def downgrade() -> None:
    op.drop_table("item_factors")
