"""Auth and user routes over HTTP, on SQLite and on Postgres."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest

from tests.helpers import PASSWORD, login, register, user_headers


async def test_register_login_me_refresh_replay_logout(client) -> None:
    user = await register(client, "alice")
    assert set(user) == {"id", "username", "email", "email_verified", "role", "created_at", "updated_at"}
    assert "password" not in json.dumps(user)
    tokens = await login(client, "ALICE@example.com")
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "alice"

    first = tokens["refresh_token"]
    r1 = await client.post("/api/auth/refresh", json={"refresh_token": first})
    r2 = await client.post("/api/auth/refresh", json={"refresh_token": r1.json()["refresh_token"]})
    assert r1.status_code == r2.status_code == 200
    replay = await client.post("/api/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401
    assert replay.headers["content-type"].startswith("application/problem+json")
    dead = await client.post("/api/auth/refresh", json={"refresh_token": r2.json()["refresh_token"]})
    assert dead.status_code == 401

    stolen = r2.json()["access_token"]  # the replay revoked the family: its access tokens end at once
    assert (await client.get("/api/users/me", headers={"Authorization": f"Bearer {stolen}"})).status_code == 401

    access = (await login(client, "alice"))["access_token"]
    out = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {access}"})
    assert out.status_code == 204
    after = await client.get("/api/users/me", headers={"Authorization": f"Bearer {access}"})
    assert after.status_code == 401


async def test_oauth2_form_login(client) -> None:
    await register(client, "formuser")
    r = await client.post(
        "/api/auth/token", data={"username": "formuser", "password": PASSWORD, "grant_type": "password"}
    )
    assert r.status_code == 200 and r.json()["access_token"]
    assert r.headers["cache-control"] == "no-store"


async def test_duplicate_username_and_email_conflict(client) -> None:
    await register(client, "bob")
    r = await client.post(
        "/api/auth/register", json={"username": "BOB", "email": "x@example.com", "password": PASSWORD}
    )
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "username"
    r = await client.post(
        "/api/auth/register", json={"username": "bobby", "email": "Bob@Example.com", "password": PASSWORD}
    )
    assert r.status_code == 409


async def test_racing_registrations_make_one_account(client) -> None:
    body = {"username": "racer", "email": "racer@example.com", "password": PASSWORD}
    results = await asyncio.gather(*(client.post("/api/auth/register", json=body) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409]


@pytest.mark.parametrize(
    "body",
    [
        {"username": "al", "email": "a@example.com", "password": PASSWORD},
        {"username": "a" * 33, "email": "a@example.com", "password": PASSWORD},
        {"username": "alice", "email": "nope", "password": PASSWORD},
        {"username": "alice", "email": "a@example.com", "password": "short"},
        {"username": "alice", "email": "a@example.com", "password": "x" * 129},
        {"username": "al ice", "email": "a@example.com", "password": PASSWORD},
    ],
)
async def test_register_rules_are_422(client, body) -> None:
    r = await client.post("/api/auth/register", json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert {"type", "title", "status", "detail"} <= set(problem) and problem["errors"]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"username": 5, "email": 5, "password": 1, "token": 5, "refresh_token": 5, "new_password": 5}',
        b'{"unrelated": 1}',
        b"\xff\xfe",
        b'"string"',
    ],
)
async def test_malformed_bodies_are_400(client, content) -> None:
    for path in (
        "/api/auth/register",
        "/api/auth/login",
        "/api/auth/refresh",
        "/api/auth/password-reset",
        "/api/auth/password-reset/confirm",
        "/api/auth/verify-email",
    ):
        r = await client.post(path, content=content, headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_overlong_fields_never_500(client) -> None:
    huge = "x" * 10_000
    for path, body in [
        ("/api/auth/register", {"username": huge, "email": huge, "password": huge}),
        ("/api/auth/login", {"email": huge, "password": huge}),
        ("/api/auth/refresh", {"refresh_token": huge}),
        ("/api/auth/password-reset", {"email": huge}),
        ("/api/auth/password-reset/confirm", {"token": huge, "new_password": huge}),
        ("/api/auth/verify-email", {"token": huge}),
    ]:
        r = await client.post(path, json=body)
        assert 400 <= r.status_code < 500, (path, r.status_code)


async def test_body_over_one_mib_is_413(client) -> None:
    r = await client.post(
        "/api/auth/register",
        content=b"{" + b" " * 1_100_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413


async def test_unknown_user_and_wrong_password_same_answer(client) -> None:
    await register(client, "carol")
    a = await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    b = await client.post("/api/auth/login", json={"email": "carol", "password": "wrong password"})
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"]


def _forge(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


async def test_tampered_and_foreign_tokens_are_401(client, container) -> None:
    _, headers = await user_headers(client)
    token = headers["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    secret = container.settings.jwt_secret
    now = int(time.time())
    bad_tokens = [
        _forge(token, role="admin"),
        _forge(token, sub="01900000-0000-7000-8000-000000000000"),
        jwt.encode({**claims, "exp": now - 10}, secret, algorithm="HS256"),
        jwt.encode({**claims, "aud": "someone-else"}, secret, algorithm="HS256"),
        jwt.encode({**claims, "iss": "someone-else"}, secret, algorithm="HS256"),
        jwt.encode(claims, "another-secret-of-sufficient-length-000000", algorithm="HS256"),
        jwt.encode(claims, secret, algorithm="HS512"),
        jwt.encode({k: v for k, v in claims.items() if k != "jti"}, secret, algorithm="HS256"),
        jwt.encode(claims, None, algorithm="none"),
        "not-a-jwt",
    ]
    for bad in bad_tokens:
        r = await client.get("/api/users/me", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
    assert (await client.get("/api/users/me")).status_code == 401


async def test_patch_me_and_password_change(client) -> None:
    user, headers = await user_headers(client)
    r = await client.patch("/api/users/me", json={"username": "renamed_1", "role": "admin", "id": "x"}, headers=headers)
    assert r.status_code == 200 and r.json()["username"] == "renamed_1" and r.json()["role"] == "user"
    r = await client.patch("/api/users/me", json={"password": "a brand new password"}, headers=headers)
    assert r.status_code == 401  # API.md: current_password missing → 401
    r = await client.patch(
        "/api/users/me",
        json={"password": "a brand new password", "current_password": PASSWORD},
        headers=headers,
    )
    assert r.status_code == 200
    await login(client, "renamed_1", "a brand new password")


async def test_delete_account(client) -> None:
    user, headers = await user_headers(client)
    assert (await client.delete("/api/users/me", headers=headers)).status_code == 204
    assert (await client.get("/api/users/me", headers=headers)).status_code == 401
    r = await client.post("/api/auth/login", json={"email": user["username"], "password": PASSWORD})
    assert r.status_code == 401


async def test_password_reset_is_always_202(client) -> None:
    await register(client, "dave")
    for email in ("dave@example.com", "nobody@example.com"):
        r = await client.post("/api/auth/password-reset", json={"email": email})
        assert r.status_code == 202


async def test_health_ready_and_openapi(client) -> None:
    assert (await client.get("/health")).status_code == 200
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    doc = (await client.get("/schema/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert "BearerToken" in doc["components"]["securitySchemes"]
    ops = [op for path in doc["paths"].values() for op in path.values() if isinstance(op, dict)]
    assert all(op.get("operationId") for op in ops)


async def test_auth_routes_are_rate_limited_per_address(database_url, tmp_path) -> None:
    from litestar.testing import AsyncTestClient

    from entrypoints.http.app import create_app
    from entrypoints.wiring import Container
    from tests.conftest import test_settings

    settings = test_settings(DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var"), AUTH_RATE_LIMIT_PER_MINUTE="5")
    container = Container(settings)
    async with AsyncTestClient(create_app(settings, container=container)) as c:
        codes = [
            (await c.post("/api/auth/login", json={"email": "x@example.com", "password": "wrong password"}))
            for _ in range(7)
        ]
        assert [r.status_code for r in codes[:5]] == [401] * 5
        limited = codes[-1]
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert (await c.get("/health")).status_code == 200  # other routes are not throttled


async def test_security_headers_and_request_id(client) -> None:
    r = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "whatever123"})
    assert r.headers["cache-control"] == "no-store"
    for unknown in (client.get("/no/such/path"), client.delete("/health")):  # no route: 404, 405
        r = await unknown
        assert r.status_code in (404, 405)
        assert r.headers["x-content-type-options"] == "nosniff" and len(r.headers["x-request-id"]) == 32
    await client.post(
        "/api/auth/register",
        json={"username": "metered", "email": "metered@example.com", "password": "correct horse battery"},
    )
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    for family in (
        "http_requests_total",
        "http_request_duration_seconds",
        "cache_events",
        "job_queue_depth",
        "job_outcomes{",
        "recommendation_model_age_seconds",
    ):
        assert family in metrics.text, family


async def test_catalog_reads_can_use_a_replica(database_url, tmp_path) -> None:
    """With DATABASE_REPLICA_URL set, catalog reads go there (here: the same database)."""
    from entrypoints.wiring import Container
    from tests.conftest import test_settings

    container = Container(
        test_settings(DATABASE_URL=database_url, DATABASE_REPLICA_URL=database_url, VAR_DIR=str(tmp_path / "var"))
    )
    try:
        assert container.adapters.replica is not None
        assert container.adapters.catalog_queries.inner.sql is container.adapters.replica.reads
        assert await container.use_cases.catalog.list_categories.execute() == []
    finally:
        await container.shutdown()


async def test_jobs_carry_the_request_id(client, container) -> None:
    seen: list[dict] = []
    original = container.adapters.queue.enqueue

    async def spy(kind, payload, *, key):
        seen.append(payload)
        await original(kind, payload, key=key)

    container.adapters.queue.enqueue = spy
    r = await client.post(
        "/api/auth/register",
        json={"username": "traced", "email": "traced@example.com", "password": "correct horse battery"},
        headers={"X-Request-ID": "req-42"},
    )
    assert r.status_code == 201
    assert seen
    assert all(p.get("request_id") == "req-42" for p in seen)
