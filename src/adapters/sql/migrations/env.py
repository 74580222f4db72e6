"""Alembic environment, driven by advanced-alchemy's ``AlembicCommands`` (see adapters.sql.database)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from alembic import context
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.tables import metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

config: Any = context.config


def _render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    """Render our Money and advanced-alchemy's types by their import names in migrations."""
    module = type(obj).__module__
    if type_ == "type" and module.startswith(("adapters.sql.types", "advanced_alchemy.types")):
        return f"{type(obj).__name__}()"
    return False


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.version_table_name,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = cast("AsyncEngine", config.engine)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)


if context.is_offline_mode():
    context.configure(
        url=config.db_url,
        target_metadata=metadata,
        literal_binds=True,
        version_table=config.version_table_name,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_migrations_online())
