"""Job handlers shared by the SAQ worker and the in-process runner.

``run_job(container, kind, payload)`` is the one entry point for outbox jobs, whichever runner
picked them up: it goes through ``RunOutboxJob`` (skip when the row is already processed, mark
it processed after success). The table below maps each job kind to the use case doing the work;
payload parsing stays here, at the edge.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from application import jobs
from application.ports.outbox import OutboxEntry
from application.use_cases import notifications, recommendations, reports, webhooks
from application.use_cases.outbox import JobHandler

if TYPE_CHECKING:
    from entrypoints.container import Container

log = logging.getLogger(__name__)


def _id(entry: OutboxEntry, field: str) -> uuid.UUID:
    return uuid.UUID(str(entry.payload[field]))


def outbox_handlers(
    mail: notifications.MailDeps,
    report_deps: reports.ReportDeps,
    update_feed: recommendations.UpdateFeed,
    fan_out: webhooks.FanOutWebhookEvent | None = None,
) -> dict[str, JobHandler]:
    """Job kind → handler; the message id of every email is its outbox row's id."""
    welcome = notifications.SendWelcomeEmail(mail)
    verification = notifications.SendVerificationEmail(mail)
    reset = notifications.SendPasswordResetEmail(mail)
    email_changed = notifications.SendEmailChangedNotice(mail)
    confirmation = notifications.SendOrderConfirmation(mail)
    sale = notifications.SendSaleNotice(mail)
    build_report = reports.BuildSalesReport(report_deps)

    async def send_welcome(e: OutboxEntry) -> str:
        return await welcome.execute(user_id=_id(e, "user_id"), message_id=str(e.id))

    async def send_verification(e: OutboxEntry) -> str:
        return await verification.execute(
            user_id=_id(e, "user_id"), token=str(e.payload["token"]), message_id=str(e.id)
        )

    async def send_reset(e: OutboxEntry) -> str:
        return await reset.execute(user_id=_id(e, "user_id"), token=str(e.payload["token"]), message_id=str(e.id))

    async def send_email_changed(e: OutboxEntry) -> str:
        return await email_changed.execute(
            user_id=_id(e, "user_id"), old_email=str(e.payload["old_email"]), message_id=str(e.id)
        )

    async def send_confirmation(e: OutboxEntry) -> str:
        return await confirmation.execute(order_id=_id(e, "order_id"), message_id=str(e.id))

    async def send_sale(e: OutboxEntry) -> str:
        return await sale.execute(order_id=_id(e, "order_id"), seller_id=_id(e, "seller_id"), message_id=str(e.id))

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


# Jobs that are not outbox rows: their own row keeps their state (a delivery and its attempts).
QUEUE_ONLY_JOBS = {jobs.DELIVER_WEBHOOK: "deliver_webhook"}


async def run_job(container: Container, kind: str, payload: dict[str, Any]) -> dict[str, str]:
    """Run one job with the request id of the request that caused it bound into its log lines."""
    import structlog

    request_id = payload.get("request_id")
    bound = {"job": kind, **({"request_id": request_id} if isinstance(request_id, str) else {})}
    with structlog.contextvars.bound_contextvars(**bound):
        if kind in QUEUE_ONLY_JOBS:
            result: dict[str, str] = await container.use_cases[QUEUE_ONLY_JOBS[kind]].execute(payload)
        else:
            result = await container.use_cases["run_outbox_job"].execute(kind, payload)
        log.info("job %s: %s", kind, result.get("outcome"))
    return result


async def relay_outbox(container: Container, *, grace: timedelta | None = None) -> int:
    """Re-enqueue outbox rows the queue never got (or lost), after writing the failed attempts the
    database missed while it was down; every few seconds (``entrypoints.schedule.RelayLoop``)."""
    await container.use_cases["run_outbox_job"].flush_unrecorded()
    sent: int = await container.use_cases["relay_outbox"].execute(grace=grace)
    return sent


async def retry_webhook_deliveries(container: Container) -> int:
    """Enqueue webhook delivery attempts that have come due; every 5 seconds."""
    sent: int = await container.use_cases["retry_webhook_deliveries"].execute()
    return sent


async def _optional_refresh(container: Container, name: str) -> dict[str, Any]:
    use_case = container.use_cases.get(name)
    if use_case is None:
        log.info("no %r use case is registered yet; skipping this scheduled refresh", name)
        return {"skipped": True}
    result = await use_case.execute()
    return {"skipped": False, "result": result if isinstance(result, (int, float, str, dict, list)) else str(result)}


async def refresh_recommendations(container: Container) -> dict[str, Any]:
    """Rebuild the recommendation model (item neighbours), every 15 minutes.

    Calls the application's ``refresh_recommendations`` use case (an ``execute()`` without
    arguments, registered in ``Container.use_cases``) when it exists; logs and skips otherwise.
    """
    return await _optional_refresh(container, "refresh_recommendations")


async def recommendations_due(container: Container) -> bool:
    """Whether a model refresh should run now rather than on schedule: a fresh install (or a
    restored database) with interactions but no model yet."""
    use_case = container.use_cases.get("recommendation_model_state")
    if use_case is None:
        return False
    state = await use_case.execute()
    return bool(state.refresh_due)


async def refresh_popular_items(container: Container) -> dict[str, Any]:
    """Recompute the popular items the cold-start feed falls back to (``refresh_popular_items``)."""
    return await _optional_refresh(container, "refresh_popular_items")


async def purge_guest_carts(container: Container) -> int:
    """Delete guest carts unused for 30 days, with their lines; every hour."""
    purged: int = await container.use_cases["purge_guest_carts"].execute()
    return purged
