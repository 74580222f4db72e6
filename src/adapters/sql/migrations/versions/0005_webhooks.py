"""webhooks and webhook_deliveries: sellers' subscriptions and one row per event sent to each"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

from adapters.sql.migrations.helpers import create_index, create_table

revision = "a17w00000005"
down_revision = "a17c00000004"


def upgrade() -> None:
    create_table(
        "webhooks",
        sa.Column("user_id", GUID(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", JsonB, nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        references={"user_id": ("users", "CASCADE")},
    )
    create_index("webhooks", "user_id", "created_at", "id", name="ix_webhooks_user_newest")

    create_table(
        "webhook_deliveries",
        sa.Column("webhook_id", GUID(), nullable=False),
        sa.Column("event_id", GUID(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", DateTimeUTC(), nullable=True),
        sa.Column("first_attempt_at", DateTimeUTC(), nullable=True),
        sa.Column("delivered_at", DateTimeUTC(), nullable=True),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        checks={"status": "status IN ('pending', 'delivered', 'failed')"},
        references={"webhook_id": ("webhooks", "CASCADE")},
        unique_together={"uq_webhook_deliveries_webhook_event": ("webhook_id", "event_id")},
    )
    create_index("webhook_deliveries", "event_id")
    create_index("webhook_deliveries", "webhook_id", "created_at", "id", name="ix_webhook_deliveries_webhook_newest")
    create_index("webhook_deliveries", "next_retry_at", name="ix_webhook_deliveries_due", where="status = 'pending'")


def downgrade() -> None:
    # A table's indexes go with it.
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
