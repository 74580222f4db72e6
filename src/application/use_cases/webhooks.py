"""Seller webhooks: subscribe, list, remove, and deliver signed events from the worker.

Delivery never runs in a request. The ``webhook_event`` outbox job fans an event out to one
delivery row per subscribed webhook (unique per webhook and event, so a replayed job adds
nothing) and enqueues a ``deliver_webhook`` job for each. An attempt first claims its row by
moving ``next_retry_at`` a lease ahead (a guarded update: one claimant wins; a worker that dies
mid-attempt leaves the row due again when the lease ends), then re-checks where the host points
now, POSTs to a vetted address (the next one only when one refuses the connection), and stores
the outcome: delivered, or the next attempt with
exponential backoff, or failed once the retry window has closed. A frequent scheduled job
(``RetryWebhookDeliveries``) enqueues the attempts that have come due.

Job keys name the delivery and the due time of the attempt (``webhook-delivery:<id>:<ms>``),
so the fan-out and the scheduled job enqueue one attempt once however often they see it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from application.identity import Principal
from application.jobs import DELIVER_WEBHOOK
from application.pagination import PAGE_DEFAULT, Page, check_limit, page_of, resume_after
from application.ports.clock import Clock
from application.ports.jobs import JobQueue
from application.ports.persistence import UnitOfWorkFactory
from application.ports.webhooks import (
    AddressResolver,
    AttemptResult,
    ConnectFailed,
    DeliveryFailed,
    DeliveryTarget,
    DeliveryView,
    NewDelivery,
    WebhookSender,
    WebhookView,
)
from application.use_cases.base import UnitOfWorkUseCase, UseCase
from domain.errors import Conflict, NotFound, RuleViolation
from domain.ids import new_id
from domain.webhook_signature import EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from domain.webhooks import (
    DELIVERIES_SHOWN,
    MAX_WEBHOOKS_PER_USER,
    RETRY_BASE,
    DeliveryStatus,
    Webhook,
    check_addresses,
    next_attempt_at,
    url_host_port,
    validate_events,
    validate_url,
)

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 10.0
RESOLVE_TIMEOUT_SECONDS = 3.0
# Longer than one attempt can take (the send timeout plus bookkeeping).
LEASE = timedelta(seconds=60)
DUE_BATCH = 200
ERROR_MAX = 500
_NO_WEBHOOK = "No such webhook."


class CreatedWebhook(msgspec.Struct):
    """The new webhook with its signing secret: the only answer that ever shows the secret."""

    id: uuid.UUID
    url: str
    events: list[str]
    secret: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookDeps:
    uow: UnitOfWorkFactory
    clock: Clock
    resolver: AddressResolver
    sender: WebhookSender
    queue: JobQueue
    # Development and tests only: lets webhooks target loopback and private addresses.
    allow_private: bool = False
    retry_base: timedelta = RETRY_BASE


def view(webhook: Webhook) -> WebhookView:
    return WebhookView(id=webhook.id, url=webhook.url, events=list(webhook.events), created_at=webhook.created_at)


def delivery_key(delivery_id: uuid.UUID, due_at: datetime) -> str:
    return f"webhook-delivery:{delivery_id}:{int(due_at.timestamp() * 1000)}"


async def vetted_addresses(deps: WebhookDeps, url: str) -> list[str]:
    """The addresses ``url``'s host resolves to now, all allowed; RuleViolation (field url) otherwise."""
    host, port = url_host_port(url)
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            addresses = await deps.resolver.resolve(host, port)
    except (LookupError, OSError, TimeoutError, ValueError):  # ValueError: a name IDNA cannot encode
        raise RuleViolation(f"The URL's host {host!r} cannot be resolved.", field="url") from None
    return check_addresses(addresses, allow_private=deps.allow_private)


class CreateWebhook(UseCase[WebhookDeps]):
    """Subscribe an http(s) URL to event types; the target must not be a private address
    (unless ``WEBHOOK_ALLOW_PRIVATE``). At most ``MAX_WEBHOOKS_PER_USER`` per user (409)."""

    async def execute(self, principal: Principal, *, url: str, events: list[str]) -> CreatedWebhook:
        url = validate_url(url)
        chosen = validate_events(events)
        await vetted_addresses(self.deps, url)
        webhook = Webhook(
            id=new_id(),
            user_id=principal.id,
            url=url,
            events=chosen,
            secret="whsec_" + secrets.token_urlsafe(32),
            created_at=self.deps.clock.now(),
        )
        async with self.deps.uow() as uow:
            if not await uow.webhooks.add_within_cap(webhook, MAX_WEBHOOKS_PER_USER):
                raise Conflict(f"You already have {MAX_WEBHOOKS_PER_USER} webhooks; remove one first.")
            await uow.commit()
        return CreatedWebhook(
            id=webhook.id, url=webhook.url, events=list(chosen), secret=webhook.secret, created_at=webhook.created_at
        )


class ListWebhooks(UnitOfWorkUseCase):
    """The caller's webhooks, newest first, without their secrets."""

    async def execute(
        self, principal: Principal, *, limit: int = PAGE_DEFAULT, cursor: str | None = None
    ) -> Page[WebhookView]:
        check_limit(limit)
        after = resume_after(cursor, "webhooks")
        async with self.uow() as uow:
            rows = await uow.webhooks.list_for_user(principal.id, limit=limit + 1, after=after)
        page = page_of(rows, limit, "webhooks", lambda webhook: (webhook.created_at, webhook.id))
        return Page(items=[view(webhook) for webhook in page.items], next_cursor=page.next_cursor)


class DeleteWebhook(UnitOfWorkUseCase):
    """Remove one of the caller's webhooks and its deliveries (anyone else's → 404)."""

    async def execute(self, principal: Principal, *, webhook_id: uuid.UUID) -> None:
        async with self.uow() as uow:
            if not await uow.webhooks.delete(webhook_id, principal.id):
                raise NotFound(_NO_WEBHOOK, field="webhook_id")
            await uow.commit()


class ListDeliveries(UnitOfWorkUseCase):
    """The latest deliveries of one of the caller's webhooks, newest first (anyone else's → 404)."""

    async def execute(self, principal: Principal, *, webhook_id: uuid.UUID) -> list[DeliveryView]:
        async with self.uow() as uow:
            if await uow.webhooks.get(webhook_id, principal.id) is None:
                raise NotFound(_NO_WEBHOOK, field="webhook_id")
            return await uow.webhook_deliveries.recent(webhook_id, DELIVERIES_SHOWN)


async def _enqueue(queue: JobQueue, due: list[tuple[uuid.UUID, datetime]]) -> int:
    """Hand attempts to the queue; one it refuses stays due for the next scheduled run."""
    sent = 0
    for delivery_id, due_at in due:
        try:
            await queue.enqueue(
                DELIVER_WEBHOOK, {"delivery_id": str(delivery_id)}, key=delivery_key(delivery_id, due_at)
            )
            sent += 1
        except Exception:
            log.warning("job queue unavailable; %d webhook deliveries wait for the retry job", len(due) - sent)
            break
    return sent


class FanOutWebhookEvent(UseCase[WebhookDeps]):
    """The ``webhook_event`` outbox job: one delivery per webhook of the seller listening for it."""

    async def execute(self, payload: Mapping[str, Any]) -> str:
        event_id = uuid.UUID(str(payload["event_id"]))
        event_type = str(payload["type"])
        user_id = uuid.UUID(str(payload["user_id"]))
        body = msgspec.json.encode(
            {"id": str(event_id), "type": event_type, "created_at": payload["created_at"], "data": payload["data"]}
        ).decode()
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            hooks = await uow.webhooks.subscribed(user_id, event_type)
            await uow.webhook_deliveries.add_missing(
                [
                    NewDelivery(
                        id=new_id(),
                        webhook_id=hook.id,
                        event_id=event_id,
                        event_type=event_type,
                        body=body,
                        created_at=now,
                    )
                    for hook in hooks
                ]
            )
            due = await uow.webhook_deliveries.due_for_event(event_id, now)
            await uow.commit()
        sent = await _enqueue(self.deps.queue, due)
        return f"{len(hooks)} webhooks, {sent} attempts enqueued"


class RetryWebhookDeliveries:
    """Enqueue the delivery attempts that have come due (runs every few seconds)."""

    def __init__(self, deps: WebhookDeps, *, batch: int = DUE_BATCH) -> None:
        self.deps = deps
        self.batch = batch

    async def execute(self) -> int:
        async with self.deps.uow() as uow:
            due = await uow.webhook_deliveries.due(self.deps.clock.now(), self.batch)
        return await _enqueue(self.deps.queue, due)


class DeliverWebhook(UseCase[WebhookDeps]):
    """One delivery attempt (the ``deliver_webhook`` job)."""

    async def execute(self, payload: Mapping[str, Any]) -> dict[str, str]:
        delivery_id = uuid.UUID(str(payload["delivery_id"]))
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            target = await uow.webhook_deliveries.claim(delivery_id, now, now + LEASE)
            await uow.commit()
        if target is None:
            return {"delivery_id": str(delivery_id), "outcome": "not due or gone"}
        try:
            status_code, error = await self._attempt(target)
        except Exception as bug:  # counted as a failed attempt, so a bug cannot retry it forever
            log.exception("webhook delivery %s failed unexpectedly", delivery_id)
            status_code, error = None, f"internal error: {type(bug).__name__}"
        finished = self.deps.clock.now()
        attempts = target.attempts + 1
        first = target.first_attempt_at or now
        if error is None:
            result = AttemptResult(
                status=DeliveryStatus.DELIVERED,
                attempts=attempts,
                status_code=status_code,
                last_error=None,
                first_attempt_at=first,
                next_retry_at=None,
                delivered_at=finished,
                updated_at=finished,
            )
        else:
            retry_at = next_attempt_at(first, finished, attempts, base=self.deps.retry_base)
            result = AttemptResult(
                status=DeliveryStatus.PENDING if retry_at is not None else DeliveryStatus.FAILED,
                attempts=attempts,
                status_code=status_code,
                last_error=error[:ERROR_MAX],
                first_attempt_at=first,
                next_retry_at=retry_at,
                delivered_at=None,
                updated_at=finished,
            )
        async with self.deps.uow() as uow:
            await uow.webhook_deliveries.record(delivery_id, result)
            await uow.commit()
        return {"delivery_id": str(delivery_id), "outcome": result.status.value}

    async def _attempt(self, target: DeliveryTarget) -> tuple[int | None, str | None]:
        """(status code, error): error is None only for a 2xx answer."""
        try:
            addresses = await vetted_addresses(self.deps, target.url)
        except RuleViolation as refused:
            return None, f"refused: {refused.detail}"
        body = target.body.encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(target.event_id),
            SIGNATURE_HEADER: sign(target.secret, int(self.deps.clock.now().timestamp()), body),
        }
        status: int | None = None
        error = "no address to connect to"
        for address in addresses:  # the next address only when this one took no connection
            try:
                status = await self.deps.sender.post(target.url, address, body, headers, timeout=SEND_TIMEOUT_SECONDS)
                break
            except ConnectFailed as failed:
                error = str(failed) or type(failed).__name__
            except DeliveryFailed as failed:
                return None, str(failed) or type(failed).__name__
        if status is None:
            return None, error
        if 200 <= status < 300:
            return status, None
        if 300 <= status < 400:
            return status, f"HTTP {status}: redirects are not followed"
        return status, f"HTTP {status}"
