"""Queued jobs, shared by the SAQ worker and the in-process runner.

``JobRunner.run(kind, payload)`` is the one entry point for a job, whichever runner picked it up:
an outbox job goes through ``RunOutboxJob`` (skip when the row is already processed, mark it
processed after success); a webhook delivery keeps its state on its own row. ``outbox_handlers``
maps each outbox job kind to the use case doing the work; payload parsing stays here, at the edge.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import structlog

from application import jobs
from application.ports.outbox import OutboxEntry
from application.use_cases import recommendations, reports, webhooks
from application.use_cases.outbox import JobHandler
from entrypoints.bundles import NotificationUseCases, OutboxUseCases, WebhookUseCases

log = logging.getLogger(__name__)


def _id(entry: OutboxEntry, field: str) -> uuid.UUID:
    return uuid.UUID(str(entry.payload[field]))


def outbox_handlers(
    mail: NotificationUseCases,
    build_report: reports.BuildSalesReport,
    update_feed: recommendations.UpdateFeed,
    fan_out: webhooks.FanOutWebhookEvent | None = None,
) -> dict[str, JobHandler]:
    """Job kind → handler; the message id of every email is its outbox row's id."""

    async def send_welcome(e: OutboxEntry) -> str:
        return await mail.send_welcome_email.execute(user_id=_id(e, "user_id"), message_id=str(e.id))

    async def send_verification(e: OutboxEntry) -> str:
        return await mail.send_verification_email.execute(
            user_id=_id(e, "user_id"), token=str(e.payload["token"]), message_id=str(e.id)
        )

    async def send_reset(e: OutboxEntry) -> str:
        return await mail.send_password_reset_email.execute(
            user_id=_id(e, "user_id"), token=str(e.payload["token"]), message_id=str(e.id)
        )

    async def send_email_changed(e: OutboxEntry) -> str:
        return await mail.send_email_changed_notice.execute(
            user_id=_id(e, "user_id"), old_email=str(e.payload["old_email"]), message_id=str(e.id)
        )

    async def send_confirmation(e: OutboxEntry) -> str:
        return await mail.send_order_confirmation.execute(order_id=_id(e, "order_id"), message_id=str(e.id))

    async def send_sale(e: OutboxEntry) -> str:
        return await mail.send_sale_notice.execute(
            order_id=_id(e, "order_id"), seller_id=_id(e, "seller_id"), message_id=str(e.id)
        )

    async def build_sales_report(e: OutboxEntry) -> str:
        return await build_report.execute(report_id=_id(e, "report_id"))

    async def refresh_feed(e: OutboxEntry) -> str:
        products = [uuid.UUID(str(p)) for p in e.payload.get("product_ids", [])]
        return await update_feed.execute(_id(e, "user_id"), products)

    handlers: dict[str, JobHandler] = {
        jobs.SEND_WELCOME: send_welcome,
        jobs.SEND_VERIFICATION: send_verification,
        jobs.SEND_PASSWORD_RESET: send_reset,
        jobs.SEND_EMAIL_CHANGED: send_email_changed,
        jobs.SEND_ORDER_CONFIRMATION: send_confirmation,
        jobs.SEND_SALE_NOTICE: send_sale,
        jobs.BUILD_SALES_REPORT: build_sales_report,
        jobs.UPDATE_FEED: refresh_feed,
    }
    if fan_out is not None:

        async def webhook_event(e: OutboxEntry) -> str:
            return await fan_out.execute(e.payload)

        handlers[jobs.WEBHOOK_EVENT] = webhook_event
    return handlers


class JobRunner:
    """Runs one job from the queue, with the request id of the request that caused it bound into
    its log lines."""

    def __init__(self, outbox: OutboxUseCases, webhooks: WebhookUseCases) -> None:
        self.outbox = outbox
        self.webhooks = webhooks

    async def run(self, kind: str, payload: dict[str, Any]) -> dict[str, str]:
        request_id = payload.get("request_id")
        bound = {"job": kind, **({"request_id": request_id} if isinstance(request_id, str) else {})}
        with structlog.contextvars.bound_contextvars(**bound):
            if kind == jobs.DELIVER_WEBHOOK:  # not an outbox row: the delivery's own row keeps its state
                result = await self.webhooks.deliver_webhook.execute(payload)
            else:
                result = await self.outbox.run_outbox_job.execute(kind, payload)
            log.info("job %s: %s", kind, result.get("outcome"))
        return result


async def relay_outbox(outbox: OutboxUseCases, *, grace: timedelta | None = None) -> int:
    """Re-enqueue outbox rows the queue never got (or lost), after writing the failed attempts the
    database missed while it was down; every few seconds (``entrypoints.schedule.RelayLoop``)."""
    await outbox.run_outbox_job.flush_unrecorded()
    return await outbox.relay_outbox.execute(grace=grace)
