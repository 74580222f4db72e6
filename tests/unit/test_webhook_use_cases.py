"""Webhook use cases on in-memory adapters: subscriptions, events in the outbox, fan-out, attempts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.memory.catalog import MemoryCatalogQueries
from application.identity import Principal
from application.jobs import DELIVER_WEBHOOK, WEBHOOK_EVENT
from application.ports.webhooks import ConnectFailed, DeliveryFailed
from application.use_cases import orders, webhooks
from application.use_cases.catalog import products, reviews
from application.use_cases.catalog.deps import CatalogDeps
from domain.catalog import Category, Product
from domain.errors import Conflict, NotFound, RuleViolation
from domain.ids import new_id
from domain.users import Role, User
from domain.webhook_signature import verify_signature
from domain.webhooks import MAX_WEBHOOKS_PER_USER, RETRY_WINDOW
from tests.unit.fakes import World, make_world


class FakeResolver:
    def __init__(self) -> None:
        self.hosts: dict[str, list[str]] = {"hooks.example": ["93.184.216.34"], "other.example": ["8.8.8.8"]}

    async def resolve(self, host: str, port: int) -> list[str]:
        if host not in self.hosts:
            raise LookupError(host)
        return self.hosts[host]


@dataclass
class FakeSender:
    answers: list[int | Exception] = field(default_factory=list)
    sent: list[tuple[str, str, bytes, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0

    async def post(self, url: str, address: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> int:
        assert timeout == 10
        self.sent.append((url, address, body, dict(headers)))
        await asyncio.sleep(self.delay)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class Hooks:
    w: World
    resolver: FakeResolver
    sender: FakeSender
    deps: webhooks.WebhookDeps

    def user(self, name: str) -> Principal:
        now = self.w.clock.now()
        user = User(
            id=new_id(),
            username=name,
            email=f"{name}@example.com",
            password_hash="!",
            role=Role.USER,
            created_at=now,
            updated_at=now,
        )
        self.w.uow.store.table("users")[user.id] = user
        return Principal(id=user.id, role=Role.USER)

    def product(self, seller: Principal, name: str, price: str = "10.00", stock: int = 5) -> uuid.UUID:
        now = self.w.clock.now()
        slug = f"home-{uuid.uuid4().hex[:6]}"
        category = Category(id=new_id(), name="Home", slug=slug, parent_id=None, created_at=now, updated_at=now)
        self.w.uow.store.table("categories")[category.id] = category
        product = Product(
            id=new_id(),
            seller_id=seller.id,
            category_id=category.id,
            name=name,
            description="",
            price=Decimal(price),
            image_url=None,
            stock=stock,
            created_at=now,
            updated_at=now,
        )
        self.w.uow.store.table("products")[product.id] = product
        return product.id

    async def subscribe(self, who: Principal, events: list[str], url: str = "https://hooks.example/in") -> Any:
        return await webhooks.CreateWebhook(self.deps).execute(who, url=url, events=events)

    async def buy(self, buyer: Principal, *product_ids: uuid.UUID) -> orders.OrderView:
        from application.use_cases import cart

        for product_id in product_ids:
            await cart.AddToCart(self.w.uow, self.w.clock).execute(buyer, product_id=product_id, quantity=1)
        deps = orders.OrderDeps(uow=self.w.uow, clock=self.w.clock, jobs=self.w.deps.jobs)
        return await orders.Checkout(deps).execute(buyer)

    def events(self) -> list[dict[str, Any]]:
        return [payload for kind, payload, _ in self.w.queue.jobs if kind == WEBHOOK_EVENT]

    def attempts_queued(self) -> list[tuple[dict[str, Any], str]]:
        return [(payload, key) for kind, payload, key in self.w.queue.jobs if kind == DELIVER_WEBHOOK]

    async def fan_out_all(self) -> None:
        for payload in self.events():
            await webhooks.FanOutWebhookEvent(self.deps).execute(payload)

    async def deliver_queued(self) -> list[str]:
        """Run the queued attempts once per job key, as the real queues do."""
        queued = {key: payload for payload, key in self.attempts_queued()}
        self.w.queue.jobs = [job for job in self.w.queue.jobs if job[0] != DELIVER_WEBHOOK]
        return [(await webhooks.DeliverWebhook(self.deps).execute(p))["outcome"] for p in queued.values()]

    async def deliveries(self, who: Principal, webhook_id: uuid.UUID) -> list[Any]:
        return await webhooks.ListDeliveries(self.w.uow).execute(who, webhook_id=webhook_id)


def make_hooks(*, allow_private: bool = False) -> Hooks:
    w = make_world()
    resolver, sender = FakeResolver(), FakeSender()
    deps = webhooks.WebhookDeps(
        uow=w.uow, clock=w.clock, resolver=resolver, sender=sender, queue=w.queue, allow_private=allow_private
    )
    return Hooks(w, resolver, sender, deps)


async def test_subscribe_validates_and_shows_the_secret_once() -> None:
    h = make_hooks()
    alice = h.user("alice")
    made = await h.subscribe(alice, ["review.created", "order.placed", "order.placed"])
    assert made.events == ["order.placed", "review.created"] and made.secret.startswith("whsec_")
    assert len(made.secret) > 40
    page = await webhooks.ListWebhooks(h.w.uow).execute(alice)
    assert [v.id for v in page.items] == [made.id] and not hasattr(page.items[0], "secret")
    for url in ("https://nowhere.example/", "ftp://hooks.example/"):
        with pytest.raises(RuleViolation) as caught:
            await h.subscribe(alice, ["order.placed"], url=url)
        assert caught.value.field == "url"
    h.resolver.hosts["inside.example"] = ["8.8.8.8", "10.1.2.3"]
    with pytest.raises(RuleViolation):
        await h.subscribe(alice, ["order.placed"], url="https://inside.example/")
    with pytest.raises(RuleViolation) as caught:
        await h.subscribe(alice, ["order.shipped"])
    assert caught.value.field == "events"


async def test_private_targets_only_when_allowed() -> None:
    h = make_hooks(allow_private=True)
    alice = h.user("alice")
    h.resolver.hosts["127.0.0.1"] = ["127.0.0.1"]
    assert (await h.subscribe(alice, ["order.placed"], url="http://127.0.0.1:9/")).url == "http://127.0.0.1:9/"


async def test_the_cap_and_ownership() -> None:
    h = make_hooks()
    alice, bob = h.user("alice"), h.user("bob")
    made = [await h.subscribe(alice, ["order.placed"]) for _ in range(MAX_WEBHOOKS_PER_USER)]
    with pytest.raises(Conflict):
        await h.subscribe(alice, ["order.placed"])
    with pytest.raises(NotFound):
        await webhooks.DeleteWebhook(h.w.uow).execute(bob, webhook_id=made[0].id)
    with pytest.raises(NotFound):
        await h.deliveries(bob, made[0].id)
    await webhooks.DeleteWebhook(h.w.uow).execute(alice, webhook_id=made[0].id)
    await h.subscribe(alice, ["order.placed"])  # room again


async def test_an_order_makes_one_event_per_subscribed_seller_with_only_their_lines() -> None:
    h = make_hooks()
    alice, bob, carol, buyer = h.user("alice"), h.user("bob"), h.user("carol"), h.user("buyer")
    lamp = h.product(alice, "Lamp", "19.99", stock=1)
    rug = h.product(bob, "Rug", "45.00")
    vase = h.product(carol, "Vase")  # carol has no webhook: no event for her
    await h.subscribe(alice, ["order.placed", "product.out_of_stock"])
    await h.subscribe(bob, ["order.placed"])
    order = await h.buy(buyer, lamp, rug, vase)

    events = h.events()
    assert sorted(e["type"] for e in events) == ["order.placed", "order.placed", "product.out_of_stock"]
    by_user = {(e["user_id"], e["type"]): e for e in events}
    to_alice = by_user[(str(alice.id), "order.placed")]["data"]
    assert to_alice["order_id"] == str(order.id) and to_alice["total"] == "19.99"
    assert [i["name"] for i in to_alice["items"]] == ["Lamp"]
    to_bob = by_user[(str(bob.id), "order.placed")]["data"]
    assert [i["name"] for i in to_bob["items"]] == ["Rug"] and "Lamp" not in json.dumps(to_bob)
    assert by_user[(str(alice.id), "product.out_of_stock")]["data"] == {
        "product_id": str(lamp),
        "name": "Lamp",
        "stock": 0,
    }
    assert all(e["user_id"] != str(carol.id) for e in events)
    assert len({e["event_id"] for e in events}) == 3


async def test_fan_out_is_idempotent_and_the_attempt_is_signed() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    lamp = h.product(alice, "Lamp")
    hook = await h.subscribe(alice, ["order.placed"])
    await h.subscribe(alice, ["review.created"], url="https://other.example/r")  # not for orders
    await h.buy(buyer, lamp)
    [event] = h.events()
    await h.fan_out_all()
    await h.fan_out_all()  # a replayed job
    assert len(await h.deliveries(alice, hook.id)) == 1
    assert await h.deliver_queued() == ["delivered"]
    assert await h.deliver_queued() == []  # the duplicate enqueue had the same key and nothing is due
    [(url, address, body, headers)] = h.sender.sent
    assert url == "https://hooks.example/in" and address == "93.184.216.34"
    sent = json.loads(body)
    assert sent == {
        "id": event["event_id"],
        "type": "order.placed",
        "created_at": event["created_at"],
        "data": event["data"],
    }
    assert headers["Marketplace-Event-Id"] == event["event_id"] and headers["Content-Type"] == "application/json"
    assert verify_signature(hook.secret, headers["Marketplace-Signature"], body, now=h.w.clock.now().timestamp())
    [delivery] = await h.deliveries(alice, hook.id)
    assert (delivery.status, delivery.attempts, delivery.status_code) == ("delivered", 1, 200)
    assert delivery.delivered_at == h.w.clock.now() and delivery.next_retry_at is None


async def test_failures_back_off_and_give_up_after_the_window() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    hook = await h.subscribe(alice, ["order.placed"])
    await h.buy(buyer, h.product(alice, "Lamp"))
    await h.fan_out_all()
    start = h.w.clock.now()
    h.sender.answers = [500] * 1000
    assert await h.deliver_queued() == ["pending"]
    [delivery] = await h.deliveries(alice, hook.id)
    assert delivery.next_retry_at == start + timedelta(seconds=5) and delivery.last_error == "HTTP 500"
    retry = webhooks.RetryWebhookDeliveries(h.deps)
    assert await retry.execute() == 0  # not due yet
    h.w.clock.advance(seconds=5)
    assert await retry.execute() == 1
    assert await retry.execute() == 1  # enqueued again, under the same key: the queue keeps one
    assert len({key for _, key in h.attempts_queued()}) == 1
    assert await h.deliver_queued() == ["pending"]
    [delivery] = await h.deliveries(alice, hook.id)
    assert delivery.attempts == 2 and delivery.next_retry_at == h.w.clock.now() + timedelta(seconds=10)
    outcomes: list[str] = []
    while not outcomes or outcomes[-1] == "pending":
        [delivery] = await h.deliveries(alice, hook.id)
        assert delivery.next_retry_at is not None
        h.w.clock.current = delivery.next_retry_at
        await retry.execute()
        outcomes += await h.deliver_queued()
    assert outcomes[-1] == "failed"
    [delivery] = await h.deliveries(alice, hook.id)
    assert delivery.status == "failed" and delivery.next_retry_at is None
    assert h.w.clock.now() <= start + RETRY_WINDOW
    h.w.clock.advance(days=2)
    assert await retry.execute() == 0


async def test_transport_errors_and_redirects_are_failures() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    hook = await h.subscribe(alice, ["order.placed"])
    h.sender.answers = [DeliveryFailed("no answer within 10 s"), 301]
    await h.buy(buyer, h.product(alice, "Lamp"))
    await h.fan_out_all()
    assert await h.deliver_queued() == ["pending"]
    [delivery] = await h.deliveries(alice, hook.id)
    assert delivery.status_code is None and delivery.last_error == "no answer within 10 s"
    h.w.clock.advance(seconds=5)
    await webhooks.RetryWebhookDeliveries(h.deps).execute()
    assert await h.deliver_queued() == ["pending"]
    [delivery] = await h.deliveries(alice, hook.id)
    assert delivery.status_code == 301 and "redirect" in (delivery.last_error or "")


async def test_the_address_is_checked_again_at_delivery_time() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    hook = await h.subscribe(alice, ["order.placed"])
    h.resolver.hosts["hooks.example"] = ["169.254.169.254"]  # DNS now points inside
    await h.buy(buyer, h.product(alice, "Lamp"))
    await h.fan_out_all()
    assert await h.deliver_queued() == ["pending"]
    assert h.sender.sent == []
    [delivery] = await h.deliveries(alice, hook.id)
    assert delivery.last_error is not None and delivery.last_error.startswith("refused")


async def test_racing_attempts_send_once() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    await h.subscribe(alice, ["order.placed"])
    await h.buy(buyer, h.product(alice, "Lamp"))
    await h.fan_out_all()
    [(payload, _)] = h.attempts_queued()
    h.sender.delay = 0.01
    outcomes = await asyncio.gather(*(webhooks.DeliverWebhook(h.deps).execute(payload) for _ in range(5)))
    assert sorted(o["outcome"] for o in outcomes) == ["delivered"] + ["not due or gone"] * 4
    assert len(h.sender.sent) == 1


async def test_a_removed_webhook_gets_nothing_more() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    hook = await h.subscribe(alice, ["order.placed"])
    await h.buy(buyer, h.product(alice, "Lamp"))
    await h.fan_out_all()
    await webhooks.DeleteWebhook(h.w.uow).execute(alice, webhook_id=hook.id)
    assert await h.deliver_queued() == ["not due or gone"]
    assert h.sender.sent == []


async def test_cancel_review_and_stock_events() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    lamp = h.product(alice, "Lamp", stock=3)
    await h.subscribe(alice, ["order.cancelled", "review.created", "product.out_of_stock"])
    order = await h.buy(buyer, lamp)
    assert h.events() == []  # alice does not listen for placed orders; stock is 2
    await orders.CancelOrder(h.w.uow, h.w.clock, jobs=h.w.deps.jobs).execute(buyer, order_id=order.id)
    [cancelled] = h.events()
    assert cancelled["type"] == "order.cancelled" and cancelled["data"]["status"] == "cancelled"

    deps = CatalogDeps(uow=h.w.uow, queries=MemoryCatalogQueries(h.w.uow.store), clock=h.w.clock, jobs=h.w.deps.jobs)
    review = await reviews.CreateReview(deps).execute(buyer, lamp, rating=5, comment="Lovely")
    assert h.events()[-1]["type"] == "review.created"
    assert h.events()[-1]["data"]["review_id"] == str(review.id) and h.events()[-1]["data"]["rating"] == 5
    await products.UpdateProduct(deps).execute(alice, lamp, stock=0)
    assert h.events()[-1]["type"] == "product.out_of_stock"
    count = len(h.events())
    await products.UpdateProduct(deps).execute(alice, lamp, stock=0)  # already sold out: no second event
    await products.UpdateProduct(deps).execute(alice, lamp, name="Lamp 2")
    assert len(h.events()) == count


async def test_deleting_the_account_removes_its_webhooks() -> None:
    from application.use_cases import users

    h = make_hooks()
    alice = h.user("alice")
    await h.subscribe(alice, ["order.placed"])
    await users.DeleteMe(h.w.deps).execute(alice)
    assert h.w.uow.store.table("webhooks") == {}


async def test_a_refused_connection_moves_on_to_the_next_address_only() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    h.resolver.hosts["hooks.example"] = ["2606:4700::1", "93.184.216.34"]
    hook = await h.subscribe(alice, ["order.placed"])
    h.sender.answers = [ConnectFailed("refused"), 200]
    await h.buy(buyer, h.product(alice, "Lamp"))
    await h.fan_out_all()
    assert await h.deliver_queued() == ["delivered"]
    assert [address for _, address, _, _ in h.sender.sent] == ["2606:4700::1", "93.184.216.34"]
    # any other failure (a timeout, a reset) ends the attempt: no second request for one attempt
    await h.buy(buyer, h.product(alice, "Rug"))
    h.sender.answers = [DeliveryFailed("no answer within 10 s")]
    await h.fan_out_all()
    assert await h.deliver_queued() == ["pending"]
    assert len(h.sender.sent) == 3
    [newest, _] = await h.deliveries(alice, hook.id)
    assert newest.last_error == "no answer within 10 s"


async def test_an_unexpected_error_counts_as_a_failed_attempt() -> None:
    h = make_hooks()
    alice, buyer = h.user("alice"), h.user("buyer")
    hook = await h.subscribe(alice, ["order.placed"])
    h.sender.answers = [KeyError("bug")]
    await h.buy(buyer, h.product(alice, "Lamp"))
    await h.fan_out_all()
    assert await h.deliver_queued() == ["pending"]
    [delivery] = await h.deliveries(alice, hook.id)
    assert delivery.attempts == 1 and delivery.last_error == "internal error: KeyError"
