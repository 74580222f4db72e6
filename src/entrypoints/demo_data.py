"""The demo marketplace: a few accounts with known passwords (see README)."""

from __future__ import annotations

from typing import Any

DEMO_PASSWORD = "demo-password-123"
DEMO_USERS = [("alice", "alice@example.com"), ("bob", "bob@example.com"), ("carol", "carol@example.com")]


async def load_demo_data(container: Any) -> None:
    from domain.users import Role

    people = {}
    for username, email in DEMO_USERS:
        people[username] = await container.use_cases["register_user"].execute(
            username=username, email=email, password=DEMO_PASSWORD
        )
    admin = await container.use_cases["register_user"].execute(
        username="admin", email="admin@example.com", password=DEMO_PASSWORD
    )
    async with container.uow() as uow:
        stored = await uow.users.get(admin.id)
        stored.role = Role.ADMIN
        await uow.users.update(stored)
        await uow.commit()
    from entrypoints.demo_catalog import load_demo_catalog

    await load_demo_catalog(container, people, admin)
