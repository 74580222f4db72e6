"""The one place that picks an adapter for each port, from the settings.

Swapping Postgres for SQLite or Redis for the in-process versions is a change here and nowhere
else; use cases never learn which adapter they got.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from adapters.cache.memory_cache import MemoryCache
from adapters.cache.redis_cache import RedisCache
from adapters.cache.tiered import TieredCache
from adapters.clock import SystemClock
from adapters.jobs.inprocess import InProcessJobQueue
from adapters.jobs.saq_queue import SaqJobQueue
from adapters.kv.failover import FailoverKeyValueStore
from adapters.kv.memory import MemoryKeyValueStore
from adapters.kv.redis import RedisKeyValueStore
from adapters.mail.outbox_dir import OutboxDirMailer
from adapters.mail.smtp import SmtpMailer
from adapters.security.argon2_hasher import Argon2PasswordHasher
from adapters.security.jwt_tokens import JwtAccessTokenIssuer
from adapters.sql.budget import Budget
from adapters.sql.cart_reads import SqlCartReads
from adapters.sql.catalog_queries import SqlCatalogQueries
from adapters.sql.database import Database, open_database
from adapters.sql.order_mail import SqlOrderMailQueries
from adapters.sql.outbox import SqlOutboxJobStore
from adapters.sql.recommendations import SqlInteractionSource, SqlNeighbourStore, SqlRankingStore
from adapters.sql.repositories.auth import SqlAccountStates
from adapters.sql.sales_report import SqlSalesLineSource
from adapters.sql.uow import SqlUnitOfWorkFactory
from adapters.storage.files import FileReportStorage
from adapters.webhooks.http import DnsResolver, HttpxWebhookSender
from application.cached_catalog import CachedCatalogQueries, CacheInvalidation
from application.jobs import JobDispatcher
from application.ports.kv import KeyValueStore
from application.ports.mail import Mailer
from entrypoints.settings import Settings


@dataclass(frozen=True, slots=True)
class DatabasePorts:
    """The SQL-backed ports on one set of connections and its time budget: the request side (short
    deadlines) or the job side (jobs, reports, model refreshes: longer ones, never taken from the
    request pool)."""

    db: Database
    uow: SqlUnitOfWorkFactory
    outbox: SqlOutboxJobStore
    interactions: SqlInteractionSource
    neighbours: SqlNeighbourStore
    rankings: SqlRankingStore
    sales_lines: SqlSalesLineSource
    order_mail: SqlOrderMailQueries


def _database_ports(db: Database) -> DatabasePorts:
    return DatabasePorts(
        db=db,
        uow=SqlUnitOfWorkFactory(db),
        outbox=SqlOutboxJobStore(db),
        interactions=SqlInteractionSource(db),
        neighbours=SqlNeighbourStore(db),
        rankings=SqlRankingStore(db),
        sales_lines=SqlSalesLineSource(db.reads),
        order_mail=SqlOrderMailQueries(db.reads),
    )


@dataclass(frozen=True, slots=True)
class Adapters:
    """Every port's adapter for one process (an API process, the worker or a CLI command)."""

    clock: SystemClock
    requests: DatabasePorts
    jobs: DatabasePorts
    # Catalog reads (lists, detail, search, categories, profiles) may go to a read replica; writes
    # and read-your-own-writes paths (cart, orders, auth) stay on the primary.
    replica: Database | None
    redis: Redis | None
    kv: KeyValueStore
    queue: SaqJobQueue | InProcessJobQueue
    cache: MemoryCache | RedisCache | TieredCache
    catalog_queries: CachedCatalogQueries
    cart_reads: SqlCartReads
    account_states: SqlAccountStates
    mailer: Mailer
    hasher: Argon2PasswordHasher
    tokens: JwtAccessTokenIssuer
    report_storage: FileReportStorage
    resolver: DnsResolver
    webhook_sender: HttpxWebhookSender
    # Application services every writer shares: cache invalidation after a commit, and the
    # dispatcher that hands committed outbox jobs to the queue.
    invalidation: CacheInvalidation
    dispatcher: JobDispatcher

    async def close(self) -> None:
        if isinstance(self.queue, InProcessJobQueue):
            await self.queue.drain(timeout=5)
        else:
            await self.queue.close()
        await self.webhook_sender.close()
        if isinstance(self.cache, TieredCache):
            await self.cache.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.requests.db.dispose()
        await self.jobs.db.dispose()
        if self.replica is not None:
            await self.replica.dispose()


def _request_context() -> dict[str, str]:
    """The current request id (bound by the HTTP middleware), so jobs log under it too."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return {"request_id": request_id} if isinstance(request_id, str) else {}


def _redis(settings: Settings, url: str) -> Redis:
    # A stalled Redis costs one call this much (then the cache, key-value and rate-limit stores back
    # off): well inside the request deadline, never below the cache's own wait.
    timeout = max(min(0.25, settings.request_deadline / 8), settings.cache_timeout)
    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=10)


def _cache(settings: Settings, redis: Redis | None) -> MemoryCache | RedisCache | TieredCache:
    if redis is None:
        return MemoryCache()
    prefix = f"{settings.redis_key_prefix}cache:"
    shared = RedisCache(redis, prefix=prefix, timeout=settings.cache_timeout)
    if settings.cache_local_ttl <= 0:
        return shared
    return TieredCache(
        MemoryCache(max_entries=20_000),
        shared,
        channel=f"{prefix}invalidations",
        local_ttl=settings.cache_local_ttl,
    )


def _mailer(settings: Settings) -> Mailer:
    if not settings.smtp_host:
        return OutboxDirMailer(settings.outbox_dir, mail_from=settings.mail_from)
    return SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        mail_from=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )


def build_adapters(settings: Settings) -> Adapters:
    """Open (lazily: nothing connects before its first use) every adapter the settings ask for.

    Without Redis the queue runs jobs in this process; the composition root gives it its handler
    once the use cases exist."""
    db = open_database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        budget=Budget.for_requests(settings.request_deadline),
    )
    # Background work gets connections of its own (opened only when used; on SQLite it shares
    # the writer's turn).
    job_db = open_database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        budget=Budget.for_jobs(settings.job_statement_timeout),
        write_lock=db.write_lock,
    )
    replica = (
        open_database(
            settings.database_replica_url,
            pool_size=settings.db_pool_size,
            budget=Budget.for_requests(settings.request_deadline),
        )
        if settings.database_replica_url
        else None
    )
    requests = _database_ports(db)
    redis = _redis(settings, settings.redis_url) if settings.redis_url else None
    queue: SaqJobQueue | InProcessJobQueue = (
        SaqJobQueue.from_url(
            settings.redis_url,
            name=settings.job_queue_name,
            enqueue_timeout=min(1.0, settings.request_deadline / 4),
        )
        if settings.redis_url
        else InProcessJobQueue()
    )
    cache = _cache(settings, redis)
    catalog_db = replica or db
    catalog_reads = SqlCatalogQueries(catalog_db.reads, catalog_db.dialect)
    # Details (primary-key reads) are cached per process only; see ProcessLocalCache.
    detail_cache = cache.process_local() if isinstance(cache, TieredCache) else cache
    return Adapters(
        clock=SystemClock(),
        requests=requests,
        jobs=_database_ports(job_db),
        replica=replica,
        redis=redis,
        # While Redis is down, in-process state keeps logins and authenticated requests working.
        kv=FailoverKeyValueStore(RedisKeyValueStore(redis, prefix=settings.redis_key_prefix))
        if redis is not None
        else MemoryKeyValueStore(),
        queue=queue,
        cache=cache,
        catalog_queries=CachedCatalogQueries(catalog_reads, cache, detail_cache=detail_cache),
        cart_reads=SqlCartReads(db.reads),
        account_states=SqlAccountStates(db.reads),
        mailer=_mailer(settings),
        hasher=Argon2PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost),
        tokens=JwtAccessTokenIssuer(
            secret=settings.jwt_secret,
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            lifetime_seconds=settings.access_token_ttl,
        ),
        report_storage=FileReportStorage(settings.reports_dir),
        resolver=DnsResolver(),
        webhook_sender=HttpxWebhookSender(),
        invalidation=CacheInvalidation(cache),
        dispatcher=JobDispatcher(queue, requests.outbox, context=_request_context),
    )
