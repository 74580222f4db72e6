"""Demo data for ``make run``: loaded once into an empty database."""

from __future__ import annotations

import logging

from entrypoints.settings import Settings

log = logging.getLogger(__name__)


async def seed_if_empty(settings: Settings) -> bool:
    """Load demo data when there are no users yet; returns True when it seeded."""
    from sqlalchemy import func, select

    from adapters.sql.tables import UserRow
    from entrypoints.container import Container

    container = Container(settings)
    try:
        async with container.db.engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(UserRow.__table__))).scalar_one()
        if count:
            return False
        from entrypoints.demo_data import load_demo_data

        await load_demo_data(container)
        return True
    finally:
        await container.shutdown()
