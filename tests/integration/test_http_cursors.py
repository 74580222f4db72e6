"""Cursors over HTTP, on SQLite and on Postgres: only a cursor the service issued for exactly this
list (sort, filters, owner) is accepted; anything else, including a well-signed cursor whose key
is out of range (which used to reach the driver: a 500), is a 400 problem."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from application.pagination import encode_cursor
from tests.helpers import admin_headers, user_headers

PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))
# As text: a datetime this close to the calendar's ends cannot even be packed as a timestamp.
EXTREME_DATES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
PRODUCTS_SCOPE = "products|None|None|None|None|None|None"


def _bad_cursor(r: Any) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "cursor"


def _old_style(kind: str, key: Any) -> str:
    """The previous codec's format, with its public checksum: anyone could mint these."""
    payload = msgspec.msgpack.encode((kind, key, uuid.uuid4()))
    digest = hashlib.blake2b(payload, digest_size=6, person=b"mkt-cursor").digest()
    return base64.urlsafe_b64encode(payload + digest).rstrip(b"=").decode()


@pytest.fixture
async def shop(client: Any, container: Any) -> dict[str, Any]:
    _, admin = await admin_headers(client, container)
    seller, s = await user_headers(client)
    buyer, b = await user_headers(client)
    category = (await client.post("/api/categories", json={"name": "Lamps"}, headers=admin)).json()
    products = []
    for i in range(3):
        body = {"name": f"Lamp {i}", "description": "warm", "price": f"{i + 1}.00", "category_id": category["id"]}
        r = await client.post("/api/products", json={**body, "stock": 5}, headers=s)
        assert r.status_code == 201, r.text
        products.append(r.json())
    for p in products:
        assert (await client.put(f"/api/favorites/{p['id']}", headers=b)).status_code == 201
        r = await client.post(f"/api/products/{p['id']}/reviews", json={"rating": 4}, headers=b)
        assert r.status_code == 201, r.text
    for p in products[:2]:
        await client.post("/api/cart/items", json={"product_id": p["id"], "quantity": 1}, headers=b)
        assert (await client.post("/api/cart/checkout", headers=b)).status_code == 201
    return {"seller": seller, "s": s, "buyer": buyer, "b": b, "products": products, "category": category}


def _lists(shop: dict[str, Any]) -> list[tuple[str, dict[str, str], str, str]]:
    """(url, headers, cursor kind, cursor scope) of every keyset list."""
    first = shop["products"][0]["id"]
    return [
        ("/api/products", {}, "newest", PRODUCTS_SCOPE),
        ("/api/orders", shop["b"], "orders", shop["buyer"]["id"]),
        ("/api/favorites", shop["b"], "favorites", shop["buyer"]["id"]),
        (f"/api/products/{first}/reviews", {}, "reviews", first),
        ("/api/sales", shop["s"], "sales", shop["seller"]["id"]),
    ]


async def test_every_list_walks_with_its_own_cursors(client: Any, shop: dict[str, Any]) -> None:
    for url, headers, _, _ in _lists(shop):
        seen, cursor = 0, None
        while True:
            r = await client.get(url, params={"limit": 1, **({"cursor": cursor} if cursor else {})}, headers=headers)
            assert r.status_code == 200, (url, r.text)
            seen += len(r.json()["items"])
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert seen >= 1, url


async def test_signed_cursors_with_out_of_range_dates_are_400(client: Any, shop: dict[str, Any]) -> None:
    for url, headers, kind, scope in _lists(shop):
        for key in EXTREME_DATES:
            cursor = encode_cursor(kind, key, uuid.uuid4(), scope=scope)  # type: ignore[arg-type]
            _bad_cursor(await client.get(url, params={"cursor": cursor}, headers=headers))


@pytest.mark.parametrize(
    ("sort", "key"),
    [("price_asc", Decimal("1E+100000")), ("rating", Decimal("-1E+400")), ("price_desc", Decimal("NaN"))],
)
async def test_signed_cursors_with_absurd_numbers_are_400(client: Any, sort: str, key: Decimal) -> None:
    cursor = encode_cursor(sort, key, uuid.uuid4(), scope=PRODUCTS_SCOPE)
    _bad_cursor(await client.get("/api/products", params={"sort": sort, "cursor": cursor}))


async def test_an_infinite_relevance_key_is_400(client: Any, shop: dict[str, Any]) -> None:
    cursor = encode_cursor("relevance", float("inf"), uuid.uuid4(), scope="products|lamp|None|None|None|None|None")
    _bad_cursor(await client.get("/api/products", params={"q": "lamp", "cursor": cursor}))


async def test_client_minted_cursors_are_400(client: Any, shop: dict[str, Any]) -> None:
    for url, headers, kind, _ in _lists(shop):
        for forged in (_old_style(kind, datetime.now(PLUS_14)), _old_style(kind, EXTREME_DATES[0]), "x" * 40):
            _bad_cursor(await client.get(url, params={"cursor": forged}, headers=headers))
    for sort in ("price_asc", "rating"):
        forged = _old_style(sort, Decimal("1.00"))
        _bad_cursor(await client.get("/api/products", params={"sort": sort, "cursor": forged}))


async def test_a_cursor_from_another_list_sort_filter_or_user_is_400(client: Any, shop: dict[str, Any]) -> None:
    newest = (await client.get("/api/products", params={"limit": 1})).json()["next_cursor"]
    assert newest is not None
    for params in (
        {"sort": "price_asc"},
        {"seller_id": shop["seller"]["id"]},
        {"category_id": shop["category"]["id"]},
        {"min_price": "0.50"},
        {"q": "lamp", "sort": "newest"},
    ):
        _bad_cursor(await client.get("/api/products", params={**params, "cursor": newest}))
    mine = (await client.get("/api/favorites", params={"limit": 1}, headers=shop["b"])).json()["next_cursor"]
    assert mine is not None
    _bad_cursor(await client.get("/api/favorites", params={"cursor": mine}, headers=shop["s"]))  # another user
    _bad_cursor(await client.get("/api/orders", params={"cursor": mine}, headers=shop["b"]))  # another list
    first, second = shop["products"][0]["id"], shop["products"][1]["id"]
    reviews = (await client.get(f"/api/products/{first}/reviews", params={"limit": 1})).json()["next_cursor"]
    if reviews is not None:  # one review per product here; a cursor still cannot cross products
        _bad_cursor(await client.get(f"/api/products/{second}/reviews", params={"cursor": reviews}))
    relevance = (await client.get("/api/products", params={"q": "lamp", "limit": 1})).json()["next_cursor"]
    assert relevance is not None
    _bad_cursor(await client.get("/api/products", params={"q": "warm", "cursor": relevance}))
