"""What the migrations write alike, written once.

Every table has advanced-alchemy's audit columns (``id``, ``sa_orm_sentinel``, ``created_at``,
``updated_at``) and a primary key on ``id``; constraints and indexes are named after the naming
convention of ``adapters.sql.tables``: ``pk_<table>``, ``ck_<table>_<name>``,
``fk_<table>_<column>_<referred table>``, ``uq_<table>_<column>``, ``ix_<table>_<column>``. A
migration states only what is particular to its tables; the DDL is the one autogenerate wrote out
in full. The names are marked final (``op.f``), so a later change of the convention cannot rename
what an old migration creates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op


def create_table(
    name: str,
    *columns: sa.Column[Any],
    checks: Mapping[str, str] | None = None,
    references: Mapping[str, tuple[str, str]] | None = None,
    unique: Sequence[str] = (),
    unique_together: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Create ``name`` with its own ``columns`` between ``id`` and the audit columns.

    ``checks`` maps a check's short name to its condition; ``references`` maps a column to the
    table whose id it refers to and its ``ON DELETE`` action; ``unique`` lists single unique
    columns; ``unique_together`` maps a constraint's full name to its columns.
    """
    constraints: list[sa.Constraint] = [
        sa.CheckConstraint(condition, name=op.f(f"ck_{name}_{check}")) for check, condition in (checks or {}).items()
    ]
    constraints += [
        sa.ForeignKeyConstraint([column], [f"{table}.id"], name=op.f(f"fk_{name}_{column}_{table}"), ondelete=ondelete)
        for column, (table, ondelete) in (references or {}).items()
    ]
    constraints.append(sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")))
    constraints += [sa.UniqueConstraint(column, name=op.f(f"uq_{name}_{column}")) for column in unique]
    constraints += [
        sa.UniqueConstraint(*together, name=constraint) for constraint, together in (unique_together or {}).items()
    ]
    op.create_table(
        name,
        sa.Column("id", GUID(), nullable=False),
        *columns,
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(), nullable=False),
        sa.Column("updated_at", DateTimeUTC(), nullable=False),
        *constraints,
    )


def create_index(table: str, *columns: str, name: str | None = None, where: str | None = None) -> None:
    """An index on ``columns``, named ``ix_<table>_<first column>`` unless ``name`` is given.

    ``where`` makes it a partial index, on both databases.
    """
    condition = sa.text(where) if where is not None else None
    op.create_index(
        name or op.f(f"ix_{table}_{columns[0]}"),
        table,
        list(columns),
        unique=False,
        postgresql_where=condition,
        sqlite_where=condition,
    )


def create_pairwise_item_neighbours() -> None:
    """``item_neighbours`` as the initial schema made it: one row per (product, neighbour) pair.

    Created by the initial schema and restored by the downgrade of the packed layout that
    replaced it.
    """
    create_table(
        "item_neighbours",
        sa.Column("product_id", GUID(), nullable=False),
        sa.Column("neighbour_id", GUID(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        references={"neighbour_id": ("products", "CASCADE"), "product_id": ("products", "CASCADE")},
        unique_together={"uq_item_neighbours_pair": ("product_id", "neighbour_id")},
    )
    create_index("item_neighbours", "neighbour_id")
    create_index("item_neighbours", "product_id", "score", name="ix_item_neighbours_product_score")
