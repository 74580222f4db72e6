"""Settings, read once from the environment into a typed object (never a global).

Every setting has a safe default so ``make run`` works on a fresh machine; the README's table
lists them all.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEV_ENVIRONMENTS = {"development", "dev", "test"}
MIN_SECRET_BYTES = 32


class SettingsError(RuntimeError):
    """The configuration is unsafe or unusable; the service refuses to start."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = float(env.get(name) or default)
    if value <= 0:
        raise SettingsError(f"{name} must be a positive number of seconds.")
    return value


@dataclass(frozen=True)
class Settings:
    environment: str = "production"
    database_url: str = "sqlite+aiosqlite:///var/marketplace.db"
    database_replica_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    var_dir: Path = Path("var")
    jwt_secret: str = ""
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "marketplace"
    jwt_audience: str = "marketplace-api"
    access_token_ttl: int = 900
    auth_rate_limit_per_minute: int = 60
    login_failure_limit: int = 10
    guest_cart_rate_limit_per_minute: int = 60
    cors_allow_origins: list[str] = field(default_factory=list)
    allowed_hosts: list[str] = field(default_factory=lambda: ["*"])
    public_base_url: str = "http://127.0.0.1:8000"
    mail_from: str = "Marketplace <no-reply@marketplace.local>"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    seed_demo_data: bool = False
    db_pool_size: int = 10
    # A request's whole budget: past it the answer is 503 with Retry-After (its statements, lock
    # waits and pool waits give up a little earlier, on the database side).
    request_deadline: float = 5.0
    # Background work (jobs, reports, the model refresh) runs on connections of its own with this
    # limit per statement and lock wait.
    job_statement_timeout: float = 300.0
    # With Redis (a worker deployed), /ready is 503 when no worker reported for this long; 0: unchecked.
    worker_heartbeat_max_age: float = 60.0
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    log_level: str = "INFO"
    log_json: bool = True
    redis_key_prefix: str = "mkt:"
    # Seconds a cached value may live in a process's own first-level cache (0 turns it off).
    cache_local_ttl: float = 10.0
    # A Redis cache call slower than this is a miss for its caller (the database answers instead).
    cache_timeout: float = 0.05
    # Move everything loaded at start-up out of the garbage collector's way (gc.freeze): full
    # collections stop pausing requests (on by default since the feed and write targets are p99s;
    # `make bench` runs with it measured p99s of 60-65 ms for feed and cart where they had been
    # 160-180 ms, though this shared machine's noise is of the same order).
    gc_freeze: bool = True
    job_queue_name: str = "marketplace"
    worker_concurrency: int = 10
    # None: var_dir / "reports"
    reports_dir_override: Path | None = None
    # Development and tests only: webhooks may target loopback and private addresses.
    webhook_allow_private: bool = False
    # The first retry of a failed webhook delivery comes this many seconds later, then doubling.
    webhook_retry_base_seconds: float = 5.0

    @property
    def is_dev(self) -> bool:
        return self.environment in DEV_ENVIRONMENTS

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def outbox_dir(self) -> Path:
        return self.var_dir / "outbox"

    @property
    def reports_dir(self) -> Path:
        return self.reports_dir_override or self.var_dir / "reports"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        environment = e.get("APP_ENV", "production").strip().lower()
        var_dir = Path(e.get("VAR_DIR", "var"))
        settings = cls(
            environment=environment,
            database_url=e.get("DATABASE_URL") or f"sqlite+aiosqlite:///{var_dir}/marketplace.db",
            database_replica_url=e.get("DATABASE_REPLICA_URL") or None,
            redis_url=e.get("REDIS_URL") or None,
            host=e.get("HOST", "127.0.0.1"),
            port=int(e.get("PORT", "8000")),
            workers=int(e.get("WORKERS", "1")),
            var_dir=var_dir,
            jwt_secret=e.get("JWT_SECRET", ""),
            jwt_algorithm=e.get("JWT_ALGORITHM", "HS256"),
            jwt_issuer=e.get("JWT_ISSUER", "marketplace"),
            jwt_audience=e.get("JWT_AUDIENCE", "marketplace-api"),
            access_token_ttl=int(e.get("ACCESS_TOKEN_TTL_SECONDS", "900")),
            auth_rate_limit_per_minute=int(e.get("AUTH_RATE_LIMIT_PER_MINUTE", "60")),
            login_failure_limit=int(e.get("LOGIN_FAILURE_LIMIT", "10")),
            guest_cart_rate_limit_per_minute=int(e.get("GUEST_CART_RATE_LIMIT_PER_MINUTE", "60")),
            cors_allow_origins=_list(e.get("CORS_ALLOW_ORIGINS")),
            allowed_hosts=_list(e.get("ALLOWED_HOSTS")) or ["*"],
            public_base_url=e.get("PUBLIC_BASE_URL", "").rstrip("/")
            or f"http://{e.get('HOST', '127.0.0.1')}:{e.get('PORT', '8000')}",
            mail_from=e.get("MAIL_FROM", "Marketplace <no-reply@marketplace.local>"),
            smtp_host=e.get("SMTP_HOST") or None,
            smtp_port=int(e.get("SMTP_PORT", "25")),
            smtp_username=e.get("SMTP_USERNAME") or None,
            smtp_password=e.get("SMTP_PASSWORD") or None,
            smtp_starttls=_bool(e.get("SMTP_STARTTLS"), False),
            seed_demo_data=_bool(e.get("SEED_DEMO_DATA"), False),
            db_pool_size=int(e.get("DB_POOL_SIZE", "10")),
            request_deadline=_positive(e, "REQUEST_DEADLINE_SECONDS", 5.0),
            job_statement_timeout=_positive(e, "JOB_STATEMENT_TIMEOUT_SECONDS", 300.0),
            worker_heartbeat_max_age=float(e.get("WORKER_HEARTBEAT_MAX_AGE_SECONDS", "60")),
            argon2_time_cost=int(e.get("ARGON2_TIME_COST", "3")),
            argon2_memory_cost=int(e.get("ARGON2_MEMORY_COST_KIB", "65536")),
            log_level=e.get("LOG_LEVEL", "INFO").upper(),
            log_json=_bool(e.get("LOG_JSON"), True),
            redis_key_prefix=e.get("REDIS_KEY_PREFIX", "mkt:"),
            cache_local_ttl=float(e.get("CACHE_LOCAL_TTL", "10")),
            cache_timeout=_positive(e, "CACHE_TIMEOUT_SECONDS", 0.05),
            gc_freeze=_bool(e.get("GC_FREEZE"), True),
            job_queue_name=e.get("JOB_QUEUE_NAME", "marketplace"),
            worker_concurrency=int(e.get("WORKER_CONCURRENCY", "10")),
            reports_dir_override=Path(e["REPORTS_DIR"]) if e.get("REPORTS_DIR") else None,
            webhook_allow_private=_bool(e.get("WEBHOOK_ALLOW_PRIVATE"), False),
            webhook_retry_base_seconds=float(e.get("WEBHOOK_RETRY_BASE_SECONDS", "5")),
        )
        return settings.checked()

    def checked(self) -> Settings:
        """Refuse unsafe settings outside development; in development, fill in a local secret."""
        if self.jwt_algorithm not in {"HS256", "HS384", "HS512"}:
            raise SettingsError("JWT_ALGORITHM must be one of HS256, HS384, HS512.")
        if not 0 < self.webhook_retry_base_seconds <= 3600:
            raise SettingsError("WEBHOOK_RETRY_BASE_SECONDS must be more than 0 and at most 3600.")
        if len(self.jwt_secret.encode()) >= MIN_SECRET_BYTES:
            return self
        if not self.is_dev:
            raise SettingsError(
                f"JWT_SECRET must be set to at least {MIN_SECRET_BYTES} bytes outside development "
                "(APP_ENV=development allows a generated local secret)."
            )
        return _replace(self, jwt_secret=_local_dev_secret(self.var_dir))


def _replace(settings: Settings, **changes: object) -> Settings:
    from dataclasses import replace

    return replace(settings, **changes)  # type: ignore[arg-type]


def _local_dev_secret(var_dir: Path) -> str:
    """A random secret kept in var/ so development tokens survive restarts and span workers."""
    path = var_dir / "dev-jwt-secret"
    try:
        existing = path.read_text().strip()
        if len(existing) >= MIN_SECRET_BYTES:
            return existing
    except OSError:
        pass
    secret = secrets.token_urlsafe(48)
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secret)
        path.chmod(0o600)
    except OSError:
        pass
    return secret
