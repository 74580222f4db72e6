"""EXPLAIN (ANALYZE, BUFFERS) for the hot catalog listings on a 100,000-product Postgres database.

    uv run python bench/explain_catalog.py [postgresql://postgres@127.0.0.1:5432/mkt_explain]

Creates and migrates the database when missing, seeds it in SQL with ``generate_series`` (users,
a two-level category tree, 100k products with ratings and a few withdrawn, favorites), runs the
exact statements the project sends on Postgres for each hot listing, favorites and reviews page
and the category counts (``adapters.sql.statements``, compiled as the service compiles them), and
writes the plans to ``bench/plans/<name>.txt`` plus a summary
(index used, execution time) on stdout.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from sqlalchemy import func, select, text  # noqa: E402

from adapters.sql.catalog_queries import SqlCatalogQueries  # noqa: E402
from adapters.sql.database import migrate, open_database  # noqa: E402
from adapters.sql.pg_pool import STATEMENTS  # noqa: E402
from adapters.sql.statements import categories as category_sql  # noqa: E402
from adapters.sql.statements import favorites as favorite_sql  # noqa: E402
from adapters.sql.statements import reviews as review_sql  # noqa: E402
from adapters.sql.tables import FAVORITES, PRODUCTS, REVIEWS  # noqa: E402
from application.views.catalog import ProductFilter, ProductSort  # noqa: E402
from domain.catalog import descendants  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/mkt_explain"
PRODUCT_COUNT = 100_000
PLANS = ROOT / "bench" / "plans"


SEED = f"""
INSERT INTO users (id, username, email, password_hash, role, email_verified, token_version, created_at, updated_at)
SELECT gen_random_uuid(), 'seller' || g, 'seller' || g || '@example.com', '!', 'user', true, 0, now(), now()
FROM generate_series(1, 1000) g;

INSERT INTO categories (id, name, slug, parent_id, created_at, updated_at)
SELECT gen_random_uuid(), 'Department ' || g, 'department-' || g, NULL, now(), now() FROM generate_series(1, 10) g;
INSERT INTO categories (id, name, slug, parent_id, created_at, updated_at)
SELECT gen_random_uuid(), c.name || ' shelf ' || g, c.slug || '-shelf-' || g, c.id, now(), now()
FROM categories c CROSS JOIN generate_series(1, 4) g WHERE c.parent_id IS NULL;

WITH sellers AS (SELECT array_agg(id ORDER BY id) AS ids FROM users),
     leaves AS (SELECT array_agg(id ORDER BY slug) AS ids FROM categories WHERE parent_id IS NOT NULL),
     words AS (SELECT
        ARRAY['Wireless','Vintage','Ergonomic','Organic','Portable','Handmade','Smart','Classic','Rugged',
              'Minimalist','Premium','Solar','Foldable','Waterproof','Bamboo','Compact'] AS adj,
        ARRAY['Headphones','Backpack','Desk Lamp','Coffee Grinder','Keyboard','Water Bottle','Notebook',
              'Camera Strap','Chef Knife','Yoga Mat','Speaker','Teapot','Bicycle Light','Phone Case','Blender',
              'Monitor Stand','Jacket','Sneakers','Board Game','Plant Pot'] AS noun,
        ARRAY['built to last','with a two-year warranty','made from recycled materials','loved by commuters',
              'perfect for small kitchens','ships in plain packaging','designed in Lisbon',
              'with a soft-touch finish','easy to clean','energy efficient'] AS phrase),
     raw AS (
        SELECT g, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
               (random() * 20)::int AS reviews
        FROM generate_series(1, {PRODUCT_COUNT}) g)
INSERT INTO products (id, seller_id, category_id, name, description, price, image_url, stock, rating_sum,
                      review_count, rating_avg, favorite_count, withdrawn_at, created_at, updated_at)
SELECT gen_random_uuid(),
       sellers.ids[1 + (raw.r1 * 999)::int],
       leaves.ids[1 + (raw.r2 * (array_length(leaves.ids, 1) - 1))::int],
       words.adj[1 + (g % 16)] || ' ' || words.noun[1 + ((g / 16) % 20)],
       'A ' || lower(words.adj[1 + (g % 16)] || ' ' || words.noun[1 + ((g / 16) % 20)]) || ' '
         || words.phrase[1 + (g % 10)] || ', ' || words.phrase[1 + ((g / 10) % 10)] || '.',
       round((1.99 + raw.r3 * 998)::numeric, 2),
       NULL,
       CASE WHEN raw.r4 < 0.1 THEN 0 ELSE (raw.r4 * 100)::int END,
       CASE WHEN raw.reviews > 12 THEN 0 ELSE raw.reviews * 3 + (raw.r5 * raw.reviews)::int END,
       CASE WHEN raw.reviews > 12 THEN 0 ELSE raw.reviews END,
       0, 0,
       CASE WHEN raw.r5 < 0.02 THEN now() ELSE NULL END,
       now() - (raw.r1 * raw.r2 + raw.r3) / 2 * interval '365 days',
       now()
FROM raw, sellers, leaves, words;

UPDATE products SET rating_avg = round(rating_sum::numeric / review_count, 2) WHERE review_count > 0;

INSERT INTO favorites (id, user_id, product_id, created_at, updated_at)
SELECT gen_random_uuid(), u.id, p.id, now() - random() * interval '90 days', now()
FROM (SELECT id FROM users ORDER BY id LIMIT 50) u
CROSS JOIN LATERAL (SELECT id FROM products TABLESAMPLE SYSTEM (0.2) LIMIT 200) p
ON CONFLICT DO NOTHING;
UPDATE products SET favorite_count = f.n FROM (SELECT product_id, count(*) AS n FROM favorites GROUP BY product_id) f
WHERE f.product_id = products.id;
"""


async def ensure_database(url: str) -> None:
    import asyncpg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    conn = await asyncpg.connect(admin)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# Ten reviews each on 20,000 products (200k rows); authors differ per product, as the unique key wants.
SEED_REVIEWS = """
WITH authors AS (SELECT array_agg(id ORDER BY id) AS ids FROM users),
     picked AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM products LIMIT 20000)
INSERT INTO reviews (id, product_id, author_id, rating, comment, verified_purchase, created_at, updated_at)
SELECT gen_random_uuid(), picked.id, authors.ids[1 + ((picked.n * 7 + k) % 1000)::int], 1 + (k % 5),
       'Review ' || k, false, now() - k * interval '1 day', now()
FROM picked, authors, generate_series(1, 10) k
"""


async def seed(db: Any) -> None:
    async with db.engine.begin() as conn:
        count = (await conn.execute(select(func.count()).select_from(PRODUCTS))).scalar_one()
        started = time.perf_counter()
        if count < PRODUCT_COUNT:
            for statement in SEED.split(";\n"):
                if statement.strip():
                    await conn.execute(text(statement))
            print(f"seeded {PRODUCT_COUNT} products in {time.perf_counter() - started:.1f}s")
        if not (await conn.execute(select(func.count()).select_from(REVIEWS))).scalar_one():
            await conn.execute(text(SEED_REVIEWS))
            print(f"seeded reviews in {time.perf_counter() - started:.1f}s")
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))


def summarize(plan: str) -> tuple[str, str]:
    indexes = sorted(
        set(re.findall(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)", plan))
    )
    seq = ["Seq Scan on " + t for t in sorted(set(re.findall(r"Seq Scan on (\w+)", plan)))]
    timing = re.search(r"Execution Time: ([\d.]+) ms", plan)
    return ", ".join(indexes + seq) or "-", timing.group(1) if timing else "?"


async def main(url: str) -> None:
    await ensure_database(url)
    await asyncio.to_thread(migrate, url)
    db = open_database(url, pool_size=2)
    await seed(db)
    queries = SqlCatalogQueries(db.reads, db.dialect)
    parents = await queries.category_parents()
    top = sorted(c for c, p in parents.items() if p is None)[3]
    leaf = sorted(c for c, p in parents.items() if p == top)[0]
    async with db.engine.connect() as conn:
        seller = (await conn.execute(select(PRODUCTS.c.seller_id).limit(1))).scalar_one()
        deep = (
            await conn.execute(
                select(PRODUCTS.c.created_at, PRODUCTS.c.id)
                .where(PRODUCTS.c.withdrawn_at.is_(None))
                .order_by(PRODUCTS.c.created_at.desc(), PRODUCTS.c.id.desc())
                .offset(60_000)
                .limit(1)
            )
        ).one()
        deep_price = (
            await conn.execute(
                select(PRODUCTS.c.price, PRODUCTS.c.id)
                .where(PRODUCTS.c.withdrawn_at.is_(None))
                .order_by(PRODUCTS.c.price.desc(), PRODUCTS.c.id.desc())
                .offset(60_000)
                .limit(1)
            )
        ).one()
        fan = (await conn.execute(select(FAVORITES.c.user_id).limit(1))).scalar_one()
        reviewed = (await conn.execute(select(REVIEWS.c.product_id).limit(1))).scalar_one()
        tree = frozenset(descendants(parents, top))

    def page(
        filters: ProductFilter, sort: ProductSort, after: Any = None, limit: int = 21
    ) -> tuple[Any, dict[str, Any]]:
        found = queries.listing(filters, sort, after)
        assert found is not None
        statement, params = found
        return statement, {**params, "limit": limit}

    # Each case is the statement the service runs, with its parameters, compiled as it compiles it.
    cases: dict[str, tuple[Any, dict[str, Any]]] = {
        "newest": page(ProductFilter(), ProductSort.NEWEST),
        "newest_deep_cursor": page(ProductFilter(), ProductSort.NEWEST, (deep.created_at, deep.id)),
        "category_tree_newest": page(ProductFilter(category_ids=tree), ProductSort.NEWEST),
        "category_tree_rating": page(ProductFilter(category_ids=tree), ProductSort.RATING),
        "category_leaf_price_asc": page(ProductFilter(category_ids=frozenset({leaf})), ProductSort.PRICE_ASC),
        "price_asc": page(ProductFilter(), ProductSort.PRICE_ASC),
        "price_desc_deep_cursor": page(ProductFilter(), ProductSort.PRICE_DESC, (deep_price.price, deep_price.id)),
        "price_range_price_asc": page(
            ProductFilter(min_price=Decimal("100"), max_price=Decimal("120")), ProductSort.PRICE_ASC
        ),
        "rating": page(ProductFilter(), ProductSort.RATING),
        "rating_in_stock": page(ProductFilter(in_stock=True), ProductSort.RATING),
        "seller_newest": page(ProductFilter(seller_id=seller), ProductSort.NEWEST),
        "search_relevance": page(ProductFilter(q="wireless headphones"), ProductSort.RELEVANCE),
        "search_newest": page(ProductFilter(q="bamboo teapot"), ProductSort.NEWEST),
        "search_rare_relevance": page(ProductFilter(q="lisbon kitchens"), ProductSort.RELEVANCE),
        "newest_page_of_100": page(ProductFilter(), ProductSort.NEWEST, limit=101),
        "favorites_page": (favorite_sql.FAVORITES_OF_USER, {"user_id": fan, "limit": 21}),
        "categories_with_counts": (category_sql.CATEGORY_VIEWS, {}),
        "reviews_page": (review_sql.REVIEWS_OF_PRODUCT, {"product_id": reviewed, "limit": 21}),
    }
    PLANS.mkdir(parents=True, exist_ok=True)
    print(f"{'query':28} {'ms':>9}  indexes")
    pool = await db.pg.pool() if db.pg is not None else None
    assert pool is not None, "EXPLAIN needs Postgres"
    async with pool.acquire() as raw:
        for name, (statement, params) in cases.items():
            compiled = STATEMENTS(statement)
            explain, args = "EXPLAIN (ANALYZE, BUFFERS) " + compiled.sql, compiled.arguments(params)
            await raw.fetch(explain, *args)  # warm the cache: report steady-state plans
            plan = "\n".join(row[0] for row in await raw.fetch(explain, *args))
            (PLANS / f"{name}.txt").write_text(f"-- {name}\n{compiled.sql}\n\n{plan}\n")
            used, ms = summarize(plan)
            print(f"{name:28} {ms:>9}  {used}")
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL))
