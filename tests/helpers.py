"""Small helpers for HTTP tests: create users, log in, build auth headers."""

from __future__ import annotations

import uuid
from typing import Any

PASSWORD = "correct horse battery"


async def register(client: Any, name: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    name = name or f"u{uuid.uuid4().hex[:10]}"
    r = await client.post(
        "/api/auth/register", json={"username": name, "email": f"{name}@example.com", "password": password}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def login(client: Any, login_name: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post("/api/auth/login", json={"email": login_name, "password": password})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def user_headers(client: Any, name: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Register and log in a fresh user; returns (user, Authorization headers)."""
    user = await register(client, name)
    tokens = await login(client, user["username"])
    return user, {"Authorization": f"Bearer {tokens['access_token']}"}


async def admin_headers(client: Any, container: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A fresh user promoted to admin directly through the repository (as the CLI does)."""
    from domain.users import Role

    user = await register(client)

    async def promote() -> None:
        async with container.adapters.requests.uow() as uow:
            stored = await uow.users.get(uuid.UUID(user["id"]))
            stored.role = Role.ADMIN
            await uow.users.update(stored)
            await uow.commit()

    await in_app(client, promote)
    tokens = await login(client, user["username"])
    return user, {"Authorization": f"Bearer {tokens['access_token']}"}


async def in_app(client: Any, fn: Any, *args: Any) -> Any:
    """Run ``await fn(*args)`` on the app's event loop.

    Litestar's test client serves requests from its own thread and loop, where background jobs (emails
    after registration, reports) keep running after a response; direct container calls from the
    test's loop would then share the connection pool and SQLite's write lock across two loops.
    """
    portal = getattr(client, "blocking_portal", None)
    if portal is None:  # a client serving the app on the test's own loop (httpx.ASGITransport)
        return await fn(*args)
    return portal.call(fn, *args)


async def drain_jobs(client: Any, container: Any, timeout: float = 30) -> None:
    """Wait until the in-process job runner is idle (on the app's loop)."""
    await in_app(client, container.adapters.queue.drain, timeout)
