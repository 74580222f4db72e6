"""The composition root: the one place that reads settings and picks an adapter for each port.

Swapping Postgres for SQLite or Redis for the in-process versions is a change here and nowhere
else; use cases never learn which adapter they got.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.clock import SystemClock
from adapters.jobs.inprocess import InProcessJobQueue
from adapters.kv.memory import MemoryKeyValueStore
from adapters.security.argon2_hasher import Argon2PasswordHasher
from adapters.security.jwt_tokens import JwtAccessTokenIssuer
from adapters.sql.database import Database, open_database
from adapters.sql.outbox import SqlOutboxStore
from adapters.sql.uow import SqlUnitOfWorkFactory
from application.jobs import JobDispatcher
from application.ports.jobs import JobQueue
from application.ports.kv import KeyValueStore
from application.use_cases import auth, users
from entrypoints.settings import Settings

log = logging.getLogger(__name__)


class Container:
    """Adapters and use cases for one app (or worker) instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = SystemClock()
        self.db: Database = open_database(settings.database_url, pool_size=settings.db_pool_size)
        self.uow = SqlUnitOfWorkFactory(self.db)
        self.redis: Any = None
        self.kv: KeyValueStore
        self.queue: JobQueue
        if settings.redis_url:
            from redis.asyncio import Redis

            from adapters.kv.redis import RedisKeyValueStore

            self.redis = Redis.from_url(
                settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=10
            )
            self.kv = RedisKeyValueStore(self.redis, prefix=settings.redis_key_prefix)
        else:
            self.kv = MemoryKeyValueStore()
        self.queue = InProcessJobQueue(self._run_job_inline)
        self.hasher = Argon2PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost)
        self.tokens = JwtAccessTokenIssuer(
            secret=settings.jwt_secret,
            algorithm=settings.jwt_algorithm,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            lifetime_seconds=settings.access_token_ttl,
        )
        self.dispatcher = JobDispatcher(self.queue, SqlOutboxStore(self.db))
        deps = auth.AuthDeps(
            uow=self.uow,
            hasher=self.hasher,
            tokens=self.tokens,
            kv=self.kv,
            clock=self.clock,
            jobs=self.dispatcher,
        )
        self.auth_deps = deps
        self.use_cases: dict[str, Any] = {
            "register_user": auth.Register(deps),
            "login_user": auth.Login(deps, failure_limit=settings.login_failure_limit),
            "refresh_session": auth.Refresh(deps),
            "logout_user": auth.Logout(deps),
            "verify_email": auth.VerifyEmail(deps),
            "resend_verification": auth.ResendVerification(deps),
            "request_password_reset": auth.RequestPasswordReset(deps),
            "confirm_password_reset": auth.ConfirmPasswordReset(deps),
            "check_access_token": auth.CheckAccessToken(deps),
            "get_me": users.GetMe(self.uow),
            "update_me": users.UpdateMe(deps),
            "delete_me": users.DeleteMe(deps),
        }

    async def _run_job_inline(self, kind: str, payload: dict[str, Any]) -> None:
        """Embedded default: jobs run in this process (the worker's handlers, same code)."""
        from entrypoints.jobs import run_job

        await run_job(self, kind, payload)

    async def readiness(self) -> dict[str, bool]:
        from sqlalchemy import text

        status: dict[str, bool] = {}
        try:
            async with self.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            status["database"] = True
        except Exception:
            status["database"] = False
        if self.redis is not None:
            try:
                status["cache"] = bool(await self.redis.ping())
            except Exception:
                status["cache"] = False
        else:
            status["cache"] = True
        try:
            status["queue"] = await self.queue.ping()
        except Exception:
            status["queue"] = False
        return status

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        if isinstance(self.queue, InProcessJobQueue):
            await self.queue.drain(timeout=5)
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()
