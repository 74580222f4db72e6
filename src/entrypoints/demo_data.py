"""The demo marketplace: a few accounts with known passwords (see README)."""

from __future__ import annotations

from application.ports.persistence import UnitOfWorkFactory
from domain.users import Role
from entrypoints.bundles import AuthUseCases, CatalogUseCases
from entrypoints.demo_catalog import load_demo_catalog

DEMO_PASSWORD = "demo-password-123"
DEMO_USERS = [("alice", "alice@example.com"), ("bob", "bob@example.com"), ("carol", "carol@example.com")]


async def load_demo_data(auth: AuthUseCases, catalog: CatalogUseCases, uow: UnitOfWorkFactory) -> None:
    people = {}
    for username, email in DEMO_USERS:
        people[username] = await auth.register.execute(username=username, email=email, password=DEMO_PASSWORD)
    admin = await auth.register.execute(username="admin", email="admin@example.com", password=DEMO_PASSWORD)
    async with uow() as unit:
        stored = await unit.users.get(admin.id)
        assert stored is not None
        stored.role = Role.ADMIN
        await unit.users.update(stored)
        await unit.commit()
    await load_demo_catalog(catalog, people, admin)
