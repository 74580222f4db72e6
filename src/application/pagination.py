"""Keyset pages: the one ``Page`` type every list returns, and its opaque cursors,
``base64url(msgpack([kind, key, id]) + tag)``, signed by the server.

The tag is an HMAC over the payload and the list's *scope* (whose list, which filters), under a
key only the server holds (derived from ``JWT_SECRET`` by the composition root; a random
per-process key until then). So a client cannot mint a cursor, edit one, or carry one from
another sort, list, user or filter set: anything the service did not issue for exactly this
list is a 400. Decoded keys are still bounded (datetimes that convert to UTC inside the
calendar, finite prices with two places, finite ranks), so nothing out of range can reach a
database driver even if the key leaked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

import msgspec

from domain.errors import InvalidInput

T = TypeVar("T")
# Where a page resumes: after the row with this sort key and id (the previous page's last row).
Keyset = tuple[Any, uuid.UUID]


class Page(msgspec.Struct, Generic[T]):
    """A keyset-paginated page; pass ``next_cursor`` back as ``?cursor=`` for the next one."""

    items: list[T]
    next_cursor: str | None


MAX_CURSOR_CHARS = 512
_TAG = 12
_CENT = Decimal("0.01")
_KEY_BOUND = Decimal(10) ** 12
_RANK_BOUND = 1e12
_KEY_TYPES: dict[str, Any] = {
    "newest": datetime,
    "price_asc": Decimal,
    "price_desc": Decimal,
    "rating": Decimal,
    "relevance": float,
    "reviews": datetime,
    "favorites": datetime,
    "orders": datetime,
    "sales": datetime,
    "webhooks": datetime,
}
_encoder = msgspec.msgpack.Encoder()
_decoders = {
    kind: msgspec.msgpack.Decoder(tuple[str, key_type, uuid.UUID])  # type: ignore[valid-type]
    for kind, key_type in _KEY_TYPES.items()
}
_signing_key = secrets.token_bytes(32)


def set_cursor_secret(secret: str | bytes) -> None:
    """Sign cursors with a key derived from ``secret`` (every process of one deployment shares it)."""
    global _signing_key
    raw = secret.encode() if isinstance(secret, str) else secret
    _signing_key = hmac.new(raw, b"marketplace keyset cursor v2", hashlib.sha256).digest()


def _tag(payload: bytes, scope: str) -> bytes:
    mac = hmac.new(_signing_key, payload, hashlib.sha256)
    mac.update(b"\x00" + scope.encode("utf-8", "surrogatepass"))
    return mac.digest()[:_TAG]


def encode_cursor(kind: str, key: datetime | Decimal | float, last_id: uuid.UUID, *, scope: str = "") -> str:
    """A cursor resuming after (key, last_id) in list ``kind``, valid only for the same ``scope``."""
    payload = _encoder.encode((kind, key, last_id))
    return base64.urlsafe_b64encode(payload + _tag(payload, scope)).rstrip(b"=").decode()


def _bounded(key: Any) -> Any:
    """The key, normalised; None when it is outside what the lists can hold."""
    if isinstance(key, float):  # a rank
        return key if math.isfinite(key) and abs(key) < _RANK_BOUND else None
    if isinstance(key, Decimal):  # prices and ratings, stored with two places
        if not key.is_finite():
            return None
        try:
            key = key.quantize(_CENT)
        except InvalidOperation:
            return None
        return key if abs(key) < _KEY_BOUND else None
    if isinstance(key, datetime):
        if key.tzinfo is None:
            return None
        try:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC; 9999-12-31T23:59:59-14:00 after 9999
            return key.astimezone(UTC)
        except (OverflowError, ValueError):
            return None
    return None


def decode_cursor(raw: str, kind: str, *, scope: str = "") -> Keyset:
    """The (sort key, id) a cursor resumes after; 400 unless we issued it for ``kind`` and ``scope``."""
    bad = InvalidInput("cursor is not valid for this list; start again without it.", field="cursor")
    if not raw or len(raw) > MAX_CURSOR_CHARS or not raw.isascii():
        raise bad
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    payload, tag = blob[:-_TAG], blob[-_TAG:]
    if len(blob) <= _TAG or not hmac.compare_digest(_tag(payload, scope), tag):
        raise bad
    try:
        decoded: tuple[str, Any, uuid.UUID] = _decoders[kind].decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
        raise bad from None
    decoded_kind, key, last_id = decoded
    key = _bounded(key)
    if decoded_kind != kind or key is None:
        raise bad
    return key, last_id


PAGE_MIN, PAGE_MAX, PAGE_DEFAULT = 1, 100, 20


def check_limit(limit: int, *, maximum: int = PAGE_MAX) -> int:
    """Page sizes are 1–100 (the contract); some lists allow fewer."""
    if not PAGE_MIN <= limit <= maximum:
        raise InvalidInput(f"limit must be {PAGE_MIN}–{maximum}.", field="limit")
    return limit


def resume_after(cursor: str | None, kind: str, *, scope: str = "") -> Keyset | None:
    """Where the page asked for resumes (None: the first page)."""
    return decode_cursor(cursor, kind, scope=scope) if cursor is not None else None


def page_of(rows: list[T], limit: int, kind: str, position: Callable[[T], Keyset], *, scope: str = "") -> Page[T]:
    """The page of ``rows`` fetched with ``limit + 1``: the extra row only says that another page exists."""
    if len(rows) <= limit:
        return Page(items=rows, next_cursor=None)
    items = rows[:limit]
    key, last_id = position(items[-1])
    return Page(items=items, next_cursor=encode_cursor(kind, key, last_id, scope=scope))
