"""Catalog, reviews, favorites and public profiles over HTTP, on SQLite and on Postgres."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.catalog import Product
from domain.ids import new_id
from domain.users import Role
from tests.helpers import login, register, user_headers


@pytest.fixture
async def client(container: Any) -> Any:
    """The app on the test's own event loop (httpx's ASGI transport), so concurrent requests really
    interleave and tests can use ``container`` directly; the shared fixture runs the app in a
    separate thread whose loop cannot share the database pool with the test."""
    import httpx

    from entrypoints.http.app import create_app

    app = create_app(container.settings, container=container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


async def admin_headers(client: Any, container: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A fresh user promoted through the repository, on this test's loop (which the app shares here)."""
    user = await register(client)
    async with container.adapters.requests.uow() as uow:
        stored = await uow.users.get(uuid.UUID(user["id"]))
        stored.role = Role.ADMIN
        await uow.users.update(stored)
        await uow.commit()
    tokens = await login(client, user["username"])
    return user, {"Authorization": f"Bearer {tokens['access_token']}"}


PRODUCT_KEYS = {
    "id",
    "seller",
    "name",
    "description",
    "price",
    "image_url",
    "category",
    "stock",
    "rating_avg",
    "review_count",
    "favorite_count",
    "created_at",
    "updated_at",
}


async def make_category(client: Any, headers: dict[str, str], name: str, parent: str | None = None) -> dict[str, Any]:
    r = await client.post("/api/categories", json={"name": name, "parent_id": parent}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_product(client: Any, headers: dict[str, str], category_id: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Desk lamp", "description": "Warm light", "price": "19.99", "category_id": category_id, **fields}
    r = await client.post("/api/products", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def setup_shop(client: Any, container: Any) -> dict[str, Any]:
    _, admin = await admin_headers(client, container)
    a_user, a = await user_headers(client)
    b_user, b = await user_headers(client)
    home = await make_category(client, admin, "Home")
    kitchen = await make_category(client, admin, "Kitchen", home["id"])
    return {"admin": admin, "a": a, "b": b, "a_user": a_user, "b_user": b_user, "home": home, "kitchen": kitchen}


async def test_product_shapes_etag_categories_and_profiles(client, container) -> None:
    s = await setup_shop(client, container)
    made = await make_product(client, s["a"], s["kitchen"]["id"], price=19.5, image_url="https://img.example/l.png")
    assert set(made) == PRODUCT_KEYS
    assert made["price"] == "19.50" and made["stock"] == 1 and made["rating_avg"] is None
    assert made["seller"] == {"id": s["a_user"]["id"], "username": s["a_user"]["username"]}
    assert made["category"] == {"id": s["kitchen"]["id"], "name": "Kitchen", "slug": "kitchen"}

    first = await client.get(f"/api/products/{made['id']}")
    tag = first.headers["etag"]
    assert first.status_code == 200 and tag.startswith('"') and first.json() == made
    again = await client.get(f"/api/products/{made['id']}", headers={"If-None-Match": f'W/"x", {tag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert (await client.get(f"/api/products/{made['id']}", headers={"If-None-Match": '"stale"'})).status_code == 200
    r = await client.post(f"/api/products/{made['id']}/reviews", json={"rating": 4, "comment": "Nice"}, headers=s["b"])
    assert r.status_code == 201, r.text
    changed = await client.get(f"/api/products/{made['id']}", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert (changed.json()["rating_avg"], changed.json()["review_count"]) == (4.0, 1)

    categories = {c["slug"]: c for c in (await client.get("/api/categories")).json()}
    assert categories["home"]["product_count"] == 1 and categories["kitchen"]["product_count"] == 1
    assert categories["kitchen"]["parent_id"] == s["home"]["id"]
    assert set(categories["home"]) == {"id", "name", "slug", "parent_id", "product_count"}

    profile = (await client.get(f"/api/users/{s['a_user']['id']}")).json()
    assert profile == {
        "id": s["a_user"]["id"],
        "username": s["a_user"]["username"],
        "created_at": s["a_user"]["created_at"],
        "product_count": 1,
        "rating_avg": 4.0,
    }
    assert (await client.get(f"/api/users/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/users/not-a-uuid")).status_code == 404


async def test_categories_admin_only_slugs_cycles_and_deletion(client, container) -> None:
    s = await setup_shop(client, container)
    r = await client.post("/api/categories", json={"name": "Mine"}, headers=s["a"])
    assert r.status_code == 403
    assert (await client.post("/api/categories", json={"name": "Anon"})).status_code == 401
    dup = await make_category(client, s["admin"], "Kitchen")
    assert dup["slug"] == "kitchen-2"
    r = await client.patch(
        f"/api/categories/{s['home']['id']}", json={"parent_id": s["kitchen"]["id"]}, headers=s["admin"]
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parent_id"
    r = await client.patch(f"/api/categories/{s['home']['id']}", json={"name": "Taken"}, headers=s["a"])
    assert r.status_code == 403
    r = await client.patch(
        f"/api/categories/{dup['id']}", json={"name": "Cookware", "parent_id": s["home"]["id"]}, headers=s["admin"]
    )
    assert r.status_code == 200 and r.json()["slug"] == "cookware" and r.json()["parent_id"] == s["home"]["id"]
    r = await client.patch(f"/api/categories/{dup['id']}", json={"parent_id": None}, headers=s["admin"])
    assert r.status_code == 200 and r.json()["parent_id"] is None
    await make_product(client, s["a"], s["kitchen"]["id"])
    assert (await client.delete(f"/api/categories/{s['kitchen']['id']}", headers=s["admin"])).status_code == 409
    assert (await client.delete(f"/api/categories/{s['home']['id']}", headers=s["admin"])).status_code == 409
    assert (await client.delete(f"/api/categories/{dup['id']}", headers=s["a"])).status_code == 403
    assert (await client.delete(f"/api/categories/{dup['id']}", headers=s["admin"])).status_code == 204
    assert (await client.delete(f"/api/categories/{dup['id']}", headers=s["admin"])).status_code == 404
    assert (await client.delete("/api/categories/nope", headers=s["admin"])).status_code == 404


async def test_other_users_cannot_change_what_is_not_theirs(client, container) -> None:
    s = await setup_shop(client, container)
    made = await make_product(client, s["a"], s["kitchen"]["id"], stock=3)
    pid = made["id"]
    assert (
        await client.patch(f"/api/products/{pid}", json={"name": "Mine", "price": "1.00"}, headers=s["b"])
    ).status_code == 403
    assert (await client.patch(f"/api/products/{pid}", json={"price": "1.999"}, headers=s["b"])).status_code == 403
    assert (await client.delete(f"/api/products/{pid}", headers=s["b"])).status_code == 403
    assert (await client.patch(f"/api/products/{pid}", json={"name": "x"})).status_code == 401
    assert (await client.get(f"/api/products/{pid}")).json() == made

    review = (await client.post(f"/api/products/{pid}/reviews", json={"rating": 2}, headers=s["b"])).json()
    assert (await client.post(f"/api/products/{pid}/reviews", json={"rating": 5}, headers=s["a"])).status_code == 403
    assert (await client.patch(f"/api/reviews/{review['id']}", json={"rating": 5}, headers=s["a"])).status_code == 403
    assert (
        await client.patch(f"/api/reviews/{review['id']}", json={"rating": 5}, headers=s["admin"])
    ).status_code == 403
    assert (await client.delete(f"/api/reviews/{review['id']}", headers=s["a"])).status_code == 403
    listed = (await client.get(f"/api/products/{pid}/reviews")).json()
    assert [r["rating"] for r in listed["items"]] == [2] and listed["next_cursor"] is None
    assert set(listed["items"][0]) == {
        "id",
        "product_id",
        "author",
        "rating",
        "comment",
        "verified_purchase",
        "created_at",
        "updated_at",
    }

    assert (await client.put(f"/api/favorites/{pid}", headers=s["b"])).status_code == 201
    assert (await client.delete(f"/api/favorites/{pid}", headers=s["a"])).status_code == 204
    assert (await client.get("/api/favorites", headers=s["a"])).json()["items"] == []
    b_favorites = (await client.get("/api/favorites", headers=s["b"])).json()["items"]
    assert [f["product"]["id"] for f in b_favorites] == [pid]
    after = (await client.get(f"/api/products/{pid}")).json()
    assert (after["name"], after["price"], after["favorite_count"], after["rating_avg"]) == (
        "Desk lamp",
        "19.99",
        1,
        2.0,
    )

    # The owner and an admin may; edits are partial.
    r = await client.patch(f"/api/products/{pid}", json={"price": 25, "image_url": None}, headers=s["a"])
    assert r.status_code == 200 and r.json()["price"] == "25.00" and r.json()["stock"] == 3
    r = await client.patch(f"/api/reviews/{review['id']}", json={"comment": "Better now"}, headers=s["b"])
    assert r.status_code == 200 and r.json()["rating"] == 2 and r.json()["comment"] == "Better now"
    assert (await client.delete(f"/api/reviews/{review['id']}", headers=s["admin"])).status_code == 204
    assert (await client.delete(f"/api/products/{pid}", headers=s["admin"])).status_code == 204
    assert (await client.get(f"/api/products/{pid}")).status_code == 404


async def test_withdrawn_products_leave_lists_carts_and_favorites_but_orders_keep_them(client, container) -> None:
    s = await setup_shop(client, container)
    c_user, c = await user_headers(client)
    made = await make_product(client, s["a"], s["kitchen"]["id"], stock=5, name="Teapot")
    pid = made["id"]
    assert (await client.post("/api/cart/items", json={"product_id": pid}, headers=c)).status_code == 201
    order = await client.post("/api/cart/checkout", headers=c)
    assert order.status_code == 201, order.text
    review = await client.post(f"/api/products/{pid}/reviews", json={"rating": 5}, headers=c)
    assert review.json()["verified_purchase"] is True
    unverified = await client.post(f"/api/products/{pid}/reviews", json={"rating": 3}, headers=s["b"])
    assert unverified.json()["verified_purchase"] is False
    assert (await client.post("/api/cart/items", json={"product_id": pid}, headers=s["b"])).status_code == 201
    assert (await client.put(f"/api/favorites/{pid}", headers=s["b"])).status_code == 201
    assert (await client.put(f"/api/favorites/{pid}", headers=s["b"])).status_code == 200

    assert (await client.delete(f"/api/products/{pid}", headers=s["a"])).status_code == 204
    assert (await client.delete(f"/api/products/{pid}", headers=s["a"])).status_code == 404
    assert (await client.get(f"/api/products/{pid}")).status_code == 404
    assert (await client.get(f"/api/products/{pid}/reviews")).status_code == 404
    assert (await client.get("/api/products")).json()["items"] == []
    assert (await client.get("/api/cart", headers=s["b"])).json()["items"] == []
    assert (await client.get("/api/favorites", headers=s["b"])).json()["items"] == []
    assert (await client.put(f"/api/favorites/{pid}", headers=c)).status_code == 404
    kept = await client.get(f"/api/orders/{order.json()['id']}", headers=c)
    assert [line["name"] for line in kept.json()["items"]] == ["Teapot"]
    categories = {x["slug"]: x["product_count"] for x in (await client.get("/api/categories")).json()}
    assert categories["home"] == 0
    assert (await client.get(f"/api/users/{s['a_user']['id']}")).json()["product_count"] == 0


async def test_pagination_walk_is_exact_while_products_are_added(client, container) -> None:
    s = await setup_shop(client, container)
    originals = set()
    for i in range(23):
        made = await make_product(client, s["a"], s["kitchen"]["id"], name=f"Mug {i}", price=f"{i % 5 + 1}.00")
        originals.add(made["id"])
    for sort in ("newest", "price_asc", "price_desc", "rating"):
        seen: list[str] = []
        cursor = None
        extra = 0
        while True:
            params = {"limit": 5, "sort": sort, **({"cursor": cursor} if cursor else {})}
            page, _ = await asyncio.gather(
                client.get("/api/products", params=params),
                make_product(client, s["b"], s["home"]["id"], name=f"Late {sort} {extra}", price="3.00"),
            )
            extra += 1
            assert page.status_code == 200, page.text
            seen += [p["id"] for p in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)), sort  # no duplicates
        assert originals <= set(seen), sort  # no gaps
    page = (await client.get("/api/products", params={"limit": 5})).json()
    r = await client.get("/api/products", params={"limit": 5, "cursor": page["next_cursor"], "sort": "price_asc"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "cursor"
    for cursor in ("garbage", page["next_cursor"][:-2], page["next_cursor"] + "A", "%00", "x" * 600):
        assert (await client.get("/api/products", params={"cursor": cursor})).status_code == 400


async def test_filters_and_full_text_search(client, container) -> None:
    s = await setup_shop(client, container)
    books = await make_category(client, s["admin"], "Books")
    grinder = await make_product(
        client,
        s["a"],
        s["kitchen"]["id"],
        name="Coffee grinder",
        description="Burr grinder for espresso beans",
        price="89.00",
        stock=0,
    )
    mug = await make_product(
        client, s["b"], s["home"]["id"], name="Travel mug", description="Keeps coffee hot for hours", price="15.00"
    )
    novel = await make_product(
        client, s["b"], books["id"], name="Mystery novel", description="A detective story set in Lisbon", price="12.50"
    )

    async def ids(**params: Any) -> list[str]:
        r = await client.get("/api/products", params=params)
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["items"]]

    assert await ids(q="coffee") == [grinder["id"], mug["id"]]
    assert await ids(q="espresso") == [grinder["id"]]
    assert await ids(q="detective Lisbon") == [novel["id"]]
    assert await ids(q="coffee", sort="price_asc") == [mug["id"], grinder["id"]]
    assert await ids(q="coffee", in_stock="true") == [mug["id"]]
    assert await ids(q="nothing-like-this") == []
    assert set(await ids(category_id=s["home"]["id"])) == {grinder["id"], mug["id"]}
    assert await ids(category_id=s["kitchen"]["id"]) == [grinder["id"]]
    assert await ids(category_id=str(uuid.uuid4())) == []
    assert set(await ids(seller_id=s["b_user"]["id"])) == {mug["id"], novel["id"]}
    assert await ids(min_price="12.50", max_price="15", sort="price_desc") == [mug["id"], novel["id"]]
    assert await ids(in_stock="false") == [grinder["id"]]
    assert await ids(sort="price_asc") == [novel["id"], mug["id"], grinder["id"]]


HOSTILE = [  # (method, path, JSON body or raw bytes, query); CAT and PID are filled in per run
    ("GET", "/api/products", None, {"sort": "cheapest"}),
    ("GET", "/api/products", None, {"sort": "relevance"}),
    ("GET", "/api/products", None, {"limit": "0"}),
    ("GET", "/api/products", None, {"limit": "101"}),
    ("GET", "/api/products", None, {"limit": "ten"}),
    ("GET", "/api/products", None, {"min_price": "5", "max_price": "4"}),
    ("GET", "/api/products", None, {"min_price": "-1"}),
    ("GET", "/api/products", None, {"min_price": "'; DROP TABLE products; --"}),
    ("GET", "/api/products", None, {"in_stock": "maybe"}),
    ("GET", "/api/products", None, {"category_id": "1 OR 1=1"}),
    ("GET", "/api/products", None, {"seller_id": "x" * 10_000}),
    ("GET", "/api/products", None, {"q": "x" * 10_000}),
    ("GET", "/api/products", None, {"q": "nul\x00byte"}),
    ("GET", "/api/products/1%20OR%201=1", None, None),
    ("GET", "/api/products/" + "x" * 10_000, None, None),
    ("GET", "/api/products/00000000-0000-0000-0000-000000000000/reviews", None, None),
    ("POST", "/api/products", {"name": "x", "price": "-5", "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": "1.999", "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": 1.999, "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": "0", "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": "1000000.01", "category_id": "CAT"}, None),
    ("POST", "/api/products", b'{"name": "x", "price": 1e400, "category_id": "CAT"}', None),
    ("POST", "/api/products", b'{"name": "x", "price": 1.999, "category_id": "CAT"}', None),
    ("POST", "/api/products", b'{"name": "x", "price": -0.0, "category_id": "CAT"}', None),
    ("POST", "/api/products", b'{"name": "x", "price": "1e-7", "category_id": "CAT"}', None),
    ("POST", "/api/products", b'{"name": "x", "price": {"$gt": 0}, "category_id": "CAT"}', None),
    ("POST", "/api/products", b'{"name": ["x"], "price": "1", "category_id": "CAT"}', None),
    ("POST", "/api/products", b'{"name": "x", "price": "1", "category_id": "CAT"', None),
    ("POST", "/api/products", {"name": "x", "price": "Infinity", "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": True, "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x" * 10_000, "price": "1", "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": "1", "description": "d" * 10_001, "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": "1", "category_id": str(uuid.UUID(int=1))}, None),
    ("POST", "/api/products", {"name": "x", "price": "1", "category_id": "'; DROP TABLE categories; --"}, None),
    ("POST", "/api/products", {"name": "x", "price": "1", "stock": -1, "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "x", "price": "1", "stock": 2.5, "category_id": "CAT"}, None),
    (
        "POST",
        "/api/products",
        {"name": "x", "price": "1", "image_url": "javascript:alert(1)", "category_id": "CAT"},
        None,
    ),
    ("POST", "/api/products", {"name": "x", "price": "1", "image_url": "http://a\x00b", "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "\x00", "price": "1", "category_id": "CAT"}, None),
    ("POST", "/api/products", {"name": "   ", "price": "1", "category_id": "CAT"}, None),
    ("PATCH", "/api/products/PID", {"price": "12.345"}, None),
    ("PATCH", "/api/products/PID", {"category_id": str(uuid.UUID(int=2))}, None),
    ("PATCH", "/api/products/PID", {"name": None}, None),
    ("POST", "/api/products/PID/reviews", {"rating": 6}, None),
    ("POST", "/api/products/PID/reviews", {"rating": 0}, None),
    ("POST", "/api/products/PID/reviews", {"rating": "5; DROP TABLE reviews"}, None),
    ("POST", "/api/products/PID/reviews", {"rating": 5, "comment": "c" * 10_000}, None),
    ("POST", "/api/categories", {"name": "n" * 10_000}, None),
    ("POST", "/api/categories", {"name": "ok", "parent_id": str(uuid.UUID(int=3))}, None),
    ("PUT", "/api/favorites/not-a-uuid", None, None),
    ("PUT", f"/api/favorites/{uuid.UUID(int=4)}", None, None),
    ("PATCH", "/api/reviews/' OR 1=1", {"rating": 5}, None),
    ("DELETE", "/api/products/" + "%27%20OR%201=1", None, None),
]


async def test_hostile_input_is_4xx_never_5xx(client, container) -> None:
    """SQL fragments, 10,000-character strings, bad prices, unknown categories, non-UUID ids."""
    s = await setup_shop(client, container)
    made = await make_product(client, s["a"], s["kitchen"]["id"])
    for number, (method, path, body, params) in enumerate(HOSTILE):
        path = path.replace("PID", made["id"])
        headers = dict(s["admin"] if path.startswith("/api/categories") else s["a"])
        if path.endswith("/reviews") and method == "POST":
            headers = dict(s["b"])
        if isinstance(body, bytes):
            content, body = body.replace(b"CAT", s["kitchen"]["id"].encode()), None
            headers["content-type"] = "application/json"
        else:
            content = None
            if isinstance(body, dict) and body.get("category_id") == "CAT":
                body = {**body, "category_id": s["kitchen"]["id"]}
        r = await client.request(method, path, json=body, content=content, params=params, headers=headers)
        case = (number, method, path[:60], str(body)[:60], params and str(params)[:60])
        assert 400 <= r.status_code < 500, (case, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), case
        assert "Traceback" not in r.text and "SELECT" not in r.text, case
    assert (await client.get(f"/api/products/{made['id']}")).json() == made
    assert len((await client.get("/api/products")).json()["items"]) == 1
    assert len((await client.get("/api/categories")).json()) == 2


async def test_racing_duplicate_reviews_make_exactly_one(client, container) -> None:
    s = await setup_shop(client, container)
    made = await make_product(client, s["a"], s["kitchen"]["id"])
    results = await asyncio.gather(
        *(client.post(f"/api/products/{made['id']}/reviews", json={"rating": 4}, headers=s["b"]) for _ in range(6))
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409, 409]
    detail = (await client.get(f"/api/products/{made['id']}")).json()
    assert (detail["review_count"], detail["rating_avg"]) == (1, 4.0)
    favorites = await asyncio.gather(*(client.put(f"/api/favorites/{made['id']}", headers=s["b"]) for _ in range(6)))
    assert sorted(r.status_code for r in favorites) == [200] * 5 + [201]
    assert (await client.get(f"/api/products/{made['id']}")).json()["favorite_count"] == 1


async def test_account_deletion_withdraws_listings_and_drops_favorites(client, container) -> None:
    s = await setup_shop(client, container)
    mine = await make_product(client, s["a"], s["kitchen"]["id"])
    theirs = await make_product(client, s["b"], s["kitchen"]["id"])
    assert (await client.put(f"/api/favorites/{theirs['id']}", headers=s["a"])).status_code == 201
    assert (await client.post("/api/cart/items", json={"product_id": theirs["id"]}, headers=s["a"])).status_code == 201
    assert (await client.post("/api/cart/items", json={"product_id": mine["id"]}, headers=s["b"])).status_code == 201
    assert (await client.delete("/api/users/me", headers=s["a"])).status_code == 204
    assert (await client.get(f"/api/products/{mine['id']}")).status_code == 404
    assert (await client.get(f"/api/products/{theirs['id']}")).json()["favorite_count"] == 0
    assert (await client.get("/api/cart", headers=s["b"])).json()["items"] == []
    assert (await client.get(f"/api/users/{s['a_user']['id']}")).status_code == 404


async def test_a_listing_page_is_a_constant_number_of_statements(client, container) -> None:
    s = await setup_shop(client, container)
    seller, now = uuid.UUID(s["a_user"]["id"]), datetime.now(UTC)
    async with container.adapters.requests.uow() as uow:
        for i in range(120):
            await uow.products.add(
                Product(
                    id=new_id(),
                    seller_id=seller,
                    category_id=uuid.UUID(s["kitchen"]["id"]),
                    name=f"Kettle {i}",
                    description="Boils water fast",
                    price=Decimal(i + 1),
                    image_url=None,
                    stock=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        await uow.commit()
    with container.adapters.requests.db.observe() as statements:
        per_query = {}
        for params in (
            {"limit": 10},
            {"limit": 100},
            {"limit": 100, "sort": "price_desc"},
            {"limit": 100, "category_id": s["home"]["id"]},
            {"limit": 100, "q": "kettle water"},
        ):
            statements.clear()
            r = await client.get("/api/products", params=params)
            assert r.status_code == 200 and len(r.json()["items"]) == params["limit"], r.text
            per_query[str(params)] = len(statements)
    assert per_query["{'limit': 10}"] == per_query["{'limit': 100}"] == 1, per_query
    assert max(per_query.values()) <= 2, per_query  # a category filter also reads the tree once
