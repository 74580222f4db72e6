"""Seller webhooks over HTTP with a real receiver on 127.0.0.1 (SQLite and Postgres).

The receiver is ``http.server`` in a thread; the app runs its jobs in-process (the embedded
default), so deliveries happen on the test's loop, never inside the request that caused them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.webhook_signature import verify_signature
from tests.conftest import test_settings
from tests.helpers import admin_headers, user_headers

DELIVERY_KEYS = {"event_id", "type", "status_code", "attempts", "next_retry_at", "delivered_at"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """Records every POST; answers with the next scripted status per path (then 200)."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            rec = state["r"]
            rec.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            queued = rec.script.get(self.path) or []
            status = queued.pop(0) if queued else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["r"]
    server.shutdown()
    server.server_close()


@pytest.fixture
async def container(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    from entrypoints.wiring import Container

    settings = test_settings(
        DATABASE_URL=database_url,
        VAR_DIR=str(tmp_path / "var"),
        WEBHOOK_ALLOW_PRIVATE="true",
        WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    c = Container(settings)
    yield c
    await c.shutdown()


@pytest.fixture
async def client(container: Any) -> AsyncIterator[httpx.AsyncClient]:
    from entrypoints.http.app import create_app

    app = create_app(container.settings, container=container)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture
async def category(client: httpx.AsyncClient, container: Any) -> str:
    _, admin = await admin_headers(client, container)
    r = await client.post("/api/categories", json={"name": f"Home {uuid.uuid4().hex[:6]}"}, headers=admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _product(client: httpx.AsyncClient, headers: dict[str, str], name: str, price: str, stock: int) -> str:
    r = await client.get("/api/categories")
    body = {"name": name, "price": price, "stock": stock, "category_id": r.json()[0]["id"]}
    r = await client.post("/api/products", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _webhook(client: httpx.AsyncClient, headers: dict[str, str], url: str, events: list[str]) -> dict[str, Any]:
    r = await client.post("/api/webhooks", json={"url": url, "events": events}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _settle(container: Any, until: Any, timeout: float = 15) -> None:
    """Run due retries and wait for jobs until ``until()`` holds (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "timed out waiting for webhook deliveries"
        await container.use_cases.webhooks.retry_webhook_deliveries.execute()
        await container.adapters.queue.drain(timeout=5)
        await asyncio.sleep(0.05)


async def _order(client: httpx.AsyncClient, headers: dict[str, str], *product_ids: str) -> dict[str, Any]:
    for product_id in product_ids:
        r = await client.post("/api/cart/items", json={"product_id": product_id, "quantity": 1}, headers=headers)
        assert r.status_code == 201, r.text
    r = await client.post("/api/cart/checkout", headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.usefixtures("category")
async def test_each_seller_gets_only_their_lines_signed(
    client: httpx.AsyncClient, container: Any, receiver: Receiver
) -> None:
    _, seller_a = await user_headers(client)
    _, seller_b = await user_headers(client)
    _, buyer = await user_headers(client)
    lamp = await _product(client, seller_a, "Lamp", "19.99", 1)
    rug = await _product(client, seller_b, "Rug", "45.00", 5)
    hook_a = await _webhook(client, seller_a, f"{receiver.base}/a", ["order.placed", "product.out_of_stock"])
    hook_b = await _webhook(client, seller_b, f"{receiver.base}/b", ["order.placed", "order.cancelled"])
    assert hook_a["secret"].startswith("whsec_") and set(hook_a) == {"id", "url", "events", "secret", "created_at"}

    order = await _order(client, buyer, lamp, rug)
    await _settle(container, lambda: len(receiver.on("/a")) == 2 and len(receiver.on("/b")) == 1)

    by_type = {r.event["type"]: r for r in receiver.on("/a")}
    placed_a, placed_b = by_type["order.placed"], receiver.on("/b")[0]
    for got, hook in ((placed_a, hook_a), (placed_b, hook_b)):
        assert got.headers["content-type"] == "application/json"
        assert got.headers["marketplace-event-id"] == got.event["id"]
        assert verify_signature(hook["secret"], got.headers["marketplace-signature"], got.body, now=time.time())
        assert not verify_signature(
            hook["secret"], got.headers["marketplace-signature"], got.body + b" ", now=time.time()
        )
        assert set(got.event) == {"id", "type", "created_at", "data"}
        assert got.event["data"]["order_id"] == order["id"] and got.event["data"]["status"] == "placed"
    assert [i["product_id"] for i in placed_a.event["data"]["items"]] == [lamp]
    assert placed_a.event["data"]["total"] == "19.99"
    assert [i["product_id"] for i in placed_b.event["data"]["items"]] == [rug]
    assert placed_b.event["data"]["items"][0] == {
        "product_id": rug,
        "name": "Rug",
        "unit_price": "45.00",
        "quantity": 1,
        "line_total": "45.00",
    }
    assert "Lamp" not in placed_b.body.decode()
    # B's secret does not verify A's delivery
    assert not verify_signature(
        hook_b["secret"], placed_a.headers["marketplace-signature"], placed_a.body, now=time.time()
    )
    sold_out = by_type["product.out_of_stock"].event["data"]
    assert sold_out == {"product_id": lamp, "name": "Lamp", "stock": 0}

    # cancelling: only B listens for it, and gets only the rug
    r = await client.post(f"/api/orders/{order['id']}/cancel", headers=buyer)
    assert r.status_code == 200, r.text
    await _settle(container, lambda: len(receiver.on("/b")) == 2)
    cancelled = receiver.on("/b")[1].event
    assert cancelled["type"] == "order.cancelled" and cancelled["data"]["status"] == "cancelled"
    assert [i["product_id"] for i in cancelled["data"]["items"]] == [rug]
    assert len(receiver.on("/a")) == 2

    r = await client.get(f"/api/webhooks/{hook_a['id']}/deliveries", headers=seller_a)
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 2 and all(set(item) >= DELIVERY_KEYS for item in items)
    assert all(item["status"] == "delivered" and item["attempts"] == 1 and item["status_code"] == 200 for item in items)


@pytest.mark.usefixtures("category")
async def test_review_and_stock_patch_events(client: httpx.AsyncClient, container: Any, receiver: Receiver) -> None:
    _, seller = await user_headers(client)
    _, reader = await user_headers(client)
    lamp = await _product(client, seller, "Lamp", "10.00", 3)
    await _webhook(client, seller, f"{receiver.base}/s", ["review.created", "product.out_of_stock"])
    r = await client.post(f"/api/products/{lamp}/reviews", json={"rating": 4, "comment": "Bright."}, headers=reader)
    assert r.status_code == 201, r.text
    review = r.json()
    r = await client.patch(f"/api/products/{lamp}", json={"stock": 0}, headers=seller)
    assert r.status_code == 200, r.text
    r = await client.patch(f"/api/products/{lamp}", json={"stock": 0}, headers=seller)  # already 0: no event
    await _settle(container, lambda: len(receiver.on("/s")) >= 2)
    await asyncio.sleep(0.2)
    await container.adapters.queue.drain(timeout=5)
    events = {r.event["type"]: r.event["data"] for r in receiver.on("/s")}
    assert len(receiver.on("/s")) == 2
    assert events["review.created"]["review_id"] == review["id"]
    assert events["review.created"]["rating"] == 4 and events["review.created"]["comment"] == "Bright."
    assert events["product.out_of_stock"] == {"product_id": lamp, "name": "Lamp", "stock": 0}


@pytest.mark.usefixtures("category")
async def test_failed_delivery_is_retried_until_delivered(
    client: httpx.AsyncClient, container: Any, receiver: Receiver
) -> None:
    _, seller = await user_headers(client)
    _, buyer = await user_headers(client)
    lamp = await _product(client, seller, "Lamp", "10.00", 5)
    hook = await _webhook(client, seller, f"{receiver.base}/flaky", ["order.placed"])
    receiver.script["/flaky"] = [500, 503]
    await _order(client, buyer, lamp)

    await _settle(container, lambda: len(receiver.on("/flaky")) == 3)
    attempts = receiver.on("/flaky")
    assert len({a.event["id"] for a in attempts}) == 1  # one event, retried
    assert len({a.body for a in attempts}) == 1  # the same bytes each time
    r = await client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=seller)
    [delivery] = r.json()["items"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert delivery["status_code"] == 200 and delivery["delivered_at"] is not None
    assert delivery["next_retry_at"] is None and delivery["event_id"] == attempts[0].event["id"]


@pytest.mark.usefixtures("category")
async def test_redirects_are_not_followed(client: httpx.AsyncClient, container: Any, receiver: Receiver) -> None:
    _, seller = await user_headers(client)
    _, buyer = await user_headers(client)
    lamp = await _product(client, seller, "Lamp", "10.00", 5)
    hook = await _webhook(client, seller, f"{receiver.base}/moved", ["order.placed"])
    receiver.script["/moved"] = [302]
    await _order(client, buyer, lamp)
    await _settle(container, lambda: len(receiver.on("/moved")) == 1)
    r = await client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=seller)
    [delivery] = r.json()["items"]
    assert delivery["status"] == "pending" and delivery["status_code"] == 302 and delivery["attempts"] == 1
    assert "redirect" in delivery["last_error"] and delivery["next_retry_at"] is not None
    assert receiver.on("/elsewhere") == []


async def test_webhooks_of_others_are_invisible(client: httpx.AsyncClient, receiver: Receiver) -> None:
    _, owner = await user_headers(client)
    _, other = await user_headers(client)
    hook = await _webhook(client, owner, f"{receiver.base}/mine", ["review.created"])
    assert (await client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=other)).status_code == 404
    assert (await client.delete(f"/api/webhooks/{hook['id']}", headers=other)).status_code == 404
    assert (await client.get("/api/webhooks", headers=other)).json() == {"items": [], "next_cursor": None}
    assert (await client.get("/api/webhooks/not-an-id/deliveries", headers=owner)).status_code == 404
    listed = (await client.get("/api/webhooks", headers=owner)).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert (await client.get("/api/webhooks")).status_code == 401
    assert (await client.delete(f"/api/webhooks/{hook['id']}", headers=owner)).status_code == 204
    assert (await client.delete(f"/api/webhooks/{hook['id']}", headers=owner)).status_code == 404
    assert (await client.get(f"/api/webhooks/{hook['id']}/deliveries", headers=owner)).status_code == 404


async def test_list_pages_and_cap(client: httpx.AsyncClient, receiver: Receiver) -> None:
    _, owner = await user_headers(client)
    made = [(await _webhook(client, owner, f"{receiver.base}/{n}", ["order.placed"]))["id"] for n in range(10)]
    r = await client.post(
        "/api/webhooks", json={"url": f"{receiver.base}/x", "events": ["order.placed"]}, headers=owner
    )
    assert r.status_code == 409, r.text
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/webhooks", params=params, headers=owner)).json()
        seen += [h["id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


async def test_racing_creates_stay_within_the_cap(client: httpx.AsyncClient, receiver: Receiver) -> None:
    _, owner = await user_headers(client)
    body = {"url": f"{receiver.base}/race", "events": ["order.placed"]}
    answers = await asyncio.gather(*(client.post("/api/webhooks", json=body, headers=owner) for _ in range(14)))
    assert sorted(r.status_code for r in answers) == [201] * 10 + [409] * 4
    assert len((await client.get("/api/webhooks", params={"limit": 100}, headers=owner)).json()["items"]) == 10


BAD_SUBSCRIPTIONS = [
    ({"url": "https://example.com/h", "events": ["order.shipped"]}, "events"),
    ({"url": "https://example.com/h", "events": []}, "events"),
    ({"url": "ftp://example.com/h", "events": ["order.placed"]}, "url"),
    ({"url": "https://user:pw@example.com/h", "events": ["order.placed"]}, "url"),
    ({"url": "https://example.com/" + "a" * 2040, "events": ["order.placed"]}, "url"),
    ({"url": "not a url", "events": ["order.placed"]}, "url"),
    ({"url": "http://[::1/h", "events": ["order.placed"]}, "url"),
    ({"url": "https://" + "a" * 70 + ".example/h", "events": ["order.placed"]}, "url"),  # IDNA refuses the label
]


async def test_bad_subscriptions_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    _, owner = await user_headers(client)
    for body, field_name in BAD_SUBSCRIPTIONS:
        r = await client.post("/api/webhooks", json=body, headers=owner)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field_name, body
    r = await client.post(
        "/api/webhooks", json={"url": "https://example.com/h", "events": "order.placed"}, headers=owner
    )
    assert r.status_code == 400  # a string where a list belongs
    assert (await client.get("/api/webhooks", headers=owner)).json()["items"] == []


async def test_private_targets_are_refused_by_default(database_url: str, tmp_path: Path) -> None:
    from entrypoints.http.app import create_app
    from entrypoints.wiring import Container

    container = Container(test_settings(DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var")))
    app = create_app(container.settings, container=container)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            _, owner = await user_headers(c)
            for url in (
                "http://127.0.0.1:9/h",
                "http://localhost/h",
                "http://[::1]/h",
                "http://[::ffff:10.0.0.1]/h",
                "http://169.254.169.254/latest/meta-data",
                "http://0.0.0.0/h",
                "http://2130706433/h",
            ):
                r = await c.post("/api/webhooks", json={"url": url, "events": ["order.placed"]}, headers=owner)
                assert r.status_code == 422, (url, r.text)
                assert r.json()["errors"][0]["field"] == "url"
            assert (await c.get("/api/webhooks", headers=owner)).json()["items"] == []
    finally:
        await container.shutdown()


async def test_saq_worker_delivers_and_its_cron_retries(sqlite_url: str, tmp_path: Path, receiver: Receiver) -> None:
    """The production shape: the API enqueues on Redis, the SAQ worker sends, and its 5-second
    cron job picks up the retry (no test code drives it)."""
    from adapters.jobs.saq_queue import SaqJobQueue
    from entrypoints.http.app import create_app
    from entrypoints.wiring import Container
    from entrypoints.worker import build_worker
    from tests.conftest import REDIS_URL
    from tests.integration.queues import clear_queue, queue_name

    name = queue_name()
    settings = test_settings(
        DATABASE_URL=sqlite_url,
        VAR_DIR=str(tmp_path / "var"),
        REDIS_URL=REDIS_URL,
        JOB_QUEUE_NAME=name,
        WEBHOOK_ALLOW_PRIVATE="true",
        WEBHOOK_RETRY_BASE_SECONDS="0.5",
    )
    container = Container(settings)
    assert isinstance(container.adapters.queue, SaqJobQueue)
    worker = build_worker(settings, concurrency=4, alive_file=tmp_path / "alive", shutdown_grace_seconds=2)
    await worker.queue.connect()
    running = asyncio.create_task(worker.start())
    app = create_app(settings, container=container)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            _, admin = await admin_headers(c, container)
            assert (await c.post("/api/categories", json={"name": "Home"}, headers=admin)).status_code == 201
            _, seller = await user_headers(c)
            _, buyer = await user_headers(c)
            lamp = await _product(c, seller, "Lamp", "10.00", 5)
            hook = await _webhook(c, seller, f"{receiver.base}/w", ["order.placed"])
            receiver.script["/w"] = [500]
            started = time.monotonic()
            await _order(c, buyer, lamp)
            deadline = started + 30
            while len(receiver.on("/w")) < 2:
                assert time.monotonic() < deadline, "the worker did not retry"
                await asyncio.sleep(0.1)
            took = time.monotonic() - started
            first, second = receiver.on("/w")
            assert first.body == second.body and verify_signature(
                hook["secret"], second.headers["marketplace-signature"], second.body, now=time.time()
            )
            for _ in range(50):
                [delivery] = (await c.get(f"/api/webhooks/{hook['id']}/deliveries", headers=seller)).json()["items"]
                if delivery["status"] == "delivered":
                    break
                await asyncio.sleep(0.1)
            assert delivery["status"] == "delivered" and delivery["attempts"] == 2, delivery
            print(f"first attempt failed, retry delivered {took:.1f}s after the checkout")
            assert took < 15
    finally:
        await worker.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await container.shutdown()
        await clear_queue(name)
