"""products.category_id and popular_items.category_id nullable: uncategorised products

The contract makes a product's category optional (null = uncategorised). Such products are
listed everywhere except under a category filter, and their popularity rows carry no category.

On SQLite a batch ``alter_column`` would rebuild ``products`` (new rowids under the FTS5 index,
its triggers dropped); dropping a NOT NULL changes nothing on disk, so the stored schema text is
edited instead, the procedure SQLite documents for removing NOT NULL constraints
(https://www.sqlite.org/lang_altertable.html#otheralter).
"""

from __future__ import annotations

import re

from advanced_alchemy.types import GUID
from alembic import op

revision = "a13f00000003"
down_revision = "c5368e179cc0"
TABLES = ("products", "popular_items")
_NOT_NULL = re.compile(r"(category_id\s+[A-Z0-9()]+)\s+NOT NULL", re.IGNORECASE)


def _sqlite_drop_not_null(table: str) -> None:
    bind = op.get_bind()
    sql = str(
        bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar()
    )
    relaxed = _NOT_NULL.sub(r"\1", sql, count=1)
    if relaxed == sql:
        raise RuntimeError(f"{table}.category_id: NOT NULL not found in {sql!r}")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar() or 0)
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (relaxed, table))
    bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    for table in TABLES:
        if op.get_bind().dialect.name == "sqlite":
            _sqlite_drop_not_null(table)
        else:
            op.alter_column(table, "category_id", existing_type=GUID(), nullable=True)


def downgrade() -> None:
    # Uncategorised popularity rows are derived data; uncategorised products block the downgrade.
    op.execute("DELETE FROM popular_items WHERE category_id IS NULL")
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("category_id", existing_type=GUID(), nullable=False)
