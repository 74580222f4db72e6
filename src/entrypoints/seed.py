"""Demo and benchmark data: ``marketplace seed`` and the ``make run`` first start.

Bulk rows are generated in Python with a seeded RNG (reproducible) and written with
multi-row inserts in batches; denormalised columns (ratings, counts) are computed so they are
exactly what the review and favorite writes would have produced.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, insert, select

from adapters.sql.database import Database
from adapters.sql.tables import (
    CategoryRow,
    FavoriteRow,
    OrderLineRow,
    OrderRow,
    ProductRow,
    ReviewRow,
    UserRow,
    table_of,
)
from application.ports.security import PasswordHasher
from entrypoints.bundles import UseCases
from entrypoints.demo_data import load_demo_data

log = logging.getLogger(__name__)
BATCH = 2_000

ADJECTIVES = [
    "Compact",
    "Wireless",
    "Vintage",
    "Ergonomic",
    "Organic",
    "Portable",
    "Handmade",
    "Smart",
    "Classic",
    "Rugged",
    "Minimalist",
    "Premium",
    "Solar",
    "Foldable",
    "Waterproof",
    "Bamboo",
]
NOUNS = [
    "Headphones",
    "Backpack",
    "Desk Lamp",
    "Coffee Grinder",
    "Keyboard",
    "Water Bottle",
    "Notebook",
    "Camera Strap",
    "Chef Knife",
    "Yoga Mat",
    "Speaker",
    "Teapot",
    "Bicycle Light",
    "Phone Case",
    "Blender",
    "Monitor Stand",
    "Jacket",
    "Sneakers",
    "Board Game",
    "Plant Pot",
]
PHRASES = [
    "built to last",
    "with a two-year warranty",
    "made from recycled materials",
    "loved by commuters",
    "perfect for small kitchens",
    "ships in plain packaging",
    "designed in Lisbon",
    "with a soft-touch finish",
    "easy to clean",
    "energy efficient",
]
CATEGORY_TREE = {
    "Electronics": ["Phones", "Laptops", "Audio", "Cameras", "Accessories"],
    "Home": ["Kitchen", "Furniture", "Lighting", "Garden", "Decor"],
    "Books": ["Fiction", "Science", "Cooking", "Travel"],
    "Sports": ["Cycling", "Running", "Yoga", "Outdoor"],
    "Fashion": ["Shoes", "Jackets", "Bags", "Watches"],
    "Toys": ["Board Games", "Puzzles", "Outdoor Toys"],
    "Beauty": ["Skincare", "Fragrance"],
    "Office": ["Stationery", "Desks", "Chairs"],
    "Food": ["Coffee", "Tea", "Snacks"],
}


@dataclass(frozen=True)
class SeedSize:
    users: int = 50
    categories: int = 0  # 0: the built-in tree
    products: int = 300
    reviews: int = 600
    favorites: int = 500
    orders: int = 150


SIZES = {
    "demo": SeedSize(),
    "small": SeedSize(users=500, products=5_000, reviews=10_000, favorites=8_000, orders=2_000),
    "bench": SeedSize(users=10_000, categories=50, products=100_000, reviews=300_000, favorites=200_000, orders=50_000),
}


def _uuid7(rng: random.Random, when: datetime) -> uuid.UUID:
    ms = int(when.timestamp() * 1000)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    return uuid.UUID(int=value)


def _batches(rows: Iterable[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def seed_database(
    db: Database,
    hasher: PasswordHasher,
    size: SeedSize,
    *,
    seed: int = 42,
    password_hash: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write a whole marketplace; returns row counts.

    Into a database that has users already (``seed --force``) it adds more: user numbers continue
    after the existing ones, the existing categories are used instead of new ones, and the random
    stream differs from the first seeding's (the same stream would repeat its ids).
    """
    first_user = await count_users(db)
    async with db.engine.connect() as conn:
        existing_categories = (
            await conn.execute(select(table_of(CategoryRow).c.id, table_of(CategoryRow).c.parent_id))
        ).all()
    rng = random.Random(seed if not first_user else f"{seed}:{first_user}")
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=365)
    report = progress or (lambda _name, _n: None)
    pw: str = password_hash or str(await hasher.hash("demo-password-123"))

    def moment() -> datetime:
        return start + timedelta(seconds=rng.randrange(int((now - start).total_seconds())))

    users = []
    for i in range(size.users):
        created = moment()
        users.append(
            {
                "id": _uuid7(rng, created),
                "username": f"user{first_user + i:05d}",
                "email": f"user{first_user + i:05d}@example.com",
                "password_hash": pw,
                "role": "user",
                "email_verified": True,
                "token_version": 0,
                "created_at": created,
                "updated_at": created,
            }
        )
    categories: list[dict[str, Any]] = []
    names: list[tuple[str, str | None]] = []
    for parent, children in CATEGORY_TREE.items():
        names.append((parent, None))
        names.extend((child, parent) for child in children)
    if size.categories:
        i = 0
        while len(names) < size.categories:
            parent = list(CATEGORY_TREE)[i % len(CATEGORY_TREE)]
            names.append((f"{parent} Extras {i + 1}", parent))
            i += 1
        names = names[: max(size.categories, len(CATEGORY_TREE))]
    ids: dict[str, uuid.UUID] = {}
    for category_name, parent_name in names:
        ids[category_name] = _uuid7(rng, start)
        slug = category_name.lower().replace(" ", "-")
        categories.append(
            {
                "id": ids[category_name],
                "name": category_name,
                "slug": slug,
                "parent_id": ids[parent_name] if parent_name else None,
                "created_at": start,
                "updated_at": start,
            }
        )
    if existing_categories:
        categories = []
        known = [{"id": row.id, "parent_id": row.parent_id} for row in existing_categories]
    else:
        known = categories
    leaf_ids = [c["id"] for c in known if c["parent_id"] is not None] or [c["id"] for c in known]

    products = []
    for _ in range(size.products):
        created = moment()
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        products.append(
            {
                "id": _uuid7(rng, created),
                "seller_id": rng.choice(users)["id"],
                "category_id": rng.choice(leaf_ids),
                "name": name,
                "description": f"A {name.lower()} {rng.choice(PHRASES)}, {rng.choice(PHRASES)}.",
                "price": Decimal(rng.randrange(199, 50_000)) / 100,
                "image_url": None,
                "stock": rng.randrange(0, 200),
                "rating_sum": 0,
                "review_count": 0,
                "rating_avg": Decimal("0"),
                "favorite_count": 0,
                "created_at": created,
                "updated_at": created,
            }
        )
    by_id = {p["id"]: p for p in products}

    reviews: list[dict[str, Any]] = []
    seen: set[tuple[Any, Any]] = set()
    attempts = 0
    while len(reviews) < size.reviews and products and attempts < size.reviews * 3:
        attempts += 1
        product, author = rng.choice(products), rng.choice(users)
        key = (product["id"], author["id"])
        if key in seen or author["id"] == product["seller_id"]:
            continue
        seen.add(key)
        rating = rng.choices([1, 2, 3, 4, 5], weights=[1, 1, 3, 5, 6])[0]
        created = max(moment(), product["created_at"])
        reviews.append(
            {
                "id": _uuid7(rng, created),
                "product_id": product["id"],
                "author_id": author["id"],
                "rating": rating,
                "comment": rng.choice(PHRASES).capitalize() + ".",
                "verified_purchase": False,
                "created_at": created,
                "updated_at": created,
            }
        )
        product["rating_sum"] += rating
        product["review_count"] += 1
    for product in products:
        if product["review_count"]:
            product["rating_avg"] = (Decimal(product["rating_sum"]) / product["review_count"]).quantize(Decimal("0.01"))

    favorites: list[dict[str, Any]] = []
    seen = set()
    attempts = 0
    popular = products[: max(1, len(products) // 5)]
    while len(favorites) < size.favorites and products and attempts < size.favorites * 3:
        attempts += 1
        product = rng.choice(popular if rng.random() < 0.5 else products)
        user = rng.choice(users)
        key = (user["id"], product["id"])
        if key in seen:
            continue
        seen.add(key)
        created = max(moment(), product["created_at"])
        favorites.append(
            {
                "id": _uuid7(rng, created),
                "user_id": user["id"],
                "product_id": product["id"],
                "created_at": created,
                "updated_at": created,
            }
        )
        product["favorite_count"] += 1

    orders, lines = [], []
    for _ in range(size.orders if products else 0):
        buyer = rng.choice(users)
        created = moment()
        order_id = _uuid7(rng, created)
        total = Decimal("0")
        chosen = {
            p["id"]: p
            for p in (rng.choice(products) for _ in range(rng.randint(1, 3)))
            if p["seller_id"] != buyer["id"]
        }
        if not chosen:
            continue
        for product in chosen.values():
            quantity = rng.randint(1, 3)
            line_total = product["price"] * quantity
            total += line_total
            lines.append(
                {
                    "id": _uuid7(rng, created),
                    "order_id": order_id,
                    "product_id": product["id"],
                    "seller_id": product["seller_id"],
                    "buyer_id": buyer["id"],
                    "name": product["name"],
                    "unit_price": product["price"],
                    "quantity": quantity,
                    "line_total": line_total,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        orders.append(
            {
                "id": order_id,
                "buyer_id": buyer["id"],
                "status": "placed",
                "total": total,
                "idempotency_key": None,
                "created_at": created,
                "updated_at": created,
            }
        )
    bought = {(line["buyer_id"], line["product_id"]) for line in lines}
    for review in reviews:
        review["verified_purchase"] = (review["author_id"], review["product_id"]) in bought

    plan: list[tuple[str, Table, list[dict[str, Any]]]] = [
        ("users", table_of(UserRow), users),
        ("categories", table_of(CategoryRow), categories),
        ("products", table_of(ProductRow), list(by_id.values())),
        ("reviews", table_of(ReviewRow), reviews),
        ("favorites", table_of(FavoriteRow), favorites),
        ("orders", table_of(OrderRow), orders),
        ("order_lines", table_of(OrderLineRow), lines),
    ]
    counts: dict[str, int] = {}
    async with db.engine.begin() as conn:
        for name, table, rows in plan:
            for batch in _batches(rows):
                await conn.execute(insert(table), batch)
                report(name, len(batch))
            counts[name] = len(rows)
    return counts


async def count_users(db: Database) -> int:
    """Users in the database (deleted ones too): seeding refuses, or adds after them."""
    async with db.engine.connect() as conn:
        count: int = (await conn.execute(select(func.count()).select_from(table_of(UserRow)))).scalar_one()
    return count


async def seed_if_empty(db: Database, use_cases: UseCases) -> bool:
    """Load demo data when there are no users yet; returns True when it seeded."""
    if await count_users(db):
        return False
    await load_demo_data(use_cases.auth, use_cases.users, use_cases.catalog)
    return True
