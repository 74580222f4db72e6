"""Seller webhooks: subscribe a URL to events, list and remove subscriptions, see deliveries."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from application.pagination import Page
from application.ports.webhooks import DeliveryView, WebhookView
from application.use_cases.webhooks import CreatedWebhook
from domain.ids import parse_id
from domain.webhooks import DELIVERIES_SHOWN, EVENT_TYPES, MAX_WEBHOOKS_PER_USER, URL_MAX
from entrypoints.http.controllers.orders import Cursor, Limit
from entrypoints.http.dependencies import Caller, Webhooks

_EVENTS = ", ".join(f"`{event}`" for event in EVENT_TYPES)


class WebhookIn(msgspec.Struct):
    url: Annotated[
        str,
        msgspec.Meta(
            description=f"http(s), at most {URL_MAX} characters, no credentials; it must not point at a "
            "loopback, private, link-local, multicast or reserved address.",
            examples=["https://seller.example.com/hooks/marketplace"],
        ),
    ]
    events: Annotated[
        list[str],
        msgspec.Meta(description=f"A non-empty subset of {_EVENTS}.", examples=[["order.placed", "order.cancelled"]]),
    ]


class DeliveryList(msgspec.Struct):
    items: list[DeliveryView]


def _webhook_id(raw: str) -> Any:
    return parse_id(raw, field="webhook_id")


class WebhooksController(Controller):
    path = "/api/webhooks"
    tags = ["webhooks"]

    @post(
        "/",
        operation_id="createWebhook",
        summary="Subscribe a URL to events",
        description=(
            "The answer carries the signing `secret`: it is shown only here. Every delivery is a POST of "
            "`{id, type, created_at, data}` signed in `Marketplace-Signature: t=<unix>,v1=<hex HMAC-SHA256"
            '(secret, "<t>." + body)>`, with `Marketplace-Event-Id`. Unknown event types → 422 (`events`); '
            "a URL that is not http(s), too long, carries credentials or resolves to a non-public address → "
            f"422 (`url`). At most {MAX_WEBHOOKS_PER_USER} webhooks per user (409 beyond)."
        ),
    )
    async def create_webhook(self, request: Caller, data: JSONBody[WebhookIn], webhooks: Webhooks) -> CreatedWebhook:
        return await webhooks.create_webhook.execute(request.user, url=data.url, events=data.events)

    @get("/", operation_id="listWebhooks", summary="Your webhooks, newest first")
    async def list_webhooks(
        self, request: Caller, webhooks: Webhooks, limit: Limit = 20, cursor: Cursor = None
    ) -> Page[WebhookView]:
        """Without secrets."""
        return await webhooks.list_webhooks.execute(request.user, limit=limit, cursor=cursor)

    @delete("/{webhook_id:str}", operation_id="deleteWebhook", summary="Remove a webhook")
    async def delete_webhook(self, request: Caller, webhook_id: FromPath[str], webhooks: Webhooks) -> None:
        """Its pending deliveries are dropped. Anyone else's webhook → 404."""
        await webhooks.delete_webhook.execute(request.user, webhook_id=_webhook_id(webhook_id))

    @get(
        "/{webhook_id:str}/deliveries",
        operation_id="listWebhookDeliveries",
        summary="A webhook's latest deliveries",
        description=(
            f"The last {DELIVERIES_SHOWN}, newest first: `status` is `pending` (see `next_retry_at`), "
            "`delivered` or `failed` (retried with exponential backoff for 24 hours, then given up). "
            "Anyone else's webhook → 404."
        ),
    )
    async def list_deliveries(self, request: Caller, webhook_id: FromPath[str], webhooks: Webhooks) -> DeliveryList:
        items = await webhooks.list_deliveries.execute(request.user, webhook_id=_webhook_id(webhook_id))
        return DeliveryList(items=items)
