"""Security headers on every answer, and no-store on auth and account answers (applied by ``edge``)."""

from __future__ import annotations

from typing import Any

COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_NO_STORE_PREFIXES = ("/api/auth", "/api/users/me", "/api/cart", "/api/orders", "/api/reports", "/api/sales")
_NO_STORE = (b"cache-control", b"no-store")


def is_private(path: str) -> bool:
    """Answers on these paths are about one account: never stored by browsers or proxies."""
    return path.startswith(_NO_STORE_PREFIXES)


def with_security_headers(headers: list[Any], *, private: bool) -> list[Any]:
    """``headers`` plus the security headers a handler did not set itself."""
    present = {name.lower() for name, _ in headers}
    headers.extend(h for h in COMMON if h[0] not in present)
    if private and b"cache-control" not in present:
        headers.append(_NO_STORE)
    return headers
