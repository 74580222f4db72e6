"""Opaque keyset cursors: ``base64url(msgpack([kind, key, id]) + checksum)``.

A cursor names the list (or sort order) it belongs to, so a cursor from another sort or list is
refused (400) instead of silently starting somewhere odd. The checksum catches truncated or
edited cursors; it is not a secret, because a forged but well-formed cursor can only point at
another position in the same public ordering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from domain.errors import InvalidInput

MAX_CURSOR_CHARS = 512
_DIGEST = 6
_CENT = Decimal("0.01")
_KEY_BOUND = Decimal(10) ** 12
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


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST, person=b"mkt-cursor").digest()


def encode_cursor(kind: str, key: datetime | Decimal | float, last_id: uuid.UUID) -> str:
    payload = _encoder.encode((kind, key, last_id))
    return base64.urlsafe_b64encode(payload + _checksum(payload)).rstrip(b"=").decode()


def decode_cursor(raw: str, kind: str) -> tuple[Any, uuid.UUID]:
    """The (sort key, id) a cursor resumes after; 400 when it is not one of ours for ``kind``."""
    bad = InvalidInput("cursor is not valid for this list; start again without it.", field="cursor")
    if not raw or len(raw) > MAX_CURSOR_CHARS:
        raise bad
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    payload, digest = blob[:-_DIGEST], blob[-_DIGEST:]
    if len(blob) <= _DIGEST or _checksum(payload) != digest:
        raise bad
    try:
        decoded: tuple[str, Any, uuid.UUID] = _decoders[kind].decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
        raise bad from None
    decoded_kind, key, last_id = decoded
    if decoded_kind != kind:
        raise bad
    if isinstance(key, float) and key != key:  # NaN never orders
        raise bad
    if isinstance(key, Decimal):
        if not key.is_finite():
            raise bad
        # Decimal keys are prices and ratings, stored with two places: a forged key with a huge
        # exponent would otherwise reach the database driver (which cannot encode some of them).
        try:
            key = key.quantize(_CENT)
        except InvalidOperation:
            raise bad from None
        if abs(key) >= _KEY_BOUND:
            raise bad
    if isinstance(key, datetime) and key.tzinfo is None:
        raise bad
    return key, last_id


PAGE_MIN, PAGE_MAX, PAGE_DEFAULT = 1, 100, 20


def check_limit(limit: int, *, maximum: int = PAGE_MAX) -> int:
    """Page sizes are 1–100 (the contract); some lists allow fewer."""
    if not PAGE_MIN <= limit <= maximum:
        raise InvalidInput(f"limit must be {PAGE_MIN}–{maximum}.", field="limit")
    return limit
