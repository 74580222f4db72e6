"""feed_rankings: each user's feed ranking computed ahead of requests

Derived data (a refresh or the user's next write recomputes it), so a feed request is one
primary-key read even when the cache has just been emptied.

Revision ID: a14r00000007
Revises: a17w00000005
Create Date: 2026-12-04 21:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "a14r00000007"
down_revision = "a17w00000005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_rankings",
        sa.Column("id", GUID(), nullable=False),
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("ranking", sa.LargeBinary(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(), nullable=False),
        sa.Column("updated_at", DateTimeUTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_rankings_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_rankings")),
        sa.UniqueConstraint("user_id", name=op.f("uq_feed_rankings_user_id")),
    )


def downgrade() -> None:
    op.drop_table("feed_rankings")
