"""The attack matrix over HTTP, on SQLite and on Postgres.

Every route that reads or writes a user's data is tried with another user's token (403, or 404
where even existence is private) and the owner's data is re-read afterwards to prove nothing
changed. Then: revoked and orphaned tokens, refresh tokens after a password reset, mass
assignment, injection strings in every free-text field, bad ids in every path, oversized query
parameters on every list, wrong JSON types in bodies, and the transport-level settings
(ALLOWED_HOSTS, CORS, no-store on token responses).
"""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.users import Role
from tests.conftest import test_settings
from tests.helpers import PASSWORD, login, register

BAD_IDS = ["not-a-uuid", "1", "0" * 40, "..%2F..%2Fetc%2Fpasswd", "%00", "x" * 3000, "%C3%A9t%C3%A9", "-1"]
INJECTIONS = [
    "'; DROP TABLE users; --",
    "Robert'); DROP TABLE products;--",
    '" OR "1"="1',
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "{{7*7}} ${7*7} <%= 7*7 %> #{7*7}",
    "%s%s%n %x",
    "../../../../etc/passwd",
    "名前 ünïcödé Ωμέγα",
    "\u202egnp.exe\u202c RTL override",
    "\u200fمرحبا\u200e mixed",
    "🛒🔥 👩\u200d👩\u200d👧 emoji",
    "back\\slash \"quotes\" and 'single'",
    "line one\nline two\ttab",
    "NEAR(a b) AND OR NOT * ^ : -x",
]


@pytest.fixture
async def client(container: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the test's own loop (httpx's ASGI transport), so the test can use ``container``."""
    from entrypoints.http.app import create_app

    app = create_app(container.settings, container=container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        yield c


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def new_user(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    user = await register(client)
    return user, bearer(await login(client, user["username"]))


async def promote(container: Any, user_id: str) -> None:
    async with container.adapters.requests.uow() as uow:
        stored = await uow.users.get(uuid.UUID(user_id))
        stored.role = Role.ADMIN
        await uow.users.update(stored)
        await uow.commit()


def ok(response: httpx.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201)), (response.request.url, response.status_code, response.text)
    return response.json() if response.content else None


@dataclass
class World:
    """Alice owns things; Bob sells to her; Mallory attacks; an admin made the category."""

    client: httpx.AsyncClient
    container: Any
    admin: dict[str, str]
    alice_user: dict[str, Any]
    alice: dict[str, str]
    bob: dict[str, str]
    mallory_user: dict[str, Any]
    mallory: dict[str, str]
    category: str
    ids: dict[str, str] = field(default_factory=dict)

    async def product(self, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {"name": "Lamp", "description": "Warm", "price": "10.00", "category_id": self.category, **fields}
        return dict(ok(await self.client.post("/api/products", json=body, headers=headers), 201))

    async def snapshot(self) -> dict[str, Any]:
        """Everything of Alice's (and Bob's sales to her), read as its owners see it."""
        c, a, ids = self.client, self.alice, self.ids
        return {
            "product": ok(await c.get(f"/api/products/{ids['alice_product']}")),
            "bob_product": ok(await c.get(f"/api/products/{ids['bob_product']}")),
            "reviews": ok(await c.get(f"/api/products/{ids['bob_product']}/reviews")),
            "cart": ok(await c.get("/api/cart", headers=a)),
            "favorites": ok(await c.get("/api/favorites", headers=a)),
            "orders": ok(await c.get("/api/orders", headers=a)),
            "order": ok(await c.get(f"/api/orders/{ids['order']}", headers=a)),
            "report": ok(await c.get(f"/api/reports/{ids['report']}", headers=a)),
            "download": (await c.get(f"/api/reports/{ids['report']}/download", headers=a)).text,
            "me": ok(await c.get("/api/users/me", headers=a)),
            "profile": ok(await c.get(f"/api/users/{self.alice_user['id']}")),
            "sales": ok(await c.get("/api/sales", headers=self.bob)),
        }


@pytest.fixture
async def world(client: httpx.AsyncClient, container: Any) -> World:
    admin_user, admin = await new_user(client)
    await promote(container, admin_user["id"])
    admin = bearer(await login(client, admin_user["username"]))
    alice_user, alice = await new_user(client)
    _, bob = await new_user(client)
    mallory_user, mallory = await new_user(client)
    category = ok(await client.post("/api/categories", json={"name": f"C {uuid.uuid4().hex[:6]}"}, headers=admin))
    w = World(client, container, admin, alice_user, alice, bob, mallory_user, mallory, category["id"])
    w.ids["alice_product"] = (await w.product(alice, name="Alice's lamp", stock=7))["id"]
    w.ids["bob_product"] = (await w.product(bob, name="Bob's rug", stock=20))["id"]
    bp = w.ids["bob_product"]
    ok(await client.post("/api/cart/items", json={"product_id": bp, "quantity": 1}, headers=alice), 201)
    w.ids["order"] = ok(await client.post("/api/cart/checkout", headers=alice), 201)["id"]
    review = {"rating": 4, "comment": "Solid"}
    w.ids["review"] = ok(await client.post(f"/api/products/{bp}/reviews", json=review, headers=alice), 201)["id"]
    ok(await client.put(f"/api/favorites/{bp}", headers=alice), 201)
    w.ids["line"] = ok(
        await client.post("/api/cart/items", json={"product_id": bp, "quantity": 2}, headers=alice), 201
    )["id"]
    period = {"kind": "sales", "from": "2025-01-01", "to": "2025-01-31"}
    w.ids["report"] = ok(await client.post("/api/reports", json=period, headers=alice), 202)["id"]
    await container.adapters.queue.drain(30)
    return w


async def test_another_users_token_is_refused_and_changes_nothing(world: World) -> None:
    c, m, ids = world.client, world.mallory, world.ids
    before = await world.snapshot()
    assert before["report"]["status"] == "done" and before["cart"]["items"]
    # Mallory has a cart line and a favorite of her own, so "her" lists are not trivially empty.
    own_line = ok(await c.post("/api/cart/items", json={"product_id": ids["bob_product"]}, headers=m), 201)
    ok(await c.put(f"/api/favorites/{ids['alice_product']}", headers=m), 201)

    attempts: list[tuple[str, str, Any, int]] = [
        ("PATCH", f"/api/products/{ids['alice_product']}", {"name": "pwned", "price": "0.01", "stock": 0}, 403),
        ("DELETE", f"/api/products/{ids['alice_product']}", None, 403),
        ("PATCH", f"/api/reviews/{ids['review']}", {"rating": 1, "comment": "pwned"}, 403),
        ("DELETE", f"/api/reviews/{ids['review']}", None, 403),
        ("PATCH", f"/api/cart/items/{ids['line']}", {"quantity": 9}, 404),
        ("DELETE", f"/api/cart/items/{ids['line']}", None, 404),
        ("GET", f"/api/orders/{ids['order']}", None, 404),
        ("POST", f"/api/orders/{ids['order']}/cancel", None, 404),
        ("GET", f"/api/reports/{ids['report']}", None, 404),
        ("GET", f"/api/reports/{ids['report']}/download", None, 404),
    ]
    for method, path, body, expected in attempts:
        r = await c.request(method, path, json=body, headers=m)
        assert r.status_code == expected, (method, path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert world.alice_user["email"] not in r.text
        anonymous = await c.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)

    # Routes keyed by the caller only ever touch the caller's own rows.
    assert [i["id"] for i in ok(await c.get("/api/cart", headers=m))["items"]] == [own_line["id"]]
    assert [f["product"]["id"] for f in ok(await c.get("/api/favorites", headers=m))["items"]] == [ids["alice_product"]]
    assert ok(await c.get("/api/orders", headers=m)) == {"items": [], "next_cursor": None}
    assert ok(await c.get("/api/sales", headers=m)) == {"items": [], "next_cursor": None}
    ok(await c.delete(f"/api/favorites/{ids['bob_product']}", headers=m), 204)  # not hers: a no-op
    ok(await c.delete("/api/cart", headers=m), 204)
    me = ok(await c.get("/api/users/me", headers=m))
    assert me["id"] == world.mallory_user["id"] and me["email"] == world.mallory_user["email"]
    taken = {"id": world.alice_user["id"], "email": world.alice_user["email"]}
    r = await c.patch("/api/users/me", json=taken, headers=m)
    assert r.status_code == 401  # an email change needs current_password
    r = await c.patch("/api/users/me", json={**taken, "current_password": PASSWORD}, headers=m)
    assert r.status_code == 409  # the email is Alice's; her account is not touched either way
    renamed = ok(
        await c.patch("/api/users/me", json={"id": world.alice_user["id"], "username": "m_renamed"}, headers=m)
    )
    assert renamed["id"] == world.mallory_user["id"]
    ok(await c.delete("/api/users/me", headers=m), 204)

    assert await world.snapshot() == before


async def test_revoked_and_orphaned_tokens_are_401(world: World) -> None:
    c = world.client
    user, _ = await new_user(c)
    first = await login(c, user["username"])
    second = await login(c, user["username"])
    ok(await c.post("/api/auth/logout", headers=bearer(first)), 204)
    protected = [
        ("GET", "/api/users/me", None),
        ("GET", "/api/cart", None),
        ("POST", "/api/cart/items", {"product_id": world.ids["alice_product"]}),
        ("PATCH", f"/api/products/{world.ids['alice_product']}", {"name": "x"}),
        ("GET", "/api/orders", None),
        ("POST", "/api/auth/logout", None),
    ]
    for method, path, body in protected:
        r = await c.request(method, path, json=body, headers=bearer(first))
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await c.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 401
    assert ok(await c.get("/api/users/me", headers=bearer(second)))["id"] == user["id"]  # other session lives

    ok(await c.delete("/api/users/me", headers=bearer(second)), 204)
    for tokens in (first, second):
        for method, path, body in protected:
            r = await c.request(method, path, json=body, headers=bearer(tokens))
            assert r.status_code == 401, (method, path, r.text)
        r = await c.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401
    r = await c.post("/api/auth/login", json={"email": user["username"], "password": PASSWORD})
    assert r.status_code == 401


def _reset_token(outbox: Path, address: str) -> str:
    for path in outbox.glob("*.eml"):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if str(mail["To"]) == address and "Reset" in str(mail["Subject"]):
            body = mail.get_body(preferencelist=("plain",))
            assert body is not None
            link = next(word for word in str(body.get_content()).split() if "/reset-password?token=" in word)
            return link.split("token=", 1)[1]
    raise AssertionError(f"no reset mail to {address}")


async def test_password_reset_ends_every_session_and_refresh_family(world: World) -> None:
    c, container = world.client, world.container
    user, _ = await new_user(c)
    sessions = [await login(c, user["username"]) for _ in range(2)]
    rotated = ok(await c.post("/api/auth/refresh", json={"refresh_token": sessions[1]["refresh_token"]}))
    ok(await c.post("/api/auth/password-reset", json={"email": user["email"]}), 202)
    await container.adapters.queue.drain(30)
    token = _reset_token(container.settings.outbox_dir, user["email"])
    body = {"token": token, "new_password": "a new long password"}
    ok(await c.post("/api/auth/password-reset/confirm", json=body), 204)
    assert (await c.post("/api/auth/password-reset/confirm", json=body)).status_code == 400  # single use

    for pair in (sessions[0], rotated):
        assert (await c.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})).status_code == 401
        assert (await c.get("/api/users/me", headers=bearer(pair))).status_code == 401
    r = await c.post("/api/auth/login", json={"email": user["username"], "password": PASSWORD})
    assert r.status_code == 401
    fresh = await login(c, user["username"], "a new long password")
    assert ok(await c.post("/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]}))["access_token"]


async def test_mass_assignment_is_ignored(world: World) -> None:
    c, container, ids = world.client, world.container, world.ids
    alice_id, mallory_id = world.alice_user["id"], world.mallory_user["id"]
    forged_id = str(uuid.uuid4())

    name = f"m{uuid.uuid4().hex[:8]}"
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
    extra = {"role": "admin", "id": forged_id, "email_verified": True, "token_version": 7, "created_at": "2000-01-01"}
    made = ok(await c.post("/api/auth/register", json={**body, **extra}), 201)
    assert made["id"] != forged_id and made["role"] == "user" and made["email_verified"] is False
    headers = bearer(await login(c, name))
    patched = ok(
        await c.patch("/api/users/me", json={"role": "admin", "id": forged_id, "email_verified": True}, headers=headers)
    )
    assert (patched["id"], patched["role"], patched["email_verified"]) == (made["id"], "user", False)
    async with container.adapters.requests.uow() as uow:
        stored = await uow.users.get(uuid.UUID(made["id"]))
    assert stored.role is Role.USER and not stored.email_verified
    assert (await c.post("/api/categories", json={"name": "Sneaky"}, headers=headers)).status_code == 403

    counters = {"rating_avg": 5.0, "review_count": 99, "favorite_count": 99, "stock_reserved": 5}
    product = await world.product(
        headers,
        id=forged_id,
        seller_id=alice_id,
        seller={"id": alice_id},
        created_at="2000-01-01T00:00:00Z",
        **counters,
    )
    assert product["id"] != forged_id and product["seller"]["id"] == made["id"]
    assert (product["rating_avg"], product["review_count"], product["favorite_count"]) == (None, 0, 0)
    r = await c.patch(
        f"/api/products/{product['id']}", json={"seller_id": alice_id, "id": forged_id, **counters}, headers=headers
    )
    assert ok(r) == ok(await c.get(f"/api/products/{product['id']}")) and ok(r)["seller"]["id"] == made["id"]
    assert (ok(r)["rating_avg"], ok(r)["review_count"], ok(r)["favorite_count"]) == (None, 0, 0)

    review = ok(
        await c.post(
            f"/api/products/{product['id']}/reviews",
            json={"rating": 3, "verified_purchase": True, "author_id": alice_id, "product_id": ids["bob_product"]},
            headers=world.mallory,
        ),
        201,
    )
    assert review["verified_purchase"] is False and review["author"]["id"] == mallory_id
    assert review["product_id"] == product["id"]
    r = await c.patch(
        f"/api/reviews/{review['id']}",
        json={"verified_purchase": True, "product_id": ids["bob_product"], "author_id": alice_id},
        headers=world.mallory,
    )
    assert ok(r)["verified_purchase"] is False and ok(r)["product_id"] == product["id"]

    line = ok(
        await c.post(
            "/api/cart/items",
            json={"product_id": ids["bob_product"], "user_id": alice_id, "unit_price": "0.01", "price": "0.01"},
            headers=world.mallory,
        ),
        201,
    )
    assert line["unit_price"] == "10.00"
    r = await c.patch(
        f"/api/cart/items/{line['id']}",
        json={"quantity": 2, "unit_price": "0.01", "product_id": ids["alice_product"], "user_id": alice_id},
        headers=world.mallory,
    )
    assert ok(r)["product"]["id"] == ids["bob_product"] and ok(r)["line_total"] == "20.00"
    alice_cart = ok(await c.get("/api/cart", headers=world.alice))
    assert [i["id"] for i in alice_cart["items"]] == [ids["line"]]

    order = ok(
        await c.post(
            "/api/cart/checkout",
            json={"total": "0.01", "status": "cancelled", "buyer_id": alice_id, "items": []},
            headers=world.mallory,
        ),
        201,
    )
    assert (order["status"], order["total"]) == ("placed", "20.00")
    assert (await c.get(f"/api/orders/{order['id']}", headers=world.alice)).status_code == 404
    r = await c.post(f"/api/orders/{order['id']}/cancel", json={"status": "placed"}, headers=world.mallory)
    assert ok(r)["status"] == "cancelled"

    report = ok(
        await c.post(
            "/api/reports",
            json={"kind": "sales", "from": "2025-01-01", "to": "2025-01-02", "owner_id": alice_id, "status": "done"},
            headers=world.mallory,
        ),
        202,
    )
    assert report["status"] == "queued" and report["download_url"] is None
    assert (await c.get(f"/api/reports/{report['id']}", headers=world.alice)).status_code == 404

    category = ok(
        await c.post(
            "/api/categories",
            json={"name": "Garden tools", "slug": "admin", "id": forged_id, "product_count": 42},
            headers=world.admin,
        ),
        201,
    )
    assert (category["id"], category["slug"], category["product_count"]) != (forged_id, "admin", 42)
    assert category["slug"] == "garden-tools" and category["product_count"] == 0
    await container.adapters.queue.drain(30)


async def test_injection_strings_round_trip_as_plain_text(world: World) -> None:
    c = world.client
    for text in INJECTIONS:
        product = await world.product(world.alice, name=text[:200], description=f"{text} — {text}")
        assert (product["name"], product["description"]) == (text[:200], f"{text} — {text}")
        r = await c.get(f"/api/products/{product['id']}")
        assert r.headers["content-type"] == "application/json" and r.headers["x-content-type-options"] == "nosniff"
        assert (r.json()["name"], r.json()["description"]) == (text, f"{text} — {text}")
        review = ok(
            await c.post(
                f"/api/products/{product['id']}/reviews", json={"rating": 5, "comment": text}, headers=world.bob
            ),
            201,
        )
        assert review["comment"] == text
        listed = ok(await c.get(f"/api/products/{product['id']}/reviews"))
        assert [item["comment"] for item in listed["items"]] == [text]
        category = ok(await c.post("/api/categories", json={"name": text[:100]}, headers=world.admin), 201)
        assert category["name"] == text[:100]
        assert category["slug"] and set(category["slug"]) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        found = await c.get("/api/products", params={"q": text})
        assert found.status_code == 200, (text, found.text)
        assert found.headers["content-type"] == "application/json"
        changed = ok(await c.patch(f"/api/products/{product['id']}", json={"name": f"{text}!"}, headers=world.alice))
        assert changed["name"] == f"{text}!"
    assert "49" not in ok(await c.get("/api/products", params={"limit": 100}))["items"][0]["name"]
    # Account fields have strict shapes: odd ones are refused (422), valid odd ones round-trip.
    quoted = f"o'brien+{uuid.uuid4().hex[:6]}@example.com"
    body = {"username": f"ob.{uuid.uuid4().hex[:6]}", "email": quoted, "password": PASSWORD}
    made = ok(await c.post("/api/auth/register", json=body), 201)
    assert made["email"] == quoted
    for text in INJECTIONS:
        body = {"username": text[:32], "email": f"{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD}
        assert (await c.post("/api/auth/register", json=body)).status_code == 422, text
        body = {"username": f"u{uuid.uuid4().hex[:8]}", "email": f"{text}@example.com", "password": PASSWORD}
        r = await c.post("/api/auth/register", json=body)
        assert r.status_code in (201, 422), (text, r.status_code, r.text)
        if r.status_code == 201:
            assert r.json()["email"] == body["email"]
    # The tables are all still there.
    assert len(ok(await c.get("/api/categories"))) == len(INJECTIONS) + 1
    assert ok(await c.get("/api/users/me", headers=world.alice))["id"] == world.alice_user["id"]
    for path, body in (
        ("/api/products", {"name": "nul\x00byte", "price": "1.00", "category_id": world.category}),
        (f"/api/products/{world.ids['bob_product']}/reviews", {"rating": 5, "comment": "nul\x00"}),
        ("/api/categories", {"name": "nul\x00"}),
    ):
        headers = world.admin if path == "/api/categories" else world.mallory
        r = await c.post(path, json=body, headers=headers)
        assert r.status_code == 422, (path, r.status_code, r.text)
    for q in ("nul\x00byte", '"unbalanced', "*", "a" * 200, "%ED%A0%80", "%FF%FE"):
        r = await c.get("/api/products", params={"q": q})
        assert r.status_code in ((422,) if "\x00" in q else (200, 400)), (q, r.status_code, r.text)
        if q.startswith("%"):  # sent as is: invalid UTF-8 reaches the server
            raw = await c.get(f"/api/products?q={q}")
            assert raw.status_code in (200, 400), (q, raw.status_code, raw.text)
    r = await c.post(
        "/api/products",
        content=b'{"name": "\\ud800 lone surrogate", "price": "1.00", "category_id": "%s"}' % world.category.encode(),
        headers={**world.alice, "content-type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text


# Valid bodies, so that only the id in the path is wrong.
BODIES = {
    ("PATCH", "/api/products/{product_id}"): {"name": "x"},
    ("POST", "/api/products/{product_id}/reviews"): {"rating": 5},
    ("PATCH", "/api/reviews/{review_id}"): {"rating": 5},
    ("PATCH", "/api/cart/items/{item_id}"): {"quantity": 1},
    ("PATCH", "/api/categories/{category_id}"): {"name": "x"},
}
NOT_404 = {("DELETE", "/api/favorites/{product_id}"): 204}  # documented: 204 also for no product at all


def _operations(client: httpx.AsyncClient) -> list[tuple[str, str, dict[str, Any]]]:
    app = client._transport.app  # type: ignore[attr-defined]
    doc = app.openapi_schema.to_schema()
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


async def test_bad_and_unknown_ids_in_every_path_are_404(world: World) -> None:
    c = world.client
    templated = [(m, p) for m, p, _ in _operations(c) if "{" in p]
    assert len(templated) >= 15
    for method, template in templated:
        for bad in [*BAD_IDS, str(uuid.uuid4()), str(uuid.UUID(int=0))]:
            path = template
            while "{" in path:
                start, end = path.index("{"), path.index("}")
                path = path[:start] + bad + path[end + 1 :]
            r = await c.request(method, path, json=BODIES.get((method, template)), headers=world.admin)
            expected = NOT_404.get((method, template), 404)
            if "%2F" in bad:  # an id with slashes matches no route at all
                expected = 404
            if bad == "%00":  # NUL anywhere in a request is refused at the decoding edge
                expected = 422
            assert r.status_code == expected, (method, path[:80], r.status_code, r.text[:300])
            if r.status_code in (404, 422):
                assert r.headers["content-type"].startswith("application/problem+json")


async def test_huge_and_out_of_range_query_parameters_are_4xx(world: World) -> None:
    c = world.client
    listing = [(m, p, op) for m, p, op in _operations(c) if any(x["name"] == "limit" for x in op.get("parameters", []))]
    assert len(listing) >= 5
    for method, template, op in listing:
        path = template.replace("{product_id}", world.ids["bob_product"])
        names = {x["name"] for x in op["parameters"]}
        cases: list[dict[str, str]] = [
            {"limit": str(10**20)},
            {"limit": "101"},
            {"limit": "0"},
            {"limit": "-1"},
            {"limit": "1e3"},
            {"limit": "NaN"},
            {"limit": ""},
        ]
        if "cursor" in names:
            cases += [{"cursor": "A" * 10_000}, {"cursor": "%%%"}, {"cursor": "AAAAAAAAAAAAAAAAAAAA"}]
        if "q" in names:
            cases += [{"q": "x" * 10_000}, {"q": "word " * 2_000}]
        if "min_price" in names:
            cases += [{"min_price": "NaN"}, {"max_price": "-Infinity"}, {"min_price": "-1"}, {"max_price": "x"}]
            # Well-formed but beyond any price: answered (nothing or everything matches), never a 500.
            for params in ({"min_price": "1e400"}, {"max_price": "9" * 400}, {"min_price": "0.0000001"}):
                assert (await c.get(path, params=params)).status_code == 200, params
        if "category_id" in names:
            cases += [{"category_id": "x" * 10_000}, {"seller_id": "1"}, {"sort": "x" * 10_000}]
        for params in cases:
            r = await c.request(method, path, params=params, headers=world.alice)
            assert 400 <= r.status_code < 500, (path, {k: v[:20] for k, v in params.items()}, r.status_code, r.text)
            if "limit" in params:
                assert r.status_code == 400, (path, params, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
        ok(await c.request(method, path, params={"limit": "1"}, headers=world.alice))


async def test_wrong_json_types_are_400_and_change_nothing(world: World) -> None:
    c, ids = world.client, world.ids
    before = await world.snapshot()
    product = f"/api/products/{ids['alice_product']}"
    cases: list[tuple[str, str, dict[str, str], dict[str, Any], str | None]] = [
        ("POST", "/api/cart/items", world.alice, {"product_id": ids["bob_product"], "quantity": "2"}, "quantity"),
        ("POST", "/api/cart/items", world.alice, {"product_id": ids["bob_product"], "quantity": True}, "quantity"),
        ("POST", "/api/cart/items", world.alice, {"product_id": ids["bob_product"], "quantity": 2.0}, "quantity"),
        ("POST", "/api/cart/items", world.alice, {"product_id": 5, "quantity": 1}, "product_id"),
        ("PATCH", f"/api/cart/items/{ids['line']}", world.alice, {"quantity": "3"}, "quantity"),
        ("PATCH", f"/api/cart/items/{ids['line']}", world.alice, {"quantity": None}, "quantity"),
        ("PATCH", f"/api/reviews/{ids['review']}", world.alice, {"rating": "5"}, "rating"),
        ("PATCH", f"/api/reviews/{ids['review']}", world.alice, {"rating": True}, "rating"),
        ("PATCH", f"/api/reviews/{ids['review']}", world.alice, {"comment": 5}, "comment"),
        ("PATCH", product, world.alice, {"stock": 1.5}, "stock"),
        ("PATCH", product, world.alice, {"stock": "5"}, "stock"),
        ("PATCH", product, world.alice, {"stock": True}, "stock"),
        ("PATCH", product, world.alice, {"price": True}, "price"),
        ("PATCH", product, world.alice, {"price": [1]}, "price"),
        ("PATCH", product, world.alice, {"name": 5}, "name"),
        ("PATCH", product, world.alice, {"category_id": 5}, "category_id"),
        (
            "POST",
            "/api/products",
            world.alice,
            {"name": "N", "price": "1.00", "category_id": world.category, "stock": "3"},
            "stock",
        ),
        ("POST", "/api/products", world.alice, {"name": ["N"], "price": "1.00", "category_id": world.category}, "name"),
        ("POST", f"/api/products/{ids['alice_product']}/reviews", world.bob, {"rating": "5"}, "rating"),
        ("POST", f"/api/products/{ids['alice_product']}/reviews", world.bob, {"rating": 4.5}, "rating"),
        ("POST", "/api/reports", world.alice, {"kind": "sales", "from": 20250101, "to": "2025-01-02"}, "from"),
        ("POST", "/api/categories", world.admin, {"name": 5}, "name"),
        ("PATCH", "/api/users/me", world.alice, {"username": 5}, "username"),
        ("POST", "/api/auth/login", {}, {"email": "a@example.com", "password": 12345678901}, "password"),
    ]
    for method, path, headers, body, field_name in cases:
        r = await c.request(method, path, json=body, headers=headers)
        assert r.status_code == 400, (method, path, body, r.status_code, r.text)
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json") and problem["status"] == 400
        assert field_name in {e["field"] for e in problem["errors"]}, problem
    # Prices stay "string or number", and right types still work.
    made = await world.product(world.alice, price=12.5, stock=3)
    assert made["price"] == "12.50" and made["stock"] == 3
    assert (await c.delete(f"/api/products/{made['id']}", headers=world.alice)).status_code == 204
    assert await world.snapshot() == before


async def test_page_size_is_capped_on_every_list(world: World) -> None:
    c = world.client
    for method, template, op in _operations(c):
        limit = next((p for p in op.get("parameters", []) if p["name"] == "limit"), None)
        if limit is None or method != "GET":
            continue
        assert limit["schema"].get("maximum", 10**9) <= 100, (template, limit)
        path = template.replace("{product_id}", world.ids["bob_product"])
        r = await c.get(path, params={"limit": "101"}, headers=world.alice)
        assert r.status_code == 400, (path, r.status_code)
        assert "limit" in {e["field"] for e in r.json().get("errors") or []} or "limit" in r.json()["detail"]


async def test_token_responses_are_not_stored(world: World) -> None:
    c = world.client
    user = await register(c)
    responses = {
        "login": await c.post("/api/auth/login", json={"email": user["username"], "password": PASSWORD}),
        "token": await c.post("/api/auth/token", data={"username": user["username"], "password": PASSWORD}),
    }
    responses["refresh"] = await c.post(
        "/api/auth/refresh", json={"refresh_token": responses["login"].json()["refresh_token"]}
    )
    responses["me"] = await c.get("/api/users/me", headers=bearer(responses["refresh"].json()))
    responses["failed login"] = await c.post("/api/auth/login", json={"email": user["username"], "password": "x" * 12})
    for name, r in responses.items():
        assert r.status_code in (200, 401), (name, r.text)
        assert r.headers["cache-control"] == "no-store", name


# --- transport settings: one backend is enough -----------------------------------------------


@pytest.fixture
async def app_with(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    from entrypoints.http.app import create_app
    from entrypoints.wiring import Container

    containers: list[Any] = []

    def build(**env: str) -> Any:
        settings = test_settings(DATABASE_URL=sqlite_url, VAR_DIR=str(tmp_path / "var"), **env)
        container = Container(settings)
        containers.append(container)
        return create_app(settings, container=container)

    yield build
    for container in containers:
        await container.shutdown()


async def test_allowed_hosts(app_with: Any) -> None:
    app = app_with(ALLOWED_HOSTS="api.shop.example,*.internal.example")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.shop.example") as c:
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/api/categories", headers={"Host": "node1.internal.example"})).status_code == 200
        for host in ("evil.example", "api.shop.example.evil.example", "127.0.0.1:8000", "internal.example.com"):
            r = await c.get("/api/categories", headers={"Host": host})
            assert r.status_code == 400, (host, r.status_code)
            assert "categories" not in r.text


async def test_cors_allow_list(app_with: Any) -> None:
    app = app_with(CORS_ALLOW_ORIGINS="https://shop.example")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        }
        good = await c.options("/api/cart/items", headers={"Origin": "https://shop.example", **preflight})
        assert good.status_code in (200, 204), good.text
        assert good.headers["access-control-allow-origin"] == "https://shop.example"
        assert "POST" in good.headers["access-control-allow-methods"]
        assert "idempotency-key" in good.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in good.headers
        for origin in ("https://evil.example", "https://shop.example.evil.example", "null", "http://shop.example"):
            bad = await c.options("/api/cart/items", headers={"Origin": origin, **preflight})
            assert "access-control-allow-origin" not in bad.headers, origin
            simple = await c.get("/api/categories", headers={"Origin": origin})
            assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers, origin
        simple = await c.get("/api/categories", headers={"Origin": "https://shop.example"})
        assert simple.headers["access-control-allow-origin"] == "https://shop.example"
    # Without the setting there is no CORS at all.
    plain = app_with()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://127.0.0.1:8000") as c:
        r = await c.options("/api/cart/items", headers={"Origin": "https://shop.example", **preflight})
        assert "access-control-allow-origin" not in r.headers
