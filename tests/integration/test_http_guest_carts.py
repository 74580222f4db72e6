"""Guest carts over HTTP, on SQLite and on Postgres: X-Cart-Token on the cart routes, BOLA,
sliding expiry, merge at login (also racing), the creation rate limit and the purge."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from adapters.sql.tables import CartItemRow, GuestCartRow, table_of
from application.opaque_tokens import hash_secret
from tests.conftest import test_settings
from tests.helpers import PASSWORD, register, user_headers
from tests.integration import test_http_cart_orders as cart_http

G = table_of(GuestCartRow)
client = cart_http.client
market = cart_http.market
Market = cart_http.Market


async def new_guest(client: Any) -> dict[str, str]:
    r = await client.post("/api/cart/guest")
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"cart_token"} and r.headers["cache-control"] == "no-store"
    return {"X-Cart-Token": r.json()["cart_token"]}


async def set_last_used(container: Any, headers: dict[str, str], when: datetime) -> None:
    async with container.adapters.requests.uow() as uow:
        await uow.executor.run(
            update(G).where(G.c.token_hash == hash_secret(headers["X-Cart-Token"])).values(last_used_at=when)
        )
        await uow.commit()


async def last_used(container: Any, headers: dict[str, str]) -> datetime:
    async with container.adapters.requests.uow() as uow:
        found: datetime = await uow.executor.value(
            select(G.c.last_used_at).where(G.c.token_hash == hash_secret(headers["X-Cart-Token"]))
        )
    return found


async def login_with(client: Any, name: str, **kwargs: Any) -> Any:
    body = {"email": name, "password": PASSWORD, **kwargs.pop("body", {})}
    return await client.post("/api/auth/login", json=body, **kwargs)


def by_name(cart: dict[str, Any]) -> dict[str, int]:
    return {item["product"]["name"]: item["quantity"] for item in cart["items"]}


async def test_a_guest_cart_follows_every_cart_rule(client, market: Market) -> None:
    seller, seller_h = await user_headers(client)
    guest = await new_guest(client)
    assert len(guest["X-Cart-Token"]) >= 43
    dime = await market.product(seller_h, price="0.10", stock=3, name="Dime")
    first = await market.add(guest, dime["id"], 2)
    assert first.status_code == 201 and set(first.json()) == cart_http.CART_ITEM_KEYS
    again = await market.add(guest, dime["id"], 1)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["quantity"] == 3
    assert (await market.add(guest, dime["id"], 1)).status_code == 409  # over the stock
    big = await market.product(seller_h, stock=500, name="Big")
    assert (await market.add(guest, big["id"], 99)).status_code == 201
    over = await market.add(guest, big["id"], 1)
    assert over.status_code == 422 and over.json()["errors"][0]["field"] == "quantity"
    assert (await market.add(guest, big["id"], 0)).status_code == 422
    r = await client.patch(f"/api/products/{dime['id']}", json={"price": "0.20"}, headers=seller_h)
    assert r.status_code == 200
    cart = await market.cart(guest)
    assert cart["total"] == "990.60" and [i["price_changed"] for i in cart["items"]] == [True, False]
    line = cart["items"][0]["id"]
    r = await client.patch(f"/api/cart/items/{line}", json={"quantity": 4}, headers=guest)
    assert r.status_code == 409
    r = await client.patch(f"/api/cart/items/{line}", json={"quantity": 1}, headers=guest)
    assert r.status_code == 200 and r.json()["line_total"] == "0.20"
    assert (await client.delete(f"/api/products/{big['id']}", headers=seller_h)).status_code == 204
    assert by_name(await market.cart(guest)) == {"Dime": 1}  # withdrawn products drop out
    assert (await client.delete(f"/api/cart/items/{line}", headers=guest)).status_code == 204
    assert (await client.delete(f"/api/cart/items/{line}", headers=guest)).status_code == 404
    assert (await market.add(guest, dime["id"])).status_code == 201
    assert (await client.delete("/api/cart", headers=guest)).status_code == 204
    assert await market.cart(guest) == {"items": [], "total": "0.00"}
    # A guest owns no products: even the seller's own product goes into a guest cart.
    assert seller["id"] == dime["seller"]["id"]


async def test_tokens_are_checked_and_carts_stay_private(client, market: Market) -> None:
    _, seller_h = await user_headers(client)
    _, user_h = await user_headers(client)
    guest, other = await new_guest(client), await new_guest(client)
    product = await market.product(seller_h, stock=50)
    guest_line = (await market.add(guest, product["id"])).json()["id"]
    other_line = (await market.add(other, product["id"], 2)).json()["id"]
    user_line = (await market.add(user_h, product["id"], 3)).json()["id"]
    for line in (other_line, user_line, str(uuid.uuid4())):  # someone else's line: not found
        assert (await client.patch(f"/api/cart/items/{line}", json={"quantity": 5}, headers=guest)).status_code == 404
        assert (await client.delete(f"/api/cart/items/{line}", headers=guest)).status_code == 404
    assert (
        await client.patch(f"/api/cart/items/{guest_line}", json={"quantity": 5}, headers=user_h)
    ).status_code == 404
    assert [i["quantity"] for i in (await market.cart(other))["items"]] == [2]
    assert [i["quantity"] for i in (await market.cart(user_h))["items"]] == [3]
    # The bearer token wins over a cart token sent with it.
    assert [i["id"] for i in (await market.cart({**user_h, **guest}))["items"]] == [user_line]
    for bad in ({"X-Cart-Token": "nope"}, {"X-Cart-Token": ""}, {"X-Cart-Token": "x" * 4000}, {}):
        r = await client.get("/api/cart", headers=bad)
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert r.json()["status"] == 401 and r.json()["detail"]
    # Checkout and every non-cart route need a user.
    r = await client.post("/api/cart/checkout", headers=guest)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    for path in ("/api/orders", "/api/users/me", "/api/favorites"):
        assert (await client.get(path, headers=guest)).status_code == 401
    assert (await client.delete("/api/cart", headers=guest)).status_code == 204
    assert [i["quantity"] for i in (await market.cart(other))["items"]] == [2]


async def test_tokens_slide_for_30_days_and_are_touched_cheaply(client, market: Market, container) -> None:
    guest = await new_guest(client)
    now = datetime.now(UTC)
    recent = now - timedelta(minutes=10)
    await set_last_used(container, guest, recent)
    await market.cart(guest)
    assert await last_used(container, guest) == recent  # used within the hour: no write
    await set_last_used(container, guest, now - timedelta(days=29))
    await market.cart(guest)
    assert await last_used(container, guest) >= now  # touched: 30 more days
    await set_last_used(container, guest, now - timedelta(days=30, minutes=1))
    assert (await client.get("/api/cart", headers=guest)).status_code == 401


async def test_login_merges_the_guest_cart_once(client, market: Market) -> None:
    _, seller_h = await user_headers(client)
    dora, dora_h = await user_headers(client)
    capped = await market.product(seller_h, stock=4, name="Capped")
    limit = await market.product(seller_h, stock=500, name="Limit")
    fresh = await market.product(seller_h, stock=9, name="Fresh")
    gone = await market.product(seller_h, name="Gone")
    own = await market.product(dora_h, name="Own")
    await market.add(dora_h, capped["id"], 2)
    await market.add(dora_h, limit["id"], 60)
    guest = await new_guest(client)
    for product, quantity in ((capped, 3), (limit, 50), (fresh, 2), (gone, 1), (own, 1)):
        assert (await market.add(guest, product["id"], quantity)).status_code == 201
    assert (await client.delete(f"/api/products/{gone['id']}", headers=seller_h)).status_code == 204
    r = await login_with(client, dora["username"], headers=guest)
    assert r.status_code == 200 and set(r.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    merged = {"Capped": 4, "Limit": 99, "Fresh": 2}
    assert by_name(await market.cart(dora_h)) == merged
    assert (await client.get("/api/cart", headers=guest)).status_code == 401  # spent
    again = await login_with(client, dora["username"], headers=guest)
    assert again.status_code == 200  # a spent token never fails a login
    assert by_name(await market.cart(dora_h)) == merged


async def test_login_takes_the_token_from_the_body_and_ignores_bad_ones(client, market: Market) -> None:
    _, seller_h = await user_headers(client)
    erin = await register(client)
    product = await market.product(seller_h, name="Lamp")
    guest = await new_guest(client)
    await market.add(guest, product["id"], 2)
    for bad in ("unknown", "", "x" * 5000):
        assert (await login_with(client, erin["username"], body={"cart_token": bad})).status_code == 200
    assert (await login_with(client, erin["username"], body={"cart_token": None})).status_code == 200
    assert (await login_with(client, erin["username"], body={"cart_token": 7})).status_code == 400  # wrong type
    wrong = await client.post(
        "/api/auth/login", json={"email": erin["username"], "password": "wrong password!", "cart_token": "x"}
    )
    assert wrong.status_code == 401
    r = await login_with(client, erin["username"], body={"cart_token": guest["X-Cart-Token"]})
    assert r.status_code == 200
    erin_h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert by_name(await market.cart(erin_h)) == {"Lamp": 2}
    # The OAuth2 form route takes the header too.
    guest = await new_guest(client)
    await market.add(guest, product["id"], 1)
    r = await client.post("/api/auth/token", data={"username": erin["username"], "password": PASSWORD}, headers=guest)
    assert r.status_code == 200, r.text
    assert by_name(await market.cart(erin_h)) == {"Lamp": 3}


async def test_racing_logins_with_one_token_merge_once(client, market: Market, container) -> None:
    _, seller_h = await user_headers(client)
    finn = await register(client)
    a = await market.product(seller_h, stock=50, name="A")
    b = await market.product(seller_h, stock=50, name="B")
    guest = await new_guest(client)
    await market.add(guest, a["id"], 3)
    await market.add(guest, b["id"], 1)
    results = await asyncio.gather(*(login_with(client, finn["username"], headers=guest) for _ in range(4)))
    assert [r.status_code for r in results] == [200] * 4
    finn_h = {"Authorization": f"Bearer {results[0].json()['access_token']}"}
    assert by_name(await market.cart(finn_h)) == {"A": 3, "B": 1}  # not 6 and 2
    async with container.adapters.requests.uow() as uow:
        guest_lines = await uow.executor.rows(
            select(table_of(CartItemRow).c.id).where(table_of(CartItemRow).c.guest_cart_id.is_not(None))
        )
    assert list(guest_lines) == []


async def test_an_add_racing_a_merge_is_merged_or_refused_never_lost(client, market: Market, container) -> None:
    _, seller_h = await user_headers(client)
    gail = await register(client)
    products = [await market.product(seller_h, stock=50, name=f"P{i}") for i in range(4)]
    merged_in: set[str] = set()
    for product in products:
        guest = await new_guest(client)
        added, logged_in = await asyncio.gather(
            market.add(guest, product["id"]), login_with(client, gail["username"], headers=guest)
        )
        assert logged_in.status_code == 200 and added.status_code in (201, 401), added.text
        if added.status_code == 201:
            merged_in.add(product["name"])
    gail_h = {"Authorization": f"Bearer {logged_in.json()['access_token']}"}
    assert set(by_name(await market.cart(gail_h))) == merged_in
    async with container.adapters.requests.uow() as uow:
        left = await uow.executor.rows(select(table_of(CartItemRow).c.guest_cart_id))
    assert [row["guest_cart_id"] for row in left if row["guest_cart_id"] is not None] == []


async def test_the_purge_job_deletes_carts_unused_for_30_days(client, market: Market, container) -> None:
    assert "purge_guest_carts" in {item.name for item in container.schedule}
    _, seller_h = await user_headers(client)
    product = await market.product(seller_h)
    stale, fresh = await new_guest(client), await new_guest(client)
    await market.add(stale, product["id"])
    await market.add(fresh, product["id"])
    await set_last_used(container, stale, datetime.now(UTC) - timedelta(days=31))
    assert await container.use_cases.cart.purge_guest_carts.execute() == 1
    assert (await client.get("/api/cart", headers=stale)).status_code == 401
    assert len((await market.cart(fresh))["items"]) == 1
    async with container.adapters.requests.uow() as uow:
        lines = await uow.executor.rows(select(table_of(CartItemRow).c.guest_cart_id))
    assert len(lines) == 1


@pytest.fixture
async def limited_client(database_url: str, tmp_path) -> Any:
    import httpx

    from entrypoints.http.app import create_app
    from entrypoints.wiring import Container

    settings = test_settings(
        DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var"), GUEST_CART_RATE_LIMIT_PER_MINUTE="2"
    )
    container = Container(settings)
    app = create_app(settings, container=container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        yield c
    await container.shutdown()


async def test_guest_cart_creation_is_rate_limited_per_address(limited_client) -> None:
    assert [(await limited_client.post("/api/cart/guest")).status_code for _ in range(2)] == [201, 201]
    r = await limited_client.post("/api/cart/guest")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"].startswith("application/problem+json")
    # Its own counter: logins from the same address are not throttled by it.
    user = await register(limited_client)
    assert (await login_with(limited_client, user["username"])).status_code == 200


async def test_openapi_documents_the_cart_token(client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["CartToken"] == {
        "type": "apiKey",
        "name": "X-Cart-Token",
        "in": "header",
        "description": doc["components"]["securitySchemes"]["CartToken"]["description"],
    }
    guest_ops = {
        ("/api/cart", "get"),
        ("/api/cart", "delete"),
        ("/api/cart/items", "post"),
        ("/api/cart/items/{item_id}", "patch"),
        ("/api/cart/items/{item_id}", "delete"),
    }
    for path, method in guest_ops:
        op = doc["paths"][path][method]
        assert "X-Cart-Token" in {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}, path
        assert {"CartToken": []} in op["security"] and {"BearerToken": []} in op["security"]
        assert "401" in op["responses"]
    checkout = doc["paths"]["/api/cart/checkout"]["post"]
    assert "X-Cart-Token" not in {p["name"] for p in checkout.get("parameters", [])}
    assert {"CartToken": []} not in checkout.get("security", [{"BearerToken": []}]) and "401" in checkout["responses"]
    create = doc["paths"]["/api/cart/guest"]["post"]
    assert create["operationId"] == "createGuestCart" and {"201", "429"} <= set(create["responses"])
    login = doc["paths"]["/api/auth/login"]["post"]
    assert "X-Cart-Token" in {p["name"] for p in login.get("parameters", [])}
