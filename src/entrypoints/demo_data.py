"""The demo marketplace: a few accounts with known passwords (see README)."""

from __future__ import annotations

from entrypoints.bundles import AuthUseCases, CatalogUseCases, UserUseCases
from entrypoints.demo_catalog import load_demo_catalog

DEMO_PASSWORD = "demo-password-123"
DEMO_USERS = [("alice", "alice@example.com"), ("bob", "bob@example.com"), ("carol", "carol@example.com")]


async def load_demo_data(auth: AuthUseCases, users: UserUseCases, catalog: CatalogUseCases) -> None:
    people = {}
    for username, email in DEMO_USERS:
        people[username] = await auth.register.execute(username=username, email=email, password=DEMO_PASSWORD)
    admin = await auth.register.execute(username="admin", email="admin@example.com", password=DEMO_PASSWORD)
    await users.grant_admin.execute(admin.id)
    await load_demo_catalog(catalog, people, admin)
