"""Serving benchmark of the recommendations against a seeded database (``DATABASE_URL``).

    uv run marketplace seed --size bench            # into a scratch database
    psql "$DATABASE_URL" -c analyze                  # Postgres: planner statistics, as autovacuum would
    uv run python bench/recs_serving.py --requests 300

Runs a model refresh (load, fit, store times), then times ``GET /api/recommendations`` and
``GET /api/products/{id}/similar`` through the whole app in this process (httpx's ASGI transport:
routing, auth, middleware, JSON), for users with interactions: first requests (cache misses), then
repeats (hits), then misses again while a refresh runs in the background.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid

import click
import httpx
from sqlalchemy import func, select

from adapters.sql.tables import FavoriteRow, ProductRow, table_of
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from entrypoints.wiring import Container


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return (
        f"{name:<34} n={len(ms):4d}  p50={pick(0.5):7.2f} ms  p95={pick(0.95):7.2f} ms  "
        f"p99={pick(0.99):7.2f} ms  mean={statistics.fmean(ms):7.2f} ms"
    )


async def timed(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    r = await client.get(url, headers=headers)
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    return elapsed


async def run(n: int, seed: int) -> None:
    settings = Settings.from_env()
    container = Container(settings)
    app = create_app(settings, container=container)
    rng = random.Random(seed)
    async with container.adapters.requests.db.engine.connect() as conn:
        favorites = table_of(FavoriteRow)
        busiest = select(favorites.c.user_id).group_by(favorites.c.user_id).order_by(func.count().desc()).limit(n * 4)
        users = [row.user_id for row in await conn.execute(busiest)]
        products = [row.id for row in await conn.execute(select(table_of(ProductRow).c.id).limit(20_000))]
    users = rng.sample(users, min(n, len(users)))
    items = rng.sample(products, min(n, len(products)))
    tokens = {
        user: {
            "Authorization": "Bearer "
            + container.adapters.tokens.issue(user_id=user, role="user", token_version=0, family_id=uuid.uuid4())
        }
        for user in users
    }
    result = await container.use_cases.recommendations.refresh_recommendations.execute()
    print("refresh:", result)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for limit in (10, 50):
            url = f"/api/recommendations?limit={limit}"
            await container.adapters.cache.bump("recs")  # every feed a miss again
            miss = [await timed(client, url, tokens[u]) for u in users]
            hit = [await timed(client, url, tokens[u]) for u in users]
            print(summary(f"feed limit={limit} (miss)", miss))
            print(summary(f"feed limit={limit} (hit)", hit))
        miss = [await timed(client, f"/api/products/{p}/similar") for p in items]
        hit = [await timed(client, f"/api/products/{p}/similar") for p in items]
        print(summary("similar limit=10 (miss)", miss))
        print(summary("similar limit=10 (hit)", hit))

        refresh = asyncio.create_task(container.use_cases.recommendations.refresh_recommendations.execute())
        await asyncio.sleep(0.5)
        during: list[float] = []
        while not refresh.done():
            await container.adapters.cache.bump("recs")
            during.append(await timed(client, "/api/recommendations", tokens[rng.choice(users)]))
        print(summary("feed (miss) during a refresh", during), "| refresh:", refresh.result())
    await container.shutdown()


@click.command()
@click.option("--requests", "n", type=int, default=300, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def main(n: int, seed: int) -> None:
    asyncio.run(run(n, seed))


if __name__ == "__main__":
    main()
