"""Reference servers (a), (b), (c): what the framework and the database can do with nothing in between.

No project code: bare Litestar, asyncpg with its statement cache, msgspec Structs, hand-written SQL.
(a) ``/raw/products/{id}``, ``/raw/products?category_id=&cursor=`` (20 newest, keyset),
    ``/raw/products?q=`` (ts_rank relevance, like the project) and ``/raw/categories``;
(b) ``/redis/products/{id}``: the detail body as bytes from Redis (filled by ``prefill``);
(c) ``/const``: a constant JSON body (the framework + server ceiling).

Bodies have the project's shapes (same fields and order) and details carry a strong ETag, so a
byte costs the same here and there. Run by granian (``bench/run.py`` starts it):

    DATABASE_URL=postgresql://... REFERENCE_REDIS_URL=redis://127.0.0.1:6379/10 \\
        granian --interface asgi --workers 2 --working-dir bench/reference raw_app:app
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import msgspec
from litestar import Litestar, Response, get
from litestar.exceptions import NotFoundException, ValidationException

POOL_SIZE = int(os.environ.get("REFERENCE_POOL_SIZE", "20"))  # = the project's pool_size + max_overflow
PAGE = 20
COLUMNS = """p.id, p.seller_id, u.username, p.name, p.price, p.image_url, p.category_id, c.name AS category_name,
    c.slug AS category_slug, p.stock, p.rating_avg, p.review_count, p.favorite_count, p.created_at, p.updated_at"""
FROM = "products p JOIN users u ON u.id = p.seller_id JOIN categories c ON c.id = p.category_id"
DETAIL_SQL = f"SELECT {COLUMNS}, p.description FROM {FROM} WHERE p.id = $1 AND p.withdrawn_at IS NULL"
# One statement per shape (first page / after a cursor; one category / a subtree): a generic
# "$2 IS NULL OR ..." plan could not range-scan ix_products_category_newest.
LIST_SQL = {
    (single, after): f"""SELECT {COLUMNS} FROM {FROM}
    WHERE p.category_id {"= $1" if single else "= ANY($1::uuid[])"} AND p.withdrawn_at IS NULL
    {"AND (p.created_at, p.id) < ($2, $3)" if after else ""}
    ORDER BY p.created_at DESC, p.id DESC LIMIT {PAGE + 1}"""
    for single in (True, False)
    for after in (True, False)
}
SEARCH_SQL = f"""SELECT {COLUMNS}, ts_rank(p.search_vector, query) AS rank
    FROM {FROM}, websearch_to_tsquery('english'::regconfig, $1) AS query
    WHERE p.search_vector @@ query AND p.withdrawn_at IS NULL
    ORDER BY rank DESC, p.id DESC LIMIT {PAGE + 1}"""
CATEGORIES_SQL = """SELECT c.id, c.name, c.slug, c.parent_id, coalesce(n.n, 0) AS n FROM categories c
    LEFT JOIN (SELECT category_id, count(*) AS n FROM products WHERE withdrawn_at IS NULL GROUP BY category_id) n
    ON n.category_id = c.id ORDER BY c.name, c.id"""


class Ref(msgspec.Struct):
    id: uuid.UUID
    username: str


class CategoryRef(msgspec.Struct):
    id: uuid.UUID
    name: str
    slug: str


class Summary(msgspec.Struct):
    id: uuid.UUID
    seller: Ref
    name: str
    price: Decimal
    image_url: str | None
    category: CategoryRef
    stock: int
    rating_avg: float | None
    review_count: int
    favorite_count: int
    created_at: datetime
    updated_at: datetime


class Detail(msgspec.Struct):
    id: uuid.UUID
    seller: Ref
    name: str
    description: str
    price: Decimal
    image_url: str | None
    category: CategoryRef
    stock: int
    rating_avg: float | None
    review_count: int
    favorite_count: int
    created_at: datetime
    updated_at: datetime


class Page(msgspec.Struct):
    items: list[Summary]
    next_cursor: str | None


class Category(msgspec.Struct):
    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    product_count: int


encode = msgspec.json.Encoder().encode
cursor_decoder = msgspec.json.Decoder(tuple[datetime, uuid.UUID])
state: dict[str, object] = {}


def _rating(row: asyncpg.Record) -> float | None:
    return float(row["rating_avg"]) if row["review_count"] else None


def _summary(r: asyncpg.Record) -> Summary:
    return Summary(
        r["id"], Ref(r["seller_id"], r["username"]), r["name"], r["price"], r["image_url"],
        CategoryRef(r["category_id"], r["category_name"], r["category_slug"]), r["stock"], _rating(r),
        r["review_count"], r["favorite_count"], r["created_at"], r["updated_at"],
    )  # fmt: skip


def detail_body(r: asyncpg.Record) -> bytes:
    return encode(Detail(
        r["id"], Ref(r["seller_id"], r["username"]), r["name"], r["description"], r["price"], r["image_url"],
        CategoryRef(r["category_id"], r["category_name"], r["category_slug"]), r["stock"], _rating(r),
        r["review_count"], r["favorite_count"], r["created_at"], r["updated_at"],
    ))  # fmt: skip


def json_response(body: bytes) -> Response[bytes]:
    tag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    return Response(body, media_type="application/json", headers={"ETag": tag, "Cache-Control": "no-cache"})


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationException("bad id") from None


def pool() -> asyncpg.Pool:
    return state["pool"]  # type: ignore[return-value]


@get("/raw/products/{product_id:str}")
async def raw_detail(product_id: str) -> Response[bytes]:
    row = await pool().fetchrow(DETAIL_SQL, _uuid(product_id))
    if row is None:
        raise NotFoundException()
    return json_response(detail_body(row))


@get("/raw/products")
async def raw_list(category_id: str | None = None, q: str | None = None, cursor: str | None = None) -> Response[bytes]:
    if q:
        rows = await pool().fetch(SEARCH_SQL, q)
    else:
        children: dict[uuid.UUID, list[uuid.UUID]] = state["children"]  # type: ignore[assignment]
        category = _uuid(category_id or "")
        ids = children.get(category, [category])
        key: list[object] = [ids[0] if len(ids) == 1 else ids]
        if cursor:
            key.extend(cursor_decoder.decode(base64.urlsafe_b64decode(cursor)))
        rows = await pool().fetch(LIST_SQL[len(ids) == 1, bool(cursor)], *key)
    items = [_summary(r) for r in rows[:PAGE]]
    next_cursor = None
    if len(rows) > PAGE and not q:
        last = rows[PAGE - 1]
        next_cursor = base64.urlsafe_b64encode(encode((last["created_at"], last["id"]))).decode()
    return Response(encode(Page(items, next_cursor)), media_type="application/json")


@get("/raw/categories")
async def raw_categories() -> Response[bytes]:
    rows = await pool().fetch(CATEGORIES_SQL)
    counts = {r["id"]: r["n"] for r in rows}
    children: dict[uuid.UUID, list[uuid.UUID]] = state["children"]  # type: ignore[assignment]
    body = [
        Category(r["id"], r["name"], r["slug"], r["parent_id"], sum(counts.get(c, 0) for c in children[r["id"]]))
        for r in rows
    ]
    return Response(encode(body), media_type="application/json")


@get("/redis/products/{product_id:str}")
async def redis_detail(product_id: str) -> Response[bytes]:
    body = await state["redis"].get(b"bench:product:" + product_id.encode())  # type: ignore[attr-defined]
    if body is None:
        raise NotFoundException()
    return json_response(body)


CONSTANT = encode({"status": "ok", "service": "reference", "version": 1})


@get("/const")
async def const() -> Response[bytes]:
    return Response(CONSTANT, media_type="application/json")


@get("/ready")
async def ready() -> Response[bytes]:
    await pool().fetchval("SELECT 1")
    return Response(b"{}", media_type="application/json")


async def startup() -> None:
    from redis.asyncio import Redis

    dsn = os.environ["DATABASE_URL"]
    state["pool"] = await asyncpg.create_pool(
        dsn, min_size=2, max_size=POOL_SIZE, server_settings={"jit": "off"}, command_timeout=30
    )
    parents = {r["id"]: r["parent_id"] for r in await pool().fetch("SELECT id, parent_id FROM categories")}
    children: dict[uuid.UUID, list[uuid.UUID]] = {c: [c] for c in parents}
    for c in parents:  # every ancestor lists c (the tree is shallow; categories are few)
        p = parents[c]
        while p is not None:
            children[p].append(c)
            p = parents[p]
    state["children"] = children
    state["redis"] = Redis.from_url(os.environ.get("REFERENCE_REDIS_URL", "redis://127.0.0.1:6379/10"))


async def shutdown() -> None:
    await pool().close()
    await state["redis"].aclose()  # type: ignore[attr-defined]


app = Litestar(
    [raw_detail, raw_list, raw_categories, redis_detail, const, ready], on_startup=[startup], on_shutdown=[shutdown]
)


async def prefill(dsn: str, redis_url: str, ids: list[uuid.UUID]) -> int:
    """Put the detail body of each id in Redis (what a cache-aside read would have stored)."""
    from redis.asyncio import Redis

    conn = await asyncpg.connect(dsn)
    redis = Redis.from_url(redis_url)
    try:
        rows = await conn.fetch(DETAIL_SQL.replace("p.id = $1", "p.id = ANY($1::uuid[])"), ids)
        async with redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.set(b"bench:product:" + str(row["id"]).encode(), detail_body(row), ex=3600)
            await pipe.execute()
        return len(rows)
    finally:
        await conn.close()
        await redis.aclose()


if __name__ == "__main__":  # python raw_app.py prefill IDS_FILE
    import asyncio

    if sys.argv[1:2] != ["prefill"]:
        raise SystemExit("usage: raw_app.py prefill IDS_FILE  (env: DATABASE_URL, REFERENCE_REDIS_URL)")
    wanted = [uuid.UUID(line) for line in Path(sys.argv[2]).read_text().split()]
    done = asyncio.run(prefill(os.environ["DATABASE_URL"], os.environ["REFERENCE_REDIS_URL"], wanted))
    print(f"prefilled {done} product bodies")
