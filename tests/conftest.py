"""Shared fixtures: fast settings, in-memory adapters, and real databases per test run.

Postgres: one database per test run (and xdist worker), migrated once; tables are emptied
between tests. SQLite: one migrated template file, copied per test. Runs never collide.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from adapters.sql.database import migrate, normalize_url

PG_ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = [
    "feed_rankings",
    "webhook_deliveries",
    "webhooks",
    "item_neighbours",
    "popular_items",
    "outbox",
    "reports",
    "order_lines",
    "orders",
    "cart_items",
    "guest_carts",
    "favorites",
    "reviews",
    "products",
    "categories",
    "email_tokens",
    "refresh_tokens",
    "users",
]


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", "").replace("+psycopg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


_services = contextlib.ExitStack()
_services_line = ""


def pytest_configure(config: pytest.Config) -> None:
    """Use the Postgres and Redis that answer; start throw-away ones for those that do not.

    Runs once, in the xdist controller (or the only process), before workers are spawned: the
    workers inherit the URLs through DATABASE_URL / REDIS_URL.
    """
    global PG_ADMIN_URL, REDIS_URL, _services_line
    if hasattr(config, "workerinput"):
        return
    began = time.perf_counter()
    need_pg, need_redis = not _reachable(PG_ADMIN_URL, 5432), not _reachable(REDIS_URL, 6379)
    used = {"PostgreSQL": (PG_ADMIN_URL, "running"), "Redis": (REDIS_URL, "running")}
    if need_pg or need_redis:
        from entrypoints.devservices import DevServicesUnavailable, EmbeddedPostgres, EmbeddedRedis, throwaway_dir

        try:
            base = _services.enter_context(throwaway_dir("marketplace-test-services-"))
            if need_redis:
                redis = EmbeddedRedis(base / "redis")
                _services.callback(redis.stop)
                redis.start()
                REDIS_URL = os.environ["REDIS_URL"] = redis.url
                used["Redis"] = (REDIS_URL, "self-started")
            if need_pg:
                postgres = EmbeddedPostgres(base / "postgres")
                _services.callback(postgres.stop)
                postgres.start()
                PG_ADMIN_URL = os.environ["DATABASE_URL"] = postgres.url
                used["PostgreSQL"] = (PG_ADMIN_URL, "self-started")
        except (DevServicesUnavailable, RuntimeError) as error:
            _services.close()
            pytest.exit(f"Nothing answers at {PG_ADMIN_URL} / {REDIS_URL} and starting our own failed: {error}", 3)
    took = time.perf_counter() - began
    _services_line = (
        "test services: "
        + ", ".join(f"{name} {url} ({how})" for name, (url, how) in used.items())
        + f"; ready in {took:.2f} s"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    _services.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if _services_line and reporter is not None:
        reporter.write_line(_services_line)


def test_settings(**overrides: str) -> Any:
    from entrypoints.settings import Settings

    env = {
        "APP_ENV": "test",
        "JWT_SECRET": "x" * 48,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST_KIB": "1024",
        "LOG_JSON": "false",
        "LOG_LEVEL": "WARNING",
        "AUTH_RATE_LIMIT_PER_MINUTE": "100000",
        # Hundreds of app start-ups in one test process: freezing at each would keep all their garbage.
        "GC_FREEZE": "false",
    }
    env.update(overrides)
    return Settings.from_env(env)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def _in_thread(fn: Any) -> None:
    """Run blocking set-up that owns an event loop, even when called from inside one."""
    import threading

    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            fn()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=guarded)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> Iterator[str]:
    """A fresh, migrated Postgres database for this test run (dropped afterwards)."""
    import asyncpg

    name = f"mkt_test_{os.getpid()}_{worker_id}_{uuid.uuid4().hex[:6]}"
    admin = normalize_url(PG_ADMIN_URL).replace("postgresql+asyncpg", "postgresql")

    async def admin_exec(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(lambda: asyncio.run(admin_exec(f'CREATE DATABASE "{name}"')))
    parsed = urlparse(admin)
    url = parsed._replace(path=f"/{name}").geturl()
    migrate(url)
    yield url
    _in_thread(lambda: asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "test.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _truncate(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE " + ", ".join(TABLES) + " CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def clean_pg_url(pg_url: str) -> AsyncIterator[str]:
    await _truncate(pg_url)
    yield pg_url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def any_uow(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A unit-of-work factory on each persistence adapter, for repository contract tests."""
    if request.param == "memory":
        from adapters.memory.uow import MemoryUnitOfWorkFactory

        yield MemoryUnitOfWorkFactory()
        return
    from adapters.sql.database import open_database
    from adapters.sql.uow import SqlUnitOfWorkFactory

    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        await _truncate(url)
    else:
        url = request.getfixturevalue("sqlite_url")
    db = open_database(url, pool_size=4)
    yield SqlUnitOfWorkFactory(db)
    await db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "postgres":
        url = request.getfixturevalue("pg_url")
        await _truncate(url)
        return str(url)
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture
async def container(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    from entrypoints.wiring import Container

    settings = test_settings(DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var"))
    c = Container(settings)
    yield c
    await c.shutdown()


@pytest.fixture
async def client(container: Any) -> AsyncIterator[Any]:
    """An HTTP client on the real app, over SQLite and over Postgres (parametrized).

    The app runs on the test's own event loop (httpx's ASGI transport), so concurrent requests
    really interleave and the test may use ``container`` directly.
    """
    import httpx

    from entrypoints.http.app import create_app

    app = create_app(container.settings, container=container)
    await container.startup()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        yield c
