"""Hostile bytes against every route, over HTTP on SQLite and on Postgres (a property test).

For every route of the app's OpenAPI document that takes a body, a valid body is mutated at the
byte level (invalid UTF-8, NUL, truncation, huge numbers such as 1e400 and 10**30, deep nesting,
duplicate keys, wrong types, random bytes) and sent as the fuzzing account. Never a 5xx, and a
refused request writes nothing: the row counts of every table are the same before and after.
Query strings and path parameters of every operation get hostile values too (NUL, %FF, lone
surrogates, huge numbers, very long values).

Bounded for `make test` (HOSTILE_MAX_EXAMPLES, default 300 bodies per backend); `make fuzz`
raises it. The per-route counts are written to HOSTILE_REPORT (a JSON file) when it is set.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.conftest import TABLES
from tests.helpers import PASSWORD, admin_headers, user_headers

COUNTED = [table for table in TABLES if table not in {"item_neighbours", "popular_items", "feed_rankings", "outbox"}]
MAX_EXAMPLES = int(os.environ.get("HOSTILE_MAX_EXAMPLES", "300"))
PLACEHOLDER = "__HOSTILE__"
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x80"]
HUGE = [
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"1" + b"0" * 30,
    b"-" + b"9" * 30,
    b"18446744073709551616",
    b"9223372036854775808",
    b"2147483648",
    b"0." + b"0" * 400 + b"1",
    b"1" * 5000,
    b"NaN",
    b"Infinity",
    b"1.000000000000000000001",
    b"19.999",
]
WRONG_TYPES = [b"[]", b"{}", b"true", b"null", b'"x"', b"1", b"1.5", b'"1"', b"[1,2]", b'{"a":1}', b'""']
QUERY_VALUES = [
    "%00",
    "a%00b",
    "%FF",
    "%ED%A0%80",
    "%C0%AF",
    "9" * 400,
    "1e400",
    "-1e400",
    "NaN",
    "-1",
    "x" * 5000,
    "1e-100000",
    "1e100000",
    "0.001",
    "%25%25",
    "%",
    "[]",
]
PATH_VALUES = ["%00", "a%00", "%FF", "%ED%A0%80", "9" * 400, "1e400", "x" * 3000, "-1", "%25"]


@dataclass
class Tally:
    """Per route: the hostile cases tried, the 5xx seen, refused requests that changed a table."""

    tried: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)
    half_written: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def record(self, route: str, status: int, changed: bool, what: str) -> None:
        self.tried[route] += 1
        if status >= 500:
            self.server_errors[route] += 1
            self.failures.append(f"{route}: {status} for {what[:200]}")
        if changed and status >= 400:
            self.half_written[route] += 1
            self.failures.append(f"{route}: refused ({status}) but wrote rows for {what[:200]}")

    def dump(self, backend: str, kind: str) -> None:
        target = os.environ.get("HOSTILE_REPORT")
        if not target:
            return
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        report = json.loads(path.read_text()) if path.exists() else {}
        report.setdefault(backend, {})[kind] = {
            route: {"tried": n, "5xx": self.server_errors[route], "half_written": self.half_written[route]}
            for route, n in sorted(self.tried.items())
        }
        path.write_text(json.dumps(report, indent=1, sort_keys=True))


@dataclass
class World:
    client: Any
    container: Any
    backend: str
    headers: dict[str, str]
    ids: dict[str, str]
    seeds: dict[tuple[str, str], dict[str, Any]]
    operations: list[tuple[str, str, dict[str, Any]]]

    def url(self, template: str) -> str:
        out = template
        for name, value in self.ids.items():
            out = out.replace("{" + name + "}", value)
        return out

    async def counts(self) -> tuple[int, ...]:
        """Rows per table that requests write. The scheduler and feed jobs refresh the derived recommendation
        tables in the background meanwhile, and housekeeping may delete processed outbox rows,
        so those are left out (an outbox row only ever comes with a table that is counted)."""
        sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {table})" for table in COUNTED)
        async with self.container.adapters.requests.db.engine.connect() as conn:
            return tuple((await conn.execute(text(sql))).one())


def _operations(client: Any) -> list[tuple[str, str, dict[str, Any]]]:
    doc = client._transport.app.openapi_schema.to_schema()
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


@pytest.fixture
async def world(client: Any, container: Any, backend: str) -> AsyncIterator[World]:
    admin_user, admin = await admin_headers(client, container)
    seller, s = await user_headers(client)
    category = (await client.post("/api/categories", json={"name": "Hostile"}, headers=admin)).json()
    theirs = await client.post(
        "/api/products", json={"name": "Lamp", "price": "5.00", "category_id": category["id"], "stock": 50}, headers=s
    )
    mine = await client.post("/api/products", json={"name": "Mine", "price": "7.00", "stock": 50}, headers=admin)
    product, own = theirs.json(), mine.json()
    review = await client.post(f"/api/products/{product['id']}/reviews", json={"rating": 4}, headers=admin)
    item = await client.post("/api/cart/items", json={"product_id": product["id"], "quantity": 1}, headers=admin)
    assert review.status_code == 201 and item.status_code == 201, (review.text, item.text)
    ids = {
        "product_id": own["id"],
        "category_id": category["id"],
        "review_id": review.json()["id"],
        "item_id": item.json()["id"],
        "order_id": str(uuid.uuid4()),
        "report_id": str(uuid.uuid4()),
        "user_id": seller["id"],
    }
    seeds: dict[tuple[str, str], dict[str, Any]] = {
        ("PATCH", "/api/users/me"): {"username": "renamed_hostile"},
        ("POST", "/api/cart/items"): {"product_id": product["id"], "quantity": 1},
        ("PATCH", "/api/cart/items/{item_id}"): {"quantity": 2},
        ("POST", "/api/reports"): {"kind": "sales", "from": "2026-01-01", "to": "2026-01-31"},
        ("POST", "/api/categories"): {"name": "Fresh", "parent_id": category["id"]},
        ("PATCH", "/api/categories/{category_id}"): {"name": "Renamed", "parent_id": None},
        ("POST", "/api/products"): {
            "name": "Desk lamp",
            "description": "warm",
            "price": "19.99",
            "image_url": "https://img.example/l.png",
            "category_id": category["id"],
            "stock": 3,
        },
        ("POST", "/api/products/{product_id}/reviews"): {"rating": 5, "comment": "fine"},
        ("PATCH", "/api/products/{product_id}"): {"price": 12.5, "stock": 4, "category_id": None},
        ("PATCH", "/api/reviews/{review_id}"): {"rating": 3, "comment": "ok"},
        ("POST", "/api/auth/login"): {"email": admin_user["username"], "password": PASSWORD},
        ("POST", "/api/auth/password-reset"): {"email": admin_user["email"]},
        ("POST", "/api/auth/password-reset/confirm"): {"token": "t" * 43, "new_password": "another long pass"},
        ("POST", "/api/auth/refresh"): {"refresh_token": "r" * 43},
        ("POST", "/api/auth/register"): {"username": "hostile_new", "email": "h@example.com", "password": PASSWORD},
        ("POST", "/api/auth/verify-email"): {"token": "v" * 43},
        ("POST", "/api/auth/token"): {"username": admin_user["username"], "password": PASSWORD},
        # An address literal: public, and no DNS look-up on a machine without a resolver.
        ("POST", "/api/webhooks"): {"url": "https://93.184.215.14/hook", "events": ["order.placed"]},
    }
    operations = _operations(client)
    with_body = {(m, p) for m, p, op in operations if op.get("requestBody")}
    assert with_body == set(seeds), with_body ^ set(seeds)  # a new body route needs its seed here
    yield World(client, container, backend, admin, ids, seeds, operations)


def _json_with(seed: dict[str, Any], key: str, raw: bytes) -> bytes:
    return json.dumps({**seed, key: PLACEHOLDER}).encode().replace(f'"{PLACEHOLDER}"'.encode(), raw)


@st.composite
def hostile_bodies(draw: st.DrawFn, seed: dict[str, Any]) -> tuple[str, bytes]:
    """(mutation name, body bytes) from a valid body."""
    valid = json.dumps(seed).encode()
    keys = sorted(seed)
    key = draw(st.sampled_from(keys))
    kind = draw(
        st.sampled_from(
            [
                "utf8",
                "utf8_in_string",
                "nul_escape",
                "nul_byte",
                "truncate",
                "huge",
                "deep",
                "duplicate",
                "wrong_type",
                "flip",
                "random",
                "top_level",
            ]
        )
    )
    if kind == "utf8":
        at = draw(st.integers(0, len(valid)))
        body = valid[:at] + draw(st.sampled_from(BAD_UTF8)) + valid[at:]
    elif kind == "utf8_in_string":
        body = _json_with(seed, key, b'"a' + draw(st.sampled_from(BAD_UTF8)) + b'b"')
    elif kind == "nul_escape":
        body = _json_with(seed, draw(st.sampled_from([key, "a\x00"])), b'"x\\u0000y"')
    elif kind == "nul_byte":
        at = draw(st.integers(0, len(valid)))
        body = valid[:at] + b"\x00" + valid[at:]
    elif kind == "truncate":
        body = valid[: draw(st.integers(0, max(len(valid) - 1, 0)))]
    elif kind == "huge":
        body = _json_with(seed, key, draw(st.sampled_from(HUGE)))
    elif kind == "deep":
        depth = draw(st.sampled_from([64, 500, 5000, 100_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        body = _json_with(seed, key, opener * depth + b"1" + closer * depth)
    elif kind == "duplicate":
        first = draw(st.sampled_from(WRONG_TYPES + HUGE[:4]))
        body = b"{" + json.dumps(key).encode() + b":" + first + b"," + valid[1:]
        body = body[:-1] + b"," + json.dumps(key).encode() + b":" + first + b"}"
    elif kind == "wrong_type":
        body = _json_with(seed, key, draw(st.sampled_from(WRONG_TYPES)))
    elif kind == "flip":
        blob = bytearray(valid)
        for _ in range(draw(st.integers(1, 4))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
        body = bytes(blob)
    elif kind == "random":
        body = draw(st.binary(max_size=64))
    else:
        body = draw(st.sampled_from([b"[]", b"null", b'"x"', b"1e400", b"[" * 10_000, b"", b"{", b"{}"]))
    return kind, body


@pytest.fixture
def tally(world: World) -> AsyncIterator[Tally]:
    counted = Tally()
    yield counted
    counted.dump(world.backend, "bodies")


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_hostile_bodies_never_5xx_and_never_half_write(world: World, tally: Tally, data: st.DataObject) -> None:
    method, template = data.draw(st.sampled_from(sorted(world.seeds)))
    kind, body = data.draw(hostile_bodies(world.seeds[(method, template)]))
    if template == "/api/auth/token":  # the OAuth2 form: the same bytes as a form body
        content_type = "application/x-www-form-urlencoded"
        body = body.replace(b'{"', b"").replace(b'": "', b"=").replace(b'", "', b"&").rstrip(b'"}')
    else:
        content_type = "application/json"
    before = await world.counts()
    r = await world.client.request(
        method, world.url(template), content=body, headers={**world.headers, "content-type": content_type}
    )
    after = await world.counts()
    tally.record(f"{method} {template}", r.status_code, before != after, f"{kind} {body[:120]!r} -> {r.text[:200]}")
    assert r.status_code < 500, (method, template, kind, body[:200], r.text[:300])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text[:200]
        assert before == after, (method, template, kind, body[:200], r.status_code)


SKIP_PROBES = {("DELETE", "/api/users/me"), ("POST", "/api/auth/logout")}  # would end the fuzzing session


async def test_hostile_query_strings_and_path_params_never_5xx(world: World) -> None:
    tally = Tally()
    for method, template, op in world.operations:
        if (method, template) in SKIP_PROBES:
            continue
        route = f"{method} {template}"
        params = op.get("parameters", [])
        seed = world.seeds.get((method, template))
        cases: list[tuple[str, str]] = []
        for param in params:
            if param["in"] == "query":
                cases += [
                    (f"{world.url(template)}?{param['name']}={value}", f"?{param['name']}") for value in QUERY_VALUES
                ]
                cases.append((f"{world.url(template)}?{param['name']}=1&{param['name']}=%00", "repeated"))
            if param["in"] == "path":
                for value in PATH_VALUES:
                    cases.append((world.url(template.replace("{" + param["name"] + "}", value)), "path"))
        cases.append((f"{world.url(template)}?%00=1&%FF=%FF&{'k' * 3000}=v", "unknown query"))
        for url, what in cases:
            before = await world.counts() if method != "GET" else None
            r = await world.client.request(method, url, json=seed, headers=world.headers)
            after = await world.counts() if method != "GET" else None
            changed = before != after and r.status_code >= 400
            tally.record(route, r.status_code, changed, f"{what} {url[:150]} -> {r.text[:200]}")
    tally.dump(world.backend, "query_and_path")
    assert sum(tally.tried.values()) > 300
    assert not tally.failures, tally.failures[:10]
