"""The one cursor codec: signed, bound to its list and scope, keys bounded."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application import pagination
from application.pagination import decode_cursor, encode_cursor
from domain.errors import InvalidInput

dates = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
prices = st.decimals(min_value=Decimal("-999999999.99"), max_value=Decimal("999999999.99"), places=2)


@given(dates, st.uuids(), st.text(max_size=30))
def test_a_cursor_comes_back_for_its_own_list_and_scope(key: datetime, last_id: uuid.UUID, scope: str) -> None:
    cursor = encode_cursor("orders", key, last_id, scope=scope)
    assert decode_cursor(cursor, "orders", scope=scope) == (key, last_id)
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, "orders", scope=scope + "x")
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, "sales", scope=scope)


@given(prices, st.uuids(), st.data())
def test_any_edited_byte_is_refused(key: Decimal, last_id: uuid.UUID, data: st.DataObject) -> None:
    cursor = encode_cursor("price_asc", key, last_id)
    assert decode_cursor(cursor, "price_asc") == (key, last_id)
    blob = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    edited = base64.urlsafe_b64encode(bytes(blob)).rstrip(b"=").decode()
    with pytest.raises(InvalidInput):
        decode_cursor(edited, "price_asc")


def test_another_server_key_refuses_the_cursor() -> None:
    cursor = encode_cursor("newest", datetime.now(UTC), uuid.uuid4())
    saved = pagination._signing_key
    try:
        pagination.set_cursor_secret("another deployment's secret" * 2)
        with pytest.raises(InvalidInput):
            decode_cursor(cursor, "newest")
    finally:
        pagination._signing_key = saved


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("newest", "0001-01-01T00:00:00+14:00"),
        ("orders", "9999-12-31T23:59:59-14:00"),
        ("sales", "2024-01-01T00:00:00"),  # no time zone
        ("relevance", float("inf")),
        ("relevance", float("nan")),
        ("relevance", 1e300),
        ("rating", Decimal("1E+100000")),
        ("price_asc", Decimal("sNaN")),
    ],
)
def test_signed_keys_out_of_range_are_refused(kind: str, key: object) -> None:
    cursor = encode_cursor(kind, key, uuid.uuid4())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        decode_cursor(cursor, kind)


def test_a_datetime_key_comes_back_in_utc() -> None:
    cursor = encode_cursor("favorites", "2024-06-01T12:00:00+14:00", uuid.UUID(int=1))  # type: ignore[arg-type]
    assert decode_cursor(cursor, "favorites") == (datetime(2024, 5, 31, 22, tzinfo=UTC), uuid.UUID(int=1))
