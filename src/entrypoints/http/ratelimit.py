"""Per-client-address rate limits on the auth routes and on new guest carts (Litestar's
RateLimitMiddleware).

The counter lives in a Litestar store: Redis when REDIS_URL is set (shared by every API
process), in-process otherwise. If Redis fails, the limiter falls back to an in-process store
rather than failing the login.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from adapters.circuit import CircuitBreaker

log = logging.getLogger(__name__)
AUTH_STORE = "auth_rate_limit"
GUEST_CART_STORE = "guest_cart_rate_limit"
THROTTLED_PATHS = frozenset(
    {
        "/api/auth/login",
        "/api/auth/token",
        "/api/auth/register",
        "/api/auth/refresh",
        "/api/auth/password-reset",
        "/api/auth/password-reset/confirm",
    }
)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The peer address as the server saw it; X-Forwarded-For is spoofable and ignored.

    Behind a trusted proxy, run granian/uvicorn with its proxy-headers support so the peer
    address is the client's.
    """
    return request.client.host if request.client else "unknown"


async def _is_throttled(request: Request[Any, Any, Any]) -> bool:
    """Async on purpose: Litestar would run a sync check in a thread pool on every request."""
    return request.method == "POST" and request.scope["path"] in THROTTLED_PATHS


def guest_cart_rate_limit(per_minute: int) -> RateLimitConfig:
    """New guest carts per client address per minute; its own counter, apart from the auth one."""
    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        store=GUEST_CART_STORE,
        identifier_for_request=client_address,
    )


def auth_rate_limit(per_minute: int) -> RateLimitConfig:
    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        store=AUTH_STORE,
        identifier_for_request=client_address,
        check_throttle_handler=_is_throttled,
    )


class FallbackStore(Store):
    """A store that uses ``primary`` and switches to memory while it is failing.

    After a failure the primary is left alone for a backoff (1 s, doubling to 5 s), so a stalled
    Redis costs one request its socket timeout, not every request.
    """

    def __init__(
        self, primary: Store, *, min_backoff: float = 1.0, max_backoff: float = 5.0, clock: Any = time.monotonic
    ) -> None:
        self.primary = primary
        self.fallback = MemoryStore()
        self.breaker = CircuitBreaker(min_backoff=min_backoff, max_backoff=max_backoff, clock=clock)

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if not self.breaker.allows_call():
            return await getattr(self.fallback, name)(*args, **kwargs)
        try:
            result = await getattr(self.primary, name)(*args, **kwargs)
        except Exception:
            if self.breaker.failed():
                log.warning("rate-limit store unavailable; using in-process counters until it returns")
            return await getattr(self.fallback, name)(*args, **kwargs)
        self.breaker.succeeded()
        return result

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        await self._call("set", key, value, expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        value: bytes | None = await self._call("get", key, renew_for)
        return value

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def delete_all(self) -> None:
        await self._call("delete_all")

    async def exists(self, key: str) -> bool:
        return bool(await self._call("exists", key))

    async def expires_in(self, key: str) -> int | None:
        value: int | None = await self._call("expires_in", key)
        return value


def build_store(redis_client: Any | None, namespace: str) -> Store:
    if redis_client is None:
        return MemoryStore()
    from litestar.stores.redis import RedisStore

    return FallbackStore(RedisStore(redis_client, namespace=namespace + "ratelimit"))
