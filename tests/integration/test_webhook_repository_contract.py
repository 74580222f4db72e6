"""One contract for the webhook and delivery repositories, on memory, SQLite and Postgres."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from application.ports.webhooks import AttemptResult, NewDelivery
from domain.ids import new_id
from domain.webhooks import DeliveryStatus, Webhook
from tests.integration.test_cart_repository_contract import NOW, add_product, add_user


def hook(user_id: uuid.UUID, events: tuple[str, ...] = ("order.placed",), *, at: int = 0) -> Webhook:
    return Webhook(
        id=new_id(),
        user_id=user_id,
        url="https://hooks.example/in",
        events=events,
        secret="whsec_s",
        created_at=NOW + timedelta(seconds=at),
    )


async def add_hook(any_uow, webhook: Webhook) -> Webhook:
    async with any_uow() as uow:
        assert await uow.webhooks.add_within_cap(webhook, 10)
        await uow.commit()
    return webhook


def delivery(webhook: Webhook, event_id: uuid.UUID, *, at: int = 0) -> NewDelivery:
    return NewDelivery(
        id=new_id(),
        webhook_id=webhook.id,
        event_id=event_id,
        event_type="order.placed",
        body='{"id": "x"}',
        created_at=NOW + timedelta(seconds=at),
    )


async def test_webhooks_are_private_to_their_owner_and_paged_newest_first(any_uow) -> None:
    alice, bob = await add_user(any_uow, "alice"), await add_user(any_uow, "bob")
    mine = [await add_hook(any_uow, hook(alice, at=n)) for n in range(5)]
    theirs = await add_hook(any_uow, hook(bob, ("review.created", "order.placed")))
    async with any_uow() as uow:
        got = await uow.webhooks.get(mine[0].id, alice)
        assert got is not None and got.events == ("order.placed",) and got.secret == "whsec_s"
        assert await uow.webhooks.get(theirs.id, alice) is None
        first = await uow.webhooks.list_for_user(alice, limit=3, after=None)
        rest = await uow.webhooks.list_for_user(alice, limit=3, after=(first[-1].created_at, first[-1].id))
        assert [h.id for h in first + rest] == [h.id for h in reversed(mine)]
        subs = await uow.webhooks.subscriptions([alice, bob, new_id()])
        assert subs == {alice: {"order.placed"}, bob: {"order.placed", "review.created"}}
        assert [h.id for h in await uow.webhooks.subscribed(bob, "review.created")] == [theirs.id]
        assert await uow.webhooks.subscribed(alice, "review.created") == []


async def test_the_cap_holds_under_racing_adds(any_uow) -> None:
    alice = await add_user(any_uow, "alice")

    async def add() -> bool:
        async with any_uow() as uow:
            added = await uow.webhooks.add_within_cap(hook(alice), 3)
            await asyncio.sleep(0)
            await uow.commit()
            return added

    outcomes = await asyncio.gather(*(add() for _ in range(6)))
    assert sorted(outcomes) == [False] * 3 + [True] * 3


async def test_delete_takes_deliveries_and_only_the_owner_may(any_uow) -> None:
    alice, bob = await add_user(any_uow, "alice"), await add_user(any_uow, "bob")
    webhook = await add_hook(any_uow, hook(alice))
    async with any_uow() as uow:
        await uow.webhook_deliveries.add_missing([delivery(webhook, new_id())])
        await uow.commit()
    async with any_uow() as uow:
        assert not await uow.webhooks.delete(webhook.id, bob)
        assert await uow.webhooks.delete(webhook.id, alice)
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.webhook_deliveries.recent(webhook.id, 100) == []
        assert await uow.webhook_deliveries.due(NOW + timedelta(days=1), 10) == []
        assert not await uow.webhooks.delete(webhook.id, alice)
    await add_hook(any_uow, hook(alice))
    async with any_uow() as uow:
        await uow.webhooks.delete_for_user(alice)
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.webhooks.list_for_user(alice, limit=10, after=None) == []


async def test_sold_out_sees_only_products_without_stock(any_uow) -> None:
    alice = await add_user(any_uow, "alice")
    empty = await add_product(any_uow, alice, stock=0, name="Gone")
    full = await add_product(any_uow, alice, stock=2)
    async with any_uow() as uow:
        [sold_out] = await uow.webhooks.sold_out([empty, full, new_id()])
        assert (sold_out.id, sold_out.seller_id, sold_out.name) == (empty, alice, "Gone")
        assert await uow.webhooks.sold_out([]) == []


async def test_one_delivery_per_webhook_and_event(any_uow) -> None:
    alice = await add_user(any_uow, "alice")
    a, b = await add_hook(any_uow, hook(alice)), await add_hook(any_uow, hook(alice))
    event = new_id()
    for _ in range(2):  # a replayed fan-out
        async with any_uow() as uow:
            await uow.webhook_deliveries.add_missing([delivery(a, event), delivery(b, event)])
            await uow.commit()
    async with any_uow() as uow:
        due = await uow.webhook_deliveries.due_for_event(event, NOW)
        assert len(due) == 2 and all(at == NOW for _, at in due)
        assert await uow.webhook_deliveries.due_for_event(event, NOW - timedelta(seconds=1)) == []
        [view] = await uow.webhook_deliveries.recent(a.id, 100)
        assert (view.event_id, view.type, view.status, view.attempts, view.status_code) == (
            event,
            "order.placed",
            "pending",
            0,
            None,
        )
        assert view.next_retry_at == NOW and view.delivered_at is None


async def test_claim_is_won_once_and_the_lease_moves_the_due_time(any_uow) -> None:
    alice = await add_user(any_uow, "alice")
    webhook = await add_hook(any_uow, hook(alice))
    new = delivery(webhook, new_id())
    async with any_uow() as uow:
        await uow.webhook_deliveries.add_missing([new])
        await uow.commit()
    lease = NOW + timedelta(seconds=60)

    async def claim() -> object:
        async with any_uow() as uow:
            target = await uow.webhook_deliveries.claim(new.id, NOW, lease)
            await uow.commit()
            return target

    targets = [t for t in await asyncio.gather(*(claim() for _ in range(4))) if t is not None]
    assert len(targets) == 1
    [target] = targets
    assert (target.url, target.secret, target.body, target.attempts, target.first_attempt_at) == (
        "https://hooks.example/in",
        "whsec_s",
        '{"id": "x"}',
        0,
        None,
    )
    async with any_uow() as uow:
        assert await uow.webhook_deliveries.due(NOW + timedelta(seconds=59), 10) == []
        assert await uow.webhook_deliveries.due(lease, 10) == [(new.id, lease)]  # a dead worker's attempt
        assert await uow.webhook_deliveries.claim(new.id, NOW, lease) is None


async def test_record_keeps_the_outcome(any_uow) -> None:
    alice = await add_user(any_uow, "alice")
    webhook = await add_hook(any_uow, hook(alice))
    first, second = delivery(webhook, new_id(), at=0), delivery(webhook, new_id(), at=1)
    async with any_uow() as uow:
        await uow.webhook_deliveries.add_missing([first, second])
        await uow.commit()
    retry_at = NOW + timedelta(seconds=5)
    async with any_uow() as uow:
        await uow.webhook_deliveries.claim(first.id, NOW, NOW + timedelta(seconds=60))
        await uow.webhook_deliveries.record(
            first.id,
            AttemptResult(DeliveryStatus.PENDING, 1, 500, "HTTP 500", NOW, retry_at, None, NOW),
        )
        await uow.webhook_deliveries.claim(second.id, NOW + timedelta(seconds=1), NOW + timedelta(seconds=61))
        done_at = NOW + timedelta(seconds=2)
        await uow.webhook_deliveries.record(
            second.id,
            AttemptResult(DeliveryStatus.DELIVERED, 1, 204, None, NOW, None, done_at, done_at),
        )
        await uow.commit()
    async with any_uow() as uow:
        newest, oldest = await uow.webhook_deliveries.recent(webhook.id, 100)
        assert (newest.status, newest.status_code, newest.delivered_at, newest.next_retry_at) == (
            "delivered",
            204,
            done_at,
            None,
        )
        assert (oldest.status, oldest.attempts, oldest.last_error, oldest.next_retry_at) == (
            "pending",
            1,
            "HTTP 500",
            retry_at,
        )
        assert [d for d, _ in await uow.webhook_deliveries.due(retry_at, 10)] == [first.id]
        target = await uow.webhook_deliveries.claim(first.id, retry_at, retry_at + timedelta(seconds=60))
        assert target is not None and target.attempts == 1 and target.first_attempt_at == NOW
        assert len(await uow.webhook_deliveries.recent(webhook.id, 1)) == 1
