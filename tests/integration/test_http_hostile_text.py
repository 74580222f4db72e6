"""Hostile text at the decoding edge, on SQLite and on Postgres.

Invalid UTF-8 in a JSON body is a 400 problem; a NUL character in any string that enters (JSON
keys and values, the OAuth2 form, query and path parameters, headers) is a 422 naming the field,
and nothing is written.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.helpers import user_headers

JSON = {"content-type": "application/json"}


async def _count(container: Any, table: str) -> int:
    async with container.adapters.requests.db.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/login", b'{"email":"a\xff\xfe@example.com","password":"x"}'),
        ("/api/auth/register", b'{"username":"bad\xc3","email":"a@example.com","password":"long enough pass"}'),
        ("/api/auth/password-reset", b'{"email":"\xed\xa0\x80@example.com"}'),
    ],
)
async def test_invalid_utf8_in_a_json_string_is_400(client: Any, container: Any, path: str, body: bytes) -> None:
    users = await _count(container, "users")
    _problem(await client.post(path, content=body, headers=JSON), 400)
    assert await _count(container, "users") == users


async def test_invalid_utf8_in_a_product_body_is_400_and_writes_nothing(client: Any, container: Any) -> None:
    _, headers = await user_headers(client)
    body = b'{"name":"Lamp \xc0\xaf","description":"x","price":"1.00","stock":1}'
    _problem(await client.post("/api/products", content=body, headers={**headers, **JSON}), 400)
    assert await _count(container, "products") == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/auth/login", b'{"email":"a\\u0000b@example.com","password":"x"}', "email"),
        (
            "/api/auth/register",
            b'{"username":"abc","email":"a\\u0000@example.com","password":"long enough pass"}',
            "email",
        ),
        ("/api/auth/password-reset", b'{"email":"a\\u0000b@example.com"}', "email"),
        ("/api/auth/refresh", b'{"refresh_token":"\\u0000"}', "refresh_token"),
        ("/api/auth/verify-email", b'{"token":"abc\\u0000"}', "token"),
        ("/api/auth/login", b'{"email":"a@example.com","password":"x","a\\u0000":1}', "a\x00"),
    ],
)
async def test_nul_in_a_json_body_is_a_422_field_error(client: Any, path: str, body: bytes, field: str) -> None:
    problem = _problem(await client.post(path, content=body, headers=JSON), 422)
    assert problem["errors"][0]["field"] == field


async def test_an_escaped_backslash_before_u0000_is_not_nul(client: Any) -> None:
    body = b'{"email":"a\\\\u0000b@example.com","password":"x"}'
    assert (await client.post("/api/auth/login", content=body, headers=JSON)).status_code == 401


async def test_nul_in_the_oauth2_form_is_422(client: Any) -> None:
    problem = _problem(await client.post("/api/auth/token", data={"username": "a\x00b", "password": "x"}), 422)
    assert problem["errors"][0]["field"] == "username"


async def test_nul_in_nested_product_fields_writes_nothing(client: Any, container: Any) -> None:
    _, headers = await user_headers(client)
    body = b'{"name":"Lamp","description":"warm\\u0000light","price":"1.00","stock":1}'
    problem = _problem(await client.post("/api/products", content=body, headers={**headers, **JSON}), 422)
    assert problem["errors"][0]["field"] == "description"
    assert await _count(container, "products") == 0


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/products?q=lamp%00", "q"),
        ("/api/products?cursor=%00", "cursor"),
        ("/api/products?sort=%00newest", "sort"),
        ("/api/products/%00", "product_id"),
        ("/api/users/ab%00cd", "user_id"),
    ],
)
async def test_nul_in_query_and_path_parameters_is_422(client: Any, url: str, field: str) -> None:
    problem = _problem(await client.get(url), 422)
    assert problem["errors"][0]["field"] == field


async def test_nul_in_the_idempotency_key_is_422_and_places_no_order(client: Any, container: Any) -> None:
    _, headers = await user_headers(client)
    r = await client.post("/api/cart/checkout", headers={**headers, "Idempotency-Key": "key\x00one"})
    problem = _problem(r, 422)
    assert problem["errors"][0]["field"] == "idempotency-key"
    assert await _count(container, "orders") == 0
