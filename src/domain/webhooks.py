"""Seller webhooks: which events exist, which targets are allowed, and how failed deliveries retry.

Pure rules only; resolving a host name and sending the request are adapters' work.
"""

from __future__ import annotations

import enum
import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from domain.errors import RuleViolation

ORDER_PLACED = "order.placed"
ORDER_CANCELLED = "order.cancelled"
PRODUCT_OUT_OF_STOCK = "product.out_of_stock"
REVIEW_CREATED = "review.created"
EVENT_TYPES = (ORDER_PLACED, ORDER_CANCELLED, PRODUCT_OUT_OF_STOCK, REVIEW_CREATED)

URL_MAX = 2048
MAX_WEBHOOKS_PER_USER = 10
DELIVERIES_SHOWN = 100
# Retries: base, doubling, capped; given up this long after the first attempt.
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(hours=1)
RETRY_WINDOW = timedelta(hours=24)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # not delivered yet; ``next_retry_at`` says when the next attempt is due
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up: the retry window closed


@dataclass(slots=True)
class Webhook:
    id: uuid.UUID
    user_id: uuid.UUID
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: datetime


def validate_events(events: Iterable[str]) -> tuple[str, ...]:
    """A non-empty set of known event types, in the canonical order (duplicates folded)."""
    given = list(events)
    unknown = sorted({event for event in given if event not in EVENT_TYPES})
    if unknown:
        raise RuleViolation(
            f"Unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}.", field="events"
        )
    if not given:
        raise RuleViolation("Name at least one event type.", field="events")
    return tuple(event for event in EVENT_TYPES if event in given)


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host and no credentials (where it points is checked apart)."""
    if len(url) > URL_MAX:
        raise RuleViolation(f"The URL may be at most {URL_MAX} characters.", field="url")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise RuleViolation("The URL may not contain spaces or control characters.", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RuleViolation("This is not a valid URL.", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise RuleViolation("Only http and https URLs are allowed.", field="url")
    if not parts.hostname:
        raise RuleViolation("The URL needs a host.", field="url")
    if parts.username is not None or parts.password is not None:
        raise RuleViolation("The URL may not contain credentials.", field="url")
    if port == 0:
        raise RuleViolation("The URL's port must be 1–65535.", field="url")
    return url


def url_host_port(url: str) -> tuple[str, int]:
    """The host name (IPv6 without brackets) and the port a validated URL connects to."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Special-purpose blocks that not every Python version's ``is_global`` leaves out.
_ALSO_BLOCKED = (ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("192.88.99.0/24"))


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a webhook may connect to this address: a global unicast one.

    Loopback, private, shared (CGNAT), link-local, multicast, reserved, unspecified, documentation
    and benchmarking ranges are refused; IPv6 forms that embed an IPv4 address (mapped, 6to4,
    Teredo, NAT64) are judged by the address they embed.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        if ip.is_site_local:
            return False
    blocked = (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
        or any(ip in network for network in _ALSO_BLOCKED)
    )
    return not blocked


def check_addresses(addresses: Iterable[str], *, allow_private: bool) -> list[str]:
    """The addresses to connect to (in the resolver's order), when every one of them is allowed.

    All of them must pass: a host that resolves to one public and one private address could be
    steered to the private one by the resolver's order.
    """
    resolved = list(dict.fromkeys(addresses))
    if not resolved:
        raise RuleViolation("The URL's host does not resolve to any address.", field="url")
    if not allow_private:
        for address in resolved:
            if not is_public_address(address):
                raise RuleViolation(
                    "The URL points at a loopback, private, link-local, multicast or reserved address.", field="url"
                )
    return resolved


def retry_delay(failures: int, *, base: timedelta = RETRY_BASE, cap: timedelta = RETRY_CAP) -> timedelta:
    """Wait after the ``failures``-th failed attempt (1-based): base, doubling, at most ``cap``."""
    if failures < 1:
        return timedelta(0)
    # Beyond 2**20 the doubling is past any sensible cap; bounding it keeps the arithmetic small.
    delay: timedelta = base * (2 ** min(failures - 1, 20))
    return min(delay, cap)


def next_attempt_at(
    first_attempt_at: datetime,
    now: datetime,
    failures: int,
    *,
    base: timedelta = RETRY_BASE,
    cap: timedelta = RETRY_CAP,
    window: timedelta = RETRY_WINDOW,
) -> datetime | None:
    """When to try again after ``failures`` failed attempts, or None once past the retry window."""
    due = now + retry_delay(failures, base=base, cap=cap)
    return due if due <= first_attempt_at + window else None
