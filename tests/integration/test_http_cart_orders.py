"""Cart, checkout, orders and sales over HTTP, on SQLite and on Postgres.

Products are created through the catalog routes (POST /api/categories as an admin, then
POST /api/products), so every test runs on real product rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from adapters.sql.tables import OutboxRow, table_of
from application.jobs import SEND_ORDER_CONFIRMATION, SEND_SALE_NOTICE
from domain.users import Role
from tests.helpers import login, register, user_headers

CART_ITEM_KEYS = {"id", "product", "quantity", "unit_price", "line_total", "price_changed"}
ORDER_KEYS = {"id", "status", "items", "total", "created_at"}
ORDER_ITEM_KEYS = {"product_id", "name", "unit_price", "quantity", "line_total"}
SALE_KEYS = {"order_id", "product_id", "name", "unit_price", "quantity", "line_total", "status", "created_at"}


@pytest.fixture
async def client(container: Any) -> Any:
    """The app on this test's event loop through httpx's ASGI transport, so concurrent requests
    really interleave (the shared fixture's client runs one request at a time) and the test can
    read the database through ``container`` on the same loop."""
    import httpx

    from entrypoints.http.app import create_app

    app = create_app(container.settings, container=container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        yield c


@dataclass
class Market:
    client: Any
    container: Any
    category_id: str

    async def product(self, headers: dict[str, str], *, price: str = "10.00", stock: int = 10, name: str = "Thing"):
        r = await self.client.post(
            "/api/products",
            json={
                "name": name,
                "description": "",
                "price": price,
                "image_url": "https://example.com/p.png",
                "category_id": self.category_id,
                "stock": stock,
            },
            headers=headers,
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def stock(self, product_id: str) -> int:
        r = await self.client.get(f"/api/products/{product_id}")
        assert r.status_code == 200, r.text
        return int(r.json()["stock"])

    async def add(self, headers: dict[str, str], product_id: str, quantity: int | None = 1) -> Any:
        body: dict[str, Any] = {"product_id": product_id}
        if quantity is not None:
            body["quantity"] = quantity
        return await self.client.post("/api/cart/items", json=body, headers=headers)

    async def cart(self, headers: dict[str, str]) -> dict[str, Any]:
        r = await self.client.get("/api/cart", headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def checkout(self, headers: dict[str, str], key: str | None = None) -> Any:
        extra = {"Idempotency-Key": key} if key is not None else {}
        return await self.client.post("/api/cart/checkout", headers={**headers, **extra})


@pytest.fixture
async def market(client: Any, container: Any) -> Market:
    user = await register(client)
    async with container.adapters.requests.uow() as uow:
        stored = await uow.users.get(uuid.UUID(user["id"]))
        stored.role = Role.ADMIN
        await uow.users.update(stored)
        await uow.commit()
    tokens = await login(client, user["username"])
    r = await client.post(
        "/api/categories",
        json={"name": f"Things {uuid.uuid4().hex[:6]}", "parent_id": None},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert r.status_code == 201, r.text
    return Market(client, container, r.json()["id"])


async def test_cart_lines_add_up_with_exact_totals(client, market) -> None:
    seller, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    dime = await market.product(seller_h, price="0.10", name="Dime")
    twenty = await market.product(seller_h, price="0.20", name="Twenty")
    first = await market.add(buyer, dime["id"], quantity=None)  # quantity defaults to 1
    assert first.status_code == 201, first.text
    assert set(first.json()) == CART_ITEM_KEYS and first.json()["quantity"] == 1
    assert (await market.add(buyer, twenty["id"])).status_code == 201
    cart = await market.cart(buyer)
    assert cart["total"] == "0.30"
    assert [(i["unit_price"], i["line_total"], i["price_changed"]) for i in cart["items"]] == [
        ("0.10", "0.10", False),
        ("0.20", "0.20", False),
    ]
    assert cart["items"][0]["product"] == {
        "id": dime["id"],
        "name": "Dime",
        "price": "0.10",
        "image_url": "https://example.com/p.png",
        "stock": 10,
        "seller": {"id": seller["id"], "username": seller["username"]},
    }
    again = await market.add(buyer, dime["id"], 2)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["quantity"] == 3
    assert again.json()["line_total"] == "0.30"
    r = await client.patch(f"/api/products/{twenty['id']}", json={"price": "0.25"}, headers=seller_h)
    assert r.status_code == 200, r.text
    cart = await market.cart(buyer)
    assert cart["total"] == "0.55" and cart["items"][1]["price_changed"] is True
    assert cart["items"][1]["unit_price"] == "0.25"


async def test_cart_rules(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    product = await market.product(seller_h, stock=3)
    assert (await market.add(seller_h, product["id"])).status_code == 403
    assert (await market.add(buyer, product["id"], 4)).status_code == 409
    unknown = await market.add(buyer, str(uuid.uuid4()))  # like an unknown category_id: 422 naming the field
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "product_id"
    for quantity in (0, 100, -1):
        r = await market.add(buyer, product["id"], quantity)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "quantity", r.text
    for body in ({"product_id": "not-a-uuid"}, {"product_id": product["id"], "quantity": "two"}, {}):
        r = await client.post("/api/cart/items", json=body, headers=buyer)
        assert r.status_code == 400, (body, r.text)
    assert (await market.add(buyer, product["id"], 2)).status_code == 201
    assert (await market.add(buyer, product["id"], 2)).status_code == 409  # 2 + 2 > stock 3
    big = await market.product(seller_h, stock=500)
    assert (await market.add(buyer, big["id"], 60)).status_code == 201
    over = await market.add(buyer, big["id"], 40)
    assert over.status_code == 422 and over.headers["content-type"].startswith("application/problem+json")
    line = (await market.cart(buyer))["items"][0]
    r = await client.patch(f"/api/cart/items/{line['id']}", json={"quantity": 4}, headers=buyer)
    assert r.status_code == 409
    r = await client.patch(f"/api/cart/items/{line['id']}", json={"quantity": 3}, headers=buyer)
    assert r.status_code == 200 and r.json()["quantity"] == 3 and r.json()["line_total"] == "30.00"
    assert (await client.delete(f"/api/cart/items/{line['id']}", headers=buyer)).status_code == 204
    assert (await client.delete(f"/api/cart/items/{line['id']}", headers=buyer)).status_code == 404
    assert (await client.delete("/api/cart", headers=buyer)).status_code == 204
    assert (await market.cart(buyer)) == {"items": [], "total": "0.00"}
    assert (await client.get("/api/cart")).status_code == 401


async def test_others_lines_and_orders_are_not_found(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, alice = await user_headers(client)
    _, mallory = await user_headers(client)
    product = await market.product(seller_h)
    line = (await market.add(alice, product["id"])).json()
    for method, body in (("PATCH", {"quantity": 2}), ("DELETE", None)):
        r = await client.request(method, f"/api/cart/items/{line['id']}", json=body, headers=mallory)
        assert r.status_code == 404, r.text
    assert (await market.cart(alice))["items"][0]["quantity"] == 1
    order = (await market.checkout(alice)).json()
    assert (await client.get(f"/api/orders/{order['id']}", headers=mallory)).status_code == 404
    assert (await client.post(f"/api/orders/{order['id']}/cancel", headers=mallory)).status_code == 404
    assert (await client.get("/api/orders", headers=mallory)).json() == {"items": [], "next_cursor": None}
    for bad in ("nope", "1", "%20"):
        assert (await client.get(f"/api/orders/{bad}", headers=alice)).status_code == 404
        assert (await client.patch(f"/api/cart/items/{bad}", json={"quantity": 1}, headers=alice)).status_code == 404
    assert (await client.get(f"/api/orders/{order['id']}", headers=alice)).json() == order


async def test_checkout_snapshots_history_sales_and_cancel(client, market) -> None:
    seller, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    apple = await market.product(seller_h, price="0.10", stock=5, name="Apple")
    bean = await market.product(seller_h, price="0.20", stock=5, name="Bean")
    await market.add(buyer, apple["id"], 3)
    await market.add(buyer, bean["id"], 1)
    r = await market.checkout(buyer)
    assert r.status_code == 201, r.text
    order = r.json()
    assert set(order) == ORDER_KEYS and order["status"] == "placed" and order["total"] == "0.50"
    assert order["created_at"].endswith("Z")
    assert [set(i) for i in order["items"]] == [ORDER_ITEM_KEYS] * 2
    assert [(i["name"], i["unit_price"], i["quantity"], i["line_total"]) for i in order["items"]] == [
        ("Apple", "0.10", 3, "0.30"),
        ("Bean", "0.20", 1, "0.20"),
    ]
    assert await market.stock(apple["id"]) == 2 and await market.stock(bean["id"]) == 4
    assert (await market.cart(buyer))["items"] == []
    await client.patch(f"/api/products/{apple['id']}", json={"price": "9.99", "name": "Pear"}, headers=seller_h)
    assert (await client.get(f"/api/orders/{order['id']}", headers=buyer)).json() == order  # snapshot kept
    assert (await client.get("/api/orders", headers=buyer)).json() == {"items": [order], "next_cursor": None}

    sales = (await client.get("/api/sales", headers=seller_h)).json()
    assert sales["next_cursor"] is None and [set(s) for s in sales["items"]] == [SALE_KEYS] * 2
    assert {(s["name"], s["line_total"], s["status"]) for s in sales["items"]} == {
        ("Apple", "0.30", "placed"),
        ("Bean", "0.20", "placed"),
    }
    assert (await client.get("/api/sales", headers=buyer)).json()["items"] == []

    cancelled = await client.post(f"/api/orders/{order['id']}/cancel", headers=buyer)
    assert cancelled.status_code == 200 and cancelled.json() == {**order, "status": "cancelled"}
    assert await market.stock(apple["id"]) == 5 and await market.stock(bean["id"]) == 5
    again = await client.post(f"/api/orders/{order['id']}/cancel", headers=buyer)
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert await market.stock(apple["id"]) == 5
    assert {s["status"] for s in (await client.get("/api/sales", headers=seller_h)).json()["items"]} == {"cancelled"}

    rows = await outbox_rows(market.container)
    assert Counter(kind for kind, _ in rows) == Counter({SEND_ORDER_CONFIRMATION: 1, SEND_SALE_NOTICE: 1})
    assert {"order_id": order["id"], "seller_id": seller["id"]} in [p for k, p in rows if k == SEND_SALE_NOTICE]


async def outbox_rows(container: Any) -> list[tuple[str, dict[str, Any]]]:
    outbox = table_of(OutboxRow)
    async with container.adapters.requests.uow() as uow:
        rows = await uow.executor.rows(select(outbox.c.kind, outbox.c.payload))
    return [(row["kind"], row["payload"]) for row in rows if row["kind"] in (SEND_ORDER_CONFIRMATION, SEND_SALE_NOTICE)]


async def test_empty_cart_and_only_withdrawn_lines_are_422(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    r = await market.checkout(buyer)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    gone = await market.product(seller_h, name="Gone")
    live = await market.product(seller_h, name="Live")
    await market.add(buyer, gone["id"])
    assert (await client.delete(f"/api/products/{gone['id']}", headers=seller_h)).status_code == 204
    assert (await market.cart(buyer)) == {"items": [], "total": "0.00"}
    assert (await market.add(buyer, gone["id"])).status_code == 422
    assert (await market.checkout(buyer)).status_code == 422
    await market.add(buyer, live["id"])
    order = (await market.checkout(buyer)).json()
    assert [item["name"] for item in order["items"]] == ["Live"]


async def test_out_of_stock_checkout_is_409_naming_the_product_and_keeps_the_cart(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    plenty = await market.product(seller_h, stock=10, name="Plenty")
    scarce = await market.product(seller_h, stock=2, name="Scarce")
    await market.add(buyer, plenty["id"], 4)
    await market.add(buyer, scarce["id"], 2)
    await client.patch(f"/api/products/{scarce['id']}", json={"stock": 1}, headers=seller_h)
    r = await market.checkout(buyer)
    assert r.status_code == 409 and "Scarce" in r.json()["detail"], r.text
    assert await market.stock(plenty["id"]) == 10 and await market.stock(scarce["id"]) == 1
    assert [i["quantity"] for i in (await market.cart(buyer))["items"]] == [4, 2]
    assert (await client.get("/api/orders", headers=buyer)).json()["items"] == []
    assert await outbox_rows(market.container) == []


async def test_twenty_buyers_race_for_five_units(client, market) -> None:
    _, seller_h = await user_headers(client)
    product = await market.product(seller_h, stock=5, name="Last ones")
    buyers = [h for _, h in await asyncio.gather(*(user_headers(client) for _ in range(20)))]
    assert {(await market.add(h, product["id"])).status_code for h in buyers} == {201}
    results = await asyncio.gather(*(market.checkout(h) for h in buyers))
    statuses = Counter(r.status_code for r in results)
    assert statuses == Counter({201: 5, 409: 15}), [r.text for r in results if r.status_code not in (201, 409)]
    assert await market.stock(product["id"]) == 0
    sales = (await client.get("/api/sales?limit=100", headers=seller_h)).json()["items"]
    assert sum(s["quantity"] for s in sales) == 5
    for headers, result in zip(buyers, results, strict=True):
        lines = (await market.cart(headers))["items"]
        assert len(lines) == (0 if result.status_code == 201 else 1)


async def test_idempotency_key_returns_the_same_order_also_when_racing(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    product = await market.product(seller_h, stock=50)
    await market.add(buyer, product["id"], 2)
    first = await market.checkout(buyer, "order-1")
    retry = await market.checkout(buyer, "order-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert await market.stock(product["id"]) == 48

    await market.add(buyer, product["id"], 3)
    racing = await asyncio.gather(*(market.checkout(buyer, "order-2") for _ in range(6)))
    assert {r.status_code for r in racing} == {201}, [r.text for r in racing]
    assert len({r.json()["id"] for r in racing}) == 1 and len({r.text for r in racing}) == 1
    assert await market.stock(product["id"]) == 45
    orders = (await client.get("/api/orders", headers=buyer)).json()["items"]
    assert [o["id"] for o in orders] == [racing[0].json()["id"], first.json()["id"]]
    assert (await market.checkout(buyer, "order-3")).status_code == 422  # new key, empty cart

    for bad in ("", "x" * 201, "with space"):
        r = await market.checkout(buyer, bad)
        assert r.status_code == 400, (bad, r.text)


async def test_racing_checkouts_of_one_cart_without_a_key_order_it_once(client, market) -> None:
    """The first checkout takes the cart's lines (and holds them until it commits); the others wait
    for it and find the cart empty."""
    _, seller = await user_headers(client)
    _, buyer = await user_headers(client)
    products = [await market.product(seller, stock=10) for _ in range(2)]
    for product in products:
        await market.add(buyer, product["id"], 2)
    racing = await asyncio.gather(*(market.checkout(buyer) for _ in range(4)))
    assert sorted(r.status_code for r in racing) == [201, 422, 422, 422], [r.text for r in racing]
    assert [await market.stock(p["id"]) for p in products] == [8, 8]
    assert len((await client.get("/api/orders", headers=buyer)).json()["items"]) == 1
    assert (await market.cart(buyer))["items"] == []


async def test_concurrent_adds_make_one_line(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    product = await market.product(seller_h, stock=100)
    results = await asyncio.gather(*(market.add(buyer, product["id"], 3) for _ in range(10)))
    assert Counter(r.status_code for r in results) == Counter({201: 1, 200: 9})
    assert len({r.json()["id"] for r in results}) == 1
    [line] = (await market.cart(buyer))["items"]
    assert line["quantity"] == 30 and line["line_total"] == "300.00"


async def test_racing_cancels_return_stock_once(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    product = await market.product(seller_h, stock=4)
    await market.add(buyer, product["id"], 4)
    order = (await market.checkout(buyer)).json()
    results = await asyncio.gather(*(client.post(f"/api/orders/{order['id']}/cancel", headers=buyer) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409]
    assert await market.stock(product["id"]) == 4


async def test_orders_and_sales_are_keyset_pages(client, market) -> None:
    _, seller_h = await user_headers(client)
    _, buyer = await user_headers(client)
    product = await market.product(seller_h, stock=100, price="1.50")
    placed = []
    for quantity in range(1, 6):
        await market.add(buyer, product["id"], quantity)
        placed.append((await market.checkout(buyer)).json())
    for path, headers, expected in (
        ("/api/orders", buyer, [o["id"] for o in reversed(placed)]),
        ("/api/sales", seller_h, [o["id"] for o in reversed(placed)]),
    ):
        seen, url = [], f"{path}?limit=2"
        while url:
            page = (await client.get(url, headers=headers)).json()
            assert len(page["items"]) <= 2
            seen += [item["id"] if path == "/api/orders" else item["order_id"] for item in page["items"]]
            url = f"{path}?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else None
        assert seen == expected
    sales = (await client.get("/api/sales", headers=seller_h)).json()["items"]
    assert [(s["quantity"], s["line_total"]) for s in sales] == [(q, str(Decimal("1.50") * q)) for q in range(5, 0, -1)]
    for query in ("limit=0", "limit=101", "limit=x", "cursor=garbage", "cursor=%21%21"):
        for path in ("/api/orders", "/api/sales"):
            r = await client.get(f"{path}?{query}", headers=buyer)
            assert r.status_code == 400, (path, query, r.text)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_checkout_is_five_statements_whatever_the_cart(client, market) -> None:
    """The cart's lines taken out, the order with its lines, all stock, the sellers' webhook
    subscriptions, outbox: one statement each, however many lines and sellers (plus BEGIN and
    COMMIT: 7 round trips on a warm connection)."""
    _, seller_a = await user_headers(client)
    _, seller_b = await user_headers(client)
    products = [
        await market.product(seller_a, name="A"),
        await market.product(seller_a, name="B"),
        await market.product(seller_b, name="C"),
    ]
    for lines, key in ((products[:1], None), (products, "one-batch-each")):
        _, buyer = await user_headers(client)
        for product in lines:
            assert (await market.add(buyer, product["id"], 2)).status_code == 201
        with market.container.adapters.requests.db.observe() as seen:
            r = await market.checkout(buyer, key)
        # Only the checkout's own transaction (taking the cart's lines is its first statement); the token
        # check and the emails' jobs run in other transactions.
        scope = next(scope for sql, scope in seen if "DELETE FROM cart_items" in sql)
        in_checkout = [sql for sql, in_scope in seen if in_scope is scope]
        assert r.status_code == 201, r.text
        assert len(r.json()["items"]) == len(lines)
        verbs = [" ".join(s.split()[:3]) for s in in_checkout]
        assert len(in_checkout) == 5, verbs


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_cancel_returns_all_stock_in_one_batch_whatever_the_order(client, market) -> None:
    """Stock goes back for every line in one batched statement (one round trip), not one per line;
    and every product gets exactly its quantity back."""
    _, seller = await user_headers(client)
    products = [await market.product(seller, name=name, stock=10) for name in ("A", "B", "C", "D")]
    counts = []
    for lines in (products[:1], products):
        _, buyer = await user_headers(client)
        for product in lines:
            assert (await market.add(buyer, product["id"], 3)).status_code == 201
        order = (await market.checkout(buyer)).json()
        with market.container.adapters.requests.db.observe() as seen:
            r = await client.post(f"/api/orders/{order['id']}/cancel", headers=buyer)
        assert r.status_code == 200, r.text
        counts.append(sum("UPDATE products SET stock" in sql for sql, _ in seen))
    assert counts == [1, 1], counts
    for product in products:
        assert (await client.get(f"/api/products/{product['id']}")).json()["stock"] == 10
