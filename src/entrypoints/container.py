"""The composition root: the one place that reads settings and picks an adapter for each port.

Swapping Postgres for SQLite or Redis for the in-process versions is a change here and nowhere
else; use cases never learn which adapter they got.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

from adapters.cache.memory_cache import MemoryCache
from adapters.cache.redis_cache import RedisCache
from adapters.cache.tiered import TieredCache
from adapters.clock import SystemClock
from adapters.jobs.inprocess import InProcessJobQueue
from adapters.jobs.saq_queue import SaqJobQueue
from adapters.kv.memory import MemoryKeyValueStore
from adapters.mail.outbox_dir import OutboxDirMailer
from adapters.mail.smtp import SmtpMailer
from adapters.security.argon2_hasher import Argon2PasswordHasher
from adapters.security.jwt_tokens import JwtAccessTokenIssuer
from adapters.sql.budget import Budget
from adapters.sql.catalog_queries import SqlCatalogQueries
from adapters.sql.database import Database, open_database
from adapters.sql.order_mail import SqlOrderMailQueries
from adapters.sql.outbox import SqlOutboxStore
from adapters.sql.pg_account_states import PgAccountStates
from adapters.sql.pg_cart_reads import PgCartReads
from adapters.sql.pg_catalog_queries import PgCatalogQueries
from adapters.sql.recommendations import SqlInteractionSource, SqlNeighbourStore, SqlRankingStore
from adapters.sql.repositories.auth import SqlAccountStates
from adapters.sql.sales_report import SqlSalesLineSource
from adapters.sql.uow import SqlUnitOfWorkFactory
from adapters.storage.files import FileReportStorage
from adapters.webhooks.http import DnsResolver, HttpxWebhookSender
from application.cached_catalog import CachedCatalogQueries, CacheInvalidation
from application.jobs import JobDispatcher
from application.pagination import set_cursor_secret
from application.ports.cache import Cache
from application.ports.jobs import JobQueue
from application.ports.kv import KeyValueStore
from application.ports.mail import Mailer
from application.use_cases import auth, cart, notifications, orders, reports, users, webhooks
from application.use_cases.catalog import categories, favorites, products, reviews
from application.use_cases.catalog.deps import CatalogDeps
from application.use_cases.outbox import RelayOutbox, RunOutboxJob
from application.use_cases.recommendations import RecommendationDeps, build_recommendation_use_cases
from entrypoints.jobs import outbox_handlers
from entrypoints.readiness import CHECK_SECONDS, Readiness
from entrypoints.schedule import PeriodicTasks, RelayLoop
from entrypoints.settings import Settings

log = logging.getLogger(__name__)


def _request_context() -> dict[str, str]:
    """The current request id (bound by the HTTP middleware), so jobs log under it too."""
    import structlog

    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"request_id": request_id} if isinstance(request_id, str) else {}


class Container:
    """Adapters and use cases for one app (or worker) instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = SystemClock()
        request_budget = Budget.for_requests(settings.request_deadline)
        self.db: Database = open_database(settings.database_url, pool_size=settings.db_pool_size, budget=request_budget)
        self.uow = SqlUnitOfWorkFactory(self.db)
        # Background work (jobs, reports, the model refresh) has a longer budget, so it gets
        # connections of its own (opened only when used; on SQLite it shares the writer's turn).
        self.job_db: Database = open_database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            budget=Budget.for_jobs(settings.job_statement_timeout),
            hot_reads=False,
            write_lock=self.db.write_lock,
        )
        job_uow = SqlUnitOfWorkFactory(self.job_db)
        # Catalog reads (lists, detail, search, categories, profiles) may go to a read replica;
        # writes and read-your-own-writes paths (cart, orders, auth) stay on the primary.
        self.replica: Database | None = (
            open_database(settings.database_replica_url, pool_size=settings.db_pool_size, budget=request_budget)
            if settings.database_replica_url
            else None
        )
        self.redis: Any = None
        self.kv: KeyValueStore
        self.queue: JobQueue
        if settings.redis_url:
            from redis.asyncio import Redis

            from adapters.kv.failover import FailoverKeyValueStore
            from adapters.kv.redis import RedisKeyValueStore

            # A stalled Redis costs one call this much (then the cache, key-value and rate-limit
            # stores back off): well inside the request deadline, never below the cache's own wait.
            redis_timeout = max(min(0.25, settings.request_deadline / 8), settings.cache_timeout)
            self.redis = Redis.from_url(
                settings.redis_url,
                socket_timeout=redis_timeout,
                socket_connect_timeout=redis_timeout,
                health_check_interval=10,
            )
            # while Redis is down, in-process state keeps logins and authenticated requests working
            self.kv = FailoverKeyValueStore(RedisKeyValueStore(self.redis, prefix=settings.redis_key_prefix))
        else:
            self.kv = MemoryKeyValueStore()
        self.queue = (
            SaqJobQueue.from_url(
                settings.redis_url,
                name=settings.job_queue_name,
                enqueue_timeout=min(1.0, settings.request_deadline / 4),
            )
            if settings.redis_url
            else InProcessJobQueue(self._run_job_inline)
        )
        cache_prefix = f"{settings.redis_key_prefix}cache:"
        self.cache: Cache = MemoryCache()
        if self.redis is not None:
            shared = RedisCache(self.redis, prefix=cache_prefix, timeout=settings.cache_timeout)
            self.cache = (
                TieredCache(
                    MemoryCache(max_entries=20_000),
                    shared,
                    channel=f"{cache_prefix}invalidations",
                    local_ttl=settings.cache_local_ttl,
                )
                if settings.cache_local_ttl > 0
                else shared
            )
        self.invalidation = CacheInvalidation(self.cache)
        self.mailer: Mailer = (
            SmtpMailer(
                host=settings.smtp_host,
                port=settings.smtp_port,
                mail_from=settings.mail_from,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
            )
            if settings.smtp_host
            else OutboxDirMailer(settings.outbox_dir, mail_from=settings.mail_from)
        )
        self.hasher = Argon2PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost)
        set_cursor_secret(settings.jwt_secret)  # every process of the deployment signs cursors alike
        self.tokens = JwtAccessTokenIssuer(
            secret=settings.jwt_secret,
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            lifetime_seconds=settings.access_token_ttl,
        )
        self.outbox = SqlOutboxStore(self.db)  # request side: marking rows dispatched
        self.job_outbox = SqlOutboxStore(self.job_db)  # job side: running, recording, relaying
        self.dispatcher = JobDispatcher(self.queue, self.outbox, context=_request_context)
        deps = auth.AuthDeps(
            uow=self.uow,
            hasher=self.hasher,
            tokens=self.tokens,
            kv=self.kv,
            clock=self.clock,
            jobs=self.dispatcher,
        )
        self.auth_deps = deps
        cart_reads = PgCartReads(self.db.reads) if self.db.reads is not None else None
        self.use_cases: dict[str, Any] = {
            "register_user": auth.Register(deps),
            "login_user": auth.Login(deps, failure_limit=settings.login_failure_limit),
            "refresh_session": auth.Refresh(deps),
            "logout_user": auth.Logout(deps),
            "verify_email": auth.VerifyEmail(deps),
            "resend_verification": auth.ResendVerification(deps),
            "request_password_reset": auth.RequestPasswordReset(deps),
            "confirm_password_reset": auth.ConfirmPasswordReset(deps),
            "check_access_token": auth.CheckAccessToken(
                deps, PgAccountStates(self.db.reads) if self.db.reads is not None else SqlAccountStates(self.db)
            ),
            "get_me": users.GetMe(self.uow),
            "update_me": users.UpdateMe(deps),
            "delete_me": users.DeleteMe(deps, self.invalidation),
            "get_cart": cart.GetCart(self.uow, cart_reads),
            "add_to_cart": cart.AddToCart(self.uow, self.clock),
            "change_cart_quantity": cart.ChangeCartQuantity(self.uow, self.clock),
            "remove_cart_item": cart.RemoveCartItem(self.uow),
            "clear_cart": cart.ClearCart(self.uow),
            "create_guest_cart": cart.CreateGuestCart(self.uow, self.clock),
            "resolve_cart_token": cart.ResolveCartToken(self.uow, self.clock, cart_reads),
            "purge_guest_carts": cart.PurgeGuestCarts(self.uow, self.clock),
            "checkout": orders.Checkout(
                orders.OrderDeps(uow=self.uow, clock=self.clock, jobs=self.dispatcher, invalidation=self.invalidation)
            ),
            "list_orders": orders.ListOrders(self.uow),
            "get_order": orders.GetOrder(self.uow),
            "cancel_order": orders.CancelOrder(self.uow, self.clock, self.invalidation, self.dispatcher),
            "list_sales": orders.ListSales(self.uow),
        }
        catalog_db = self.replica or self.db  # raw asyncpg reads where it has them (Postgres)
        catalog_reads = PgCatalogQueries(catalog_db) if catalog_db.reads is not None else SqlCatalogQueries(catalog_db)
        # Details (primary-key reads) are cached per process only; see ProcessLocalCache.
        detail_cache = self.cache.process_local() if isinstance(self.cache, TieredCache) else self.cache
        self.catalog_queries = CachedCatalogQueries(catalog_reads, self.cache, detail_cache=detail_cache)
        catalog_deps = CatalogDeps(
            uow=self.uow,
            queries=self.catalog_queries,
            clock=self.clock,
            invalidation=self.invalidation,
            jobs=self.dispatcher,
        )
        self.use_cases.update(
            {
                "list_categories": categories.ListCategories(catalog_deps),
                "create_category": categories.CreateCategory(catalog_deps),
                "update_category": categories.UpdateCategory(catalog_deps),
                "delete_category": categories.DeleteCategory(catalog_deps),
                "create_product": products.CreateProduct(catalog_deps),
                "get_product": products.GetProduct(catalog_deps),
                "update_product": products.UpdateProduct(catalog_deps),
                "withdraw_product": products.WithdrawProduct(catalog_deps),
                "list_products": products.ListProducts(catalog_deps),
                "list_reviews": reviews.ListReviews(catalog_deps),
                "create_review": reviews.CreateReview(catalog_deps),
                "update_review": reviews.UpdateReview(catalog_deps),
                "delete_review": reviews.DeleteReview(catalog_deps),
                "add_favorite": favorites.AddFavorite(catalog_deps),
                "remove_favorite": favorites.RemoveFavorite(catalog_deps),
                "list_favorites": favorites.ListFavorites(catalog_deps),
            }
        )
        self.use_cases["get_public_profile"] = users.GetPublicProfile(self.catalog_queries)
        self.neighbour_store = SqlNeighbourStore(self.db)
        recommendation_deps = RecommendationDeps(
            source=SqlInteractionSource(self.db),
            store=self.neighbour_store,
            queries=self.catalog_queries,
            cache=self.cache,
            clock=self.clock,
            rankings=SqlRankingStore(self.db),
        )
        self.use_cases.update(build_recommendation_use_cases(recommendation_deps))
        background = build_recommendation_use_cases(
            replace(
                recommendation_deps,
                source=SqlInteractionSource(self.job_db),
                store=SqlNeighbourStore(self.job_db),
                rankings=SqlRankingStore(self.job_db),
            )
        )
        for name in ("refresh_recommendations", "refresh_popular_items", "update_feed"):  # jobs: the job budget
            self.use_cases[name] = background[name]

        mail = notifications.MailDeps(
            uow=job_uow,
            mailer=self.mailer,
            orders=SqlOrderMailQueries(self.job_db),
            public_base_url=settings.public_base_url,
        )
        report_deps = reports.ReportDeps(
            uow=self.uow,
            clock=self.clock,
            jobs=self.dispatcher,
            sales=SqlSalesLineSource(self.db),
            storage=FileReportStorage(settings.reports_dir),
        )
        self.webhook_sender = HttpxWebhookSender()
        webhook_deps = webhooks.WebhookDeps(
            uow=self.uow,
            clock=self.clock,
            resolver=DnsResolver(),
            sender=self.webhook_sender,
            queue=self.queue,
            allow_private=settings.webhook_allow_private,
            retry_base=timedelta(seconds=settings.webhook_retry_base_seconds),
        )
        fan_out = webhooks.FanOutWebhookEvent(webhook_deps)
        self.use_cases.update(
            {
                "create_webhook": webhooks.CreateWebhook(webhook_deps),
                "list_webhooks": webhooks.ListWebhooks(self.uow),
                "delete_webhook": webhooks.DeleteWebhook(self.uow),
                "list_webhook_deliveries": webhooks.ListDeliveries(self.uow),
                "deliver_webhook": webhooks.DeliverWebhook(webhook_deps),
                "retry_webhook_deliveries": webhooks.RetryWebhookDeliveries(webhook_deps),
            }
        )
        self.use_cases.update(
            {
                "request_report": reports.RequestReport(report_deps),
                "get_report": reports.GetReport(report_deps),
                "open_report_download": reports.OpenReportDownload(report_deps),
                "run_outbox_job": RunOutboxJob(
                    self.job_outbox,
                    outbox_handlers(
                        mail,
                        replace(report_deps, uow=job_uow, sales=SqlSalesLineSource(self.job_db)),
                        self.use_cases["update_feed"],
                        fan_out,
                    ),
                    self.clock,
                ),
                "relay_outbox": RelayOutbox(self.job_outbox, self.queue, self.clock),
            }
        )
        self.periodic = PeriodicTasks(self)
        self.relay_loop = RelayLoop(self)  # started by whichever process runs the jobs
        self.readiness_checks = Readiness(
            database_url=settings.database_url,
            replica_url=settings.database_replica_url,
            redis_url=settings.redis_url,
            queue_key=self.queue.depth_key if isinstance(self.queue, SaqJobQueue) else None,
            key_prefix=settings.redis_key_prefix,
            worker_max_age=settings.worker_heartbeat_max_age,
            local_queue_ping=self.queue.ping,
        )

    async def _run_job_inline(self, kind: str, payload: dict[str, Any]) -> None:
        """Embedded default: jobs run in this process (the worker's handlers, same code)."""
        from entrypoints.jobs import run_job

        await run_job(self, kind, payload)

    async def refresh_metrics(self) -> None:
        """Set the gauges ``/metrics`` reads at scrape time: model age, cache events, queue depth, the
        oldest pending outbox row, the worker's heartbeat age. Each source has a second; one that does
        not answer leaves its gauge NaN (or as it was) and the scrape still answers.

        The model age is NaN while there is no model (a fresh install before its first refresh).
        """
        import time

        from entrypoints.http.metrics import (
            CACHE_EVENTS,
            JOB_OUTCOMES,
            MODEL_AGE,
            OUTBOX_OLDEST_PENDING_AGE,
            QUEUE_DEPTH,
            WORKER_HEARTBEAT_AGE,
        )

        async def model_age() -> None:
            state = await self.use_cases["recommendation_model_state"].execute()
            MODEL_AGE.set(time.time() - state.built_at if state.built_at is not None else math.nan)

        async def outcomes() -> None:
            for (kind, outcome), count in (await self.outbox.outcome_counts()).items():
                JOB_OUTCOMES.labels(kind, outcome).set(count)

        async def oldest_pending() -> None:
            oldest = await self.outbox.oldest_pending()
            OUTBOX_OLDEST_PENDING_AGE.set(max(0.0, time.time() - oldest.timestamp()) if oldest else 0.0)

        async def queue_depth() -> None:
            depth = getattr(self.queue, "depth", None)
            value = await depth() if depth is not None else -1
            QUEUE_DEPTH.set(value if value >= 0 else math.nan)  # -1: the queue did not answer

        async def worker_age() -> None:
            age = await self.readiness_checks.worker_age()
            WORKER_HEARTBEAT_AGE.set(math.nan if age is None else age)

        stats = getattr(self.cache, "stats", None)
        if stats is not None:
            counts = stats()
            for key, result in (("hits", "hit"), ("misses", "miss"), ("errors", "error")):
                if key in counts:
                    CACHE_EVENTS.labels(result).set(counts[key])
        sources = {
            "model age": model_age,
            "job outcomes": outcomes,
            "oldest pending job": oldest_pending,
            "queue depth": queue_depth,
            "worker heartbeat": worker_age,
        }

        async def bounded(name: str, source: Any) -> None:
            try:
                async with asyncio.timeout(CHECK_SECONDS):
                    await source()
            except Exception:  # the database or Redis is down or stalled: /ready says so
                log.warning("metrics: could not read the %s", name, exc_info=True)

        await asyncio.gather(*(bounded(name, source) for name, source in sources.items()))

    async def readiness(self) -> dict[str, str | None]:
        """Check name → None when fine, else what is wrong (see ``entrypoints.readiness``)."""
        return await self.readiness_checks.check()

    async def startup(self) -> None:
        if isinstance(self.queue, InProcessJobQueue):
            self.periodic.start()  # no worker in the embedded default: this process runs the schedule
            self.relay_loop.start()

    async def shutdown(self) -> None:
        await self.periodic.stop()
        await self.relay_loop.stop()
        if isinstance(self.queue, InProcessJobQueue):
            await self.queue.drain(timeout=5)
        if isinstance(self.queue, SaqJobQueue):
            await self.queue.close()
        await self.webhook_sender.close()
        if isinstance(self.cache, TieredCache):
            await self.cache.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.readiness_checks.close()
        await self.db.dispose()
        await self.job_db.dispose()
        if self.replica is not None:
            await self.replica.dispose()
