"""The bench database and what the load needs from it: seeding, ids, categories, users, carts, tokens.

The harness talks to Postgres directly (asyncpg) to pick realistic keys and to put carts in a
known state between phases; it never imports project code for that, so a refactor of the
project cannot silently change what is measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from servers import BIN
from uuid_utils.compat import uuid7

PASSWORD = "demo-password-123"
CART_PRODUCTS = 2_000  # products given "infinite" stock, used by add-to-cart and checkout
SEARCH_TERMS = [
    "wireless",
    "bamboo",
    "headphones",
    "coffee grinder",
    "yoga mat",
    "waterproof jacket",
    "desk lamp",
    "portable speaker",
    "vintage camera strap",
    "chef knife",
    "organic tea",
    "smart water bottle",
    "plant pot",
    "rugged backpack",
    "ergonomic keyboard",
    "solar bicycle light",
    "minimalist notebook",
    "premium blender",
    "foldable monitor stand",
    "handmade teapot",
    "classic sneakers",
    "compact board game",
    "energy efficient",
    "recycled materials",
    "easy to clean",
    "two-year warranty",
    "lisbon",
    "commuters",
    "small kitchens",
    "soft-touch finish",
]


def admin_dsn(dsn: str) -> str:
    """The same server, database ``postgres`` (to drop and create the bench database)."""
    return dsn.rsplit("/", 1)[0] + "/postgres"


def run_cli(args: list[str], env: dict[str, str]) -> float:
    """Run ``marketplace ARGS`` with the console attached (progress bars show); seconds taken."""
    started = time.perf_counter()
    subprocess.run([str(BIN / "marketplace"), *args], env=env, check=True)
    return time.perf_counter() - started


async def recreate_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin_dsn(dsn))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def database_exists(dsn: str) -> bool:
    name = dsn.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin_dsn(dsn))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


@dataclass
class Fixtures:
    """Keys the load rotates over; all chosen with a seeded RNG, so runs are comparable."""

    product_ids: list[str]  # every live product, shuffled
    leaf_categories: list[str]  # categories without children, with ≥ 1,100 live products
    users: list[tuple[str, str]]  # (id, email), in username order
    cart_products: list[tuple[str, str]]  # (product id, seller id) with huge stock
    search_terms: list[str] = field(default_factory=lambda: list(SEARCH_TERMS))


async def prepare(dsn: str, seed: int, max_users: int) -> tuple[Fixtures, float]:
    """Give the cart products plenty of stock, VACUUM ANALYZE, and read the fixtures."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(dsn)
    try:
        ids = [str(r[0]) for r in await conn.fetch("SELECT id FROM products WHERE withdrawn_at IS NULL ORDER BY id")]
        rng.shuffle(ids)
        cart = [
            (str(r[0]), str(r[1]))
            for r in await conn.fetch(
                "SELECT id, seller_id FROM products WHERE id = ANY($1::uuid[]) ORDER BY id", ids[-CART_PRODUCTS:]
            )
        ]
        await conn.execute(
            "UPDATE products SET stock = 1000000000 WHERE id = ANY($1::uuid[]) AND stock < 1000000",
            [p for p, _ in cart],
        )
        leaves = await conn.fetch(
            """SELECT c.id FROM categories c JOIN products p ON p.category_id = c.id AND p.withdrawn_at IS NULL
               WHERE NOT EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = c.id)
               GROUP BY c.id HAVING count(*) >= 1100 ORDER BY c.id"""
        )
        users = [
            (str(r[0]), r[1])
            for r in await conn.fetch(
                "SELECT id, email FROM users WHERE deleted_at IS NULL AND email LIKE 'user%@example.com' "
                "ORDER BY username LIMIT $1",
                max_users,
            )
        ]
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        vacuum = time.perf_counter() - started
    finally:
        await conn.close()
    return Fixtures(ids, [str(r[0]) for r in leaves], users, cart), vacuum


async def fill_carts(dsn: str, users: list[str], cart_products: list[tuple[str, str]], lines: int) -> None:
    """Empty every cart, then give each user ``lines`` lines of products they do not sell (and
    vacuum the table)."""
    rows = []
    now = time.time()
    for i, user in enumerate(users if lines else []):
        picked = 0
        for k in range(len(cart_products)):
            product, seller = cart_products[(i * 7 + k * 13) % len(cart_products)]
            if seller != user:
                rows.append((uuid7(), user, product))
                picked += 1
                if picked == lines:
                    break
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM cart_items")
            await conn.execute(
                """INSERT INTO cart_items (id, user_id, product_id, quantity, price_at_add, created_at, updated_at)
                   SELECT r.id, r.user_id, r.product_id, 1, p.price, to_timestamp($4), to_timestamp($4)
                   FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS r(id, user_id, product_id)
                   JOIN products p ON p.id = r.product_id
                   ON CONFLICT (user_id, product_id) DO NOTHING""",
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                now,
            )
        # Every server starts from the same table: without this, the lines earlier runs deleted
        # pile up as dead rows (200k after a few rounds) and slow whoever runs last.
        await conn.execute("VACUUM ANALYZE cart_items")
    finally:
        await conn.close()


async def _login_all(base_url: str, users: list[tuple[str, str]], concurrency: int) -> dict[str, str]:
    tokens: dict[str, str] = {}
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for user in users:
        queue.put_nowait(user)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            user_id, email = queue.get_nowait()
            for _attempt in range(5):
                response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
                if response.status_code == 200:
                    tokens[user_id] = response.json()["access_token"]
                    break
                if response.status_code != 429:
                    raise RuntimeError(f"login of {email} failed: {response.status_code} {response.text[:200]}")
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return tokens


def login(
    base_url: str, users: list[tuple[str, str]], cache: Path, fingerprint: str, concurrency: int = 32
) -> tuple[dict[str, str], float]:
    """Access tokens for ``users`` (user id → token), from ``cache`` while still valid for this database."""
    try:
        saved = json.loads(cache.read_text())
        if saved["fingerprint"] == fingerprint and saved["expires"] > time.time() + 3600:
            tokens: dict[str, str] = saved["tokens"]
            if all(user_id in tokens for user_id, _ in users):
                return tokens, 0.0
    except (OSError, ValueError, KeyError):
        pass
    started = time.perf_counter()
    tokens = asyncio.run(_login_all(base_url, users, concurrency))
    took = time.perf_counter() - started
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"fingerprint": fingerprint, "expires": time.time() + 3 * 3600, "tokens": tokens}))
    os.chmod(cache, 0o600)
    return tokens, took
