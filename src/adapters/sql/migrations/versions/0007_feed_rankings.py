"""feed_rankings: each user's feed ranking computed ahead of requests

Derived data (a refresh or the user's next write recomputes it), so a feed request is one
primary-key read even when the cache has just been emptied.
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

from adapters.sql.migrations.helpers import create_table

revision = "a14r00000007"
down_revision = "a17w00000005"


def upgrade() -> None:
    create_table(
        "feed_rankings",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("ranking", sa.LargeBinary(), nullable=False),
        references={"user_id": ("users", "CASCADE")},
        unique=["user_id"],
    )


def downgrade() -> None:
    op.drop_table("feed_rankings")
