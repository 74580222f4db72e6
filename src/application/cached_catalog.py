"""Cache-aside for the hot catalog reads, as a decorator around any ``CatalogQueries``.

What is cached and how it goes stale:
- product detail: key ``product:{id}``, deleted after every write that changes what it shows;
- categories, the category tree, first pages of listings (searches included: popular queries
  repeat, and ranking every match is the most expensive read there is) and public profiles: the
  ``listings`` namespace, bumped (O(1)) after writes that change them.
TTLs bound the staleness of a read that raced a write. Deeper pages and everything else go
straight to the database. The cache never raises, so an outage only means misses.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Optional, TypeVar, cast

import msgspec

from application.caching import cached, struct_codec
from application.pagination import Keyset
from application.ports.cache import Cache
from application.ports.catalog import CatalogQueries
from application.views import catalog as views

T = TypeVar("T")
LISTINGS = "listings"
DETAIL_TTL = 120.0
LISTING_TTL = 30.0


def _optional_codec(kind: type[T]) -> tuple[Callable[[T | None], bytes], Callable[[bytes], T | None]]:
    """Like ``struct_codec`` but also caches "not found" (None), so misses for unknown ids are cheap."""
    encoder = msgspec.json.Encoder()
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Optional[kind])  # noqa: UP045

    def decode(raw: bytes) -> T | None:
        return cast("T | None", decoder.decode(raw))

    return encoder.encode, decode


_DETAIL = _optional_codec(views.ProductDetail)
_CATEGORIES = struct_codec(list[views.CategoryView])
_PARENTS = struct_codec(dict[uuid.UUID, uuid.UUID | None])
_PROFILE = _optional_codec(views.PublicProfile)


class _Row(msgspec.Struct, array_like=True):
    """One listing row with its sort key tagged by type (JSON cannot tell them apart)."""

    kind: str
    key: str
    item: views.ProductSummary


_ROWS = struct_codec(list[_Row])


def _tag(key: views.SortKey) -> tuple[str, str]:
    if isinstance(key, datetime):
        return ("t", key.isoformat())
    if isinstance(key, Decimal):
        return ("d", str(key))
    return ("f", repr(float(key)))


def _untag(kind: str, raw: str) -> views.SortKey:
    if kind == "t":
        return datetime.fromisoformat(raw)
    if kind == "d":
        return Decimal(raw)
    return float(raw)


def feed_namespace(user_id: uuid.UUID) -> str:
    """The cache namespace of a user's feed; the user's own writes bump it (``products_changed``)."""
    return f"feed:{user_id}"


def product_key(product_id: uuid.UUID) -> str:
    return f"product:{product_id}"


class CachedCatalogQueries:
    """Implements ``CatalogQueries``; reads through ``cache`` where it pays, delegates the rest.

    Product details may go to a separate ``detail_cache``: a detail is a primary-key read, so a
    cache that costs a network round trip on every miss barely pays for it, and the wiring can
    give details a process-local cache under the same invalidations instead.
    """

    def __init__(self, inner: CatalogQueries, cache: Cache, *, detail_cache: Cache | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.detail_cache = detail_cache or cache

    async def categories(self) -> list[views.CategoryView]:
        return await cached(
            self.cache, "categories", LISTING_TTL, self.inner.categories, *_CATEGORIES, namespace=LISTINGS
        )

    async def category_parents(self) -> dict[uuid.UUID, uuid.UUID | None]:
        return await cached(
            self.cache, "category-parents", LISTING_TTL, self.inner.category_parents, *_PARENTS, namespace=LISTINGS
        )

    async def product(self, product_id: uuid.UUID) -> views.ProductDetail | None:
        async def load() -> views.ProductDetail | None:
            return await self.inner.product(product_id)

        return await cached(self.detail_cache, product_key(product_id), DETAIL_TTL, load, *_DETAIL)

    async def product_summaries(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, views.ProductSummary]:
        return await self.inner.product_summaries(product_ids)

    async def products(
        self, filters: views.ProductFilter, sort: views.ProductSort, after: Keyset | None, limit: int
    ) -> list[tuple[views.SortKey, views.ProductSummary]]:
        if after is not None:
            return await self.inner.products(filters, sort, after, limit)
        fingerprint = hashlib.blake2b(msgspec.json.encode([filters, str(sort), limit]), digest_size=12).hexdigest()

        async def load() -> list[_Row]:
            rows = await self.inner.products(filters, sort, after, limit)
            return [_Row(kind, raw, item) for (kind, raw), item in ((_tag(key), item) for key, item in rows)]

        rows = await cached(self.cache, f"list:{fingerprint}", LISTING_TTL, load, *_ROWS, namespace=LISTINGS)
        return [(_untag(row.kind, row.key), row.item) for row in rows]

    async def reviews(self, product_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.ReviewView]:
        return await self.inner.reviews(product_id, after, limit)

    async def review(self, review_id: uuid.UUID) -> views.ReviewView | None:
        return await self.inner.review(review_id)

    async def favorites(self, user_id: uuid.UUID, after: Keyset | None, limit: int) -> list[views.FavoriteView]:
        return await self.inner.favorites(user_id, after, limit)

    async def favorite(self, user_id: uuid.UUID, product_id: uuid.UUID) -> views.FavoriteView | None:
        return await self.inner.favorite(user_id, product_id)

    async def public_profile(self, user_id: uuid.UUID) -> views.PublicProfile | None:
        async def load() -> views.PublicProfile | None:
            return await self.inner.public_profile(user_id)

        return await cached(self.cache, f"profile:{user_id}", LISTING_TTL, load, *_PROFILE, namespace=LISTINGS)


class CacheInvalidation:
    """What writes call after they commit, so no cached answer outlives the change it missed."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def products_changed(self, product_ids: Iterable[uuid.UUID], *, feed_of: uuid.UUID | None = None) -> None:
        """The products' details and every listing; with ``feed_of``, that user's feed too (the user
        who changed them by a purchase or a review). All in one cache call: one round trip."""
        feeds = [feed_namespace(feed_of)] if feed_of is not None else []
        await self.cache.invalidate(keys={product_key(p) for p in product_ids}, namespaces=[LISTINGS, *feeds])

    async def listings_changed(self) -> None:
        await self.cache.bump(LISTINGS)
