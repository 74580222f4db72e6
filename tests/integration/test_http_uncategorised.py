"""Uncategorised products over HTTP, on SQLite and on Postgres: `category_id` is optional on
POST /api/products (null = uncategorised); such a product shows `category: null` in its detail,
listings, searches, favorites, similar products and the feed, is listed everywhere except under a
category filter, and PATCH can set or clear its category. An unknown category stays 422."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import admin_headers, user_headers


async def _shop(client: Any, container: Any) -> dict[str, Any]:
    _, admin = await admin_headers(client, container)
    seller, s = await user_headers(client)
    buyer, b = await user_headers(client)
    lamps = (await client.post("/api/categories", json={"name": "Lamps"}, headers=admin)).json()
    r = await client.post(
        "/api/products", json={"name": "Desk lamp", "price": "10.00", "category_id": lamps["id"]}, headers=s
    )
    assert r.status_code == 201, r.text
    return {"seller": seller, "s": s, "buyer": buyer, "b": b, "lamps": lamps, "lamp": r.json()}


async def test_a_product_without_a_category_is_listed_everywhere_but_category_filters(
    client: Any, container: Any
) -> None:
    shop = await _shop(client, container)
    s, b = shop["s"], shop["b"]
    r = await client.post("/api/products", json={"name": "Cable box", "price": "9.00", "stock": 3}, headers=s)
    assert r.status_code == 201, r.text
    box = r.json()
    assert box["category"] is None
    r = await client.post("/api/products", json={"name": "Null box", "price": "8.00", "category_id": None}, headers=s)
    assert r.status_code == 201 and r.json()["category"] is None
    detail = await client.get(f"/api/products/{box['id']}")
    assert detail.status_code == 200 and detail.json() == box

    for params in ({}, {"sort": "price_asc"}, {"sort": "price_desc"}, {"sort": "rating"}, {"q": "cable"}):
        items = (await client.get("/api/products", params=params)).json()["items"]
        assert box["id"] in [p["id"] for p in items], params
        assert next(p for p in items if p["id"] == box["id"])["category"] is None
    by_seller = (await client.get("/api/products", params={"seller_id": shop["seller"]["id"]})).json()["items"]
    assert len(by_seller) == 3
    in_lamps = (await client.get("/api/products", params={"category_id": shop["lamps"]["id"]})).json()["items"]
    assert [p["id"] for p in in_lamps] == [shop["lamp"]["id"]]
    counts = {c["slug"]: c["product_count"] for c in (await client.get("/api/categories")).json()}
    assert counts == {"lamps": 1}

    assert (await client.put(f"/api/favorites/{box['id']}", headers=b)).status_code == 201
    favorites = (await client.get("/api/favorites", headers=b)).json()["items"]
    assert favorites[0]["product"]["category"] is None
    r = await client.post("/api/cart/items", json={"product_id": box["id"], "quantity": 1}, headers=b)
    assert r.status_code in (200, 201), r.text
    cart = await client.get("/api/cart", headers=b)
    assert cart.status_code == 200 and cart.json()["items"][0]["product"]["id"] == box["id"]
    order = await client.post("/api/cart/checkout", headers=b)
    assert order.status_code == 201, order.text
    assert (await client.get("/api/sales", headers=s)).status_code == 200

    result = await container.use_cases.recommendations.refresh_recommendations.execute()
    assert result is not None
    similar = await client.get(f"/api/products/{box['id']}/similar")
    assert similar.status_code == 200, similar.text
    for item in similar.json()["items"]:
        assert item["product"]["id"] != box["id"]
    _, fresh = await user_headers(client)
    feed = await client.get("/api/recommendations", headers=fresh)
    assert feed.status_code == 200, feed.text
    mine = await client.get("/api/recommendations", headers=b)
    assert mine.status_code == 200, mine.text


async def test_patch_sets_and_clears_the_category_and_unknown_ones_are_422(client: Any, container: Any) -> None:
    shop = await _shop(client, container)
    s, lamp, lamps = shop["s"], shop["lamp"], shop["lamps"]
    cleared = await client.patch(f"/api/products/{lamp['id']}", json={"category_id": None}, headers=s)
    assert cleared.status_code == 200 and cleared.json()["category"] is None
    assert (await client.get(f"/api/products/{lamp['id']}")).json()["category"] is None
    in_lamps = (await client.get("/api/products", params={"category_id": lamps["id"]})).json()["items"]
    assert in_lamps == []
    again = await client.patch(f"/api/products/{lamp['id']}", json={"category_id": lamps["id"]}, headers=s)
    assert again.status_code == 200 and again.json()["category"]["id"] == lamps["id"]
    untouched = await client.patch(f"/api/products/{lamp['id']}", json={"name": "Lamp II"}, headers=s)
    assert untouched.json()["category"]["id"] == lamps["id"]
    for body in ({"category_id": str(uuid.uuid4())},):
        r = await client.patch(f"/api/products/{lamp['id']}", json=body, headers=s)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "category_id"
        r = await client.post("/api/products", json={"name": "X", "price": "1.00", **body}, headers=s)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "category_id"
    assert len((await client.get("/api/products")).json()["items"]) == 1
