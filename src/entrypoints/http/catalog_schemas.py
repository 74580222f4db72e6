"""Request and response bodies of the catalog, favorites and public-profile routes.

Unknown request fields are ignored (no mass assignment: ``seller_id``, ``rating_avg``, ... do
nothing). Length limits here document the contract; the domain checks every rule again.
``ProductSummaryOut`` is the product as every list shows it (carts, feeds and favorites can
reuse it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import msgspec
from litestar.openapi.spec.enums import OpenAPIType
from msgspec import UNSET, Meta, Struct, UnsetType

T = TypeVar("T")

_PRICE_DOC = (
    'A decimal with at most two places, > 0 and ≤ 1000000; a JSON string ("19.99") or a JSON number (19.99), '
    "both read exactly (no float rounding)."
)
Price = Annotated[
    Decimal,
    Meta(
        description=_PRICE_DOC,
        examples=["19.99"],
        extra_json_schema={
            "description": _PRICE_DOC,
            "extra": {"type": [OpenAPIType.STRING, OpenAPIType.NUMBER], "one_of": None},
        },
    ),
]
ProductName = Annotated[str, Meta(min_length=1, max_length=200, examples=["Wireless Headphones"])]
Description = Annotated[str, Meta(max_length=10_000)]
ImageUrl = Annotated[str, Meta(max_length=2048, description="An http(s) URL.", examples=["https://example.com/a.jpg"])]
Stock = Annotated[int, Meta(ge=0, le=1_000_000_000)]
CategoryName = Annotated[str, Meta(min_length=1, max_length=100, examples=["Phones"])]
Rating = Annotated[int, Meta(ge=1, le=5)]
Comment = Annotated[str, Meta(max_length=5_000)]
RatingAvg = Annotated[
    float | None, Meta(description="Mean review rating rounded to two decimals; null without reviews.")
]


class CategoryIn(Struct):
    name: CategoryName
    parent_id: uuid.UUID | None = None


class CategoryPatch(Struct, omit_defaults=True):
    name: CategoryName | UnsetType = UNSET
    parent_id: Annotated[
        uuid.UUID | UnsetType | None, Meta(description="Another category, or null to make it top-level.")
    ] = UNSET


class CategoryOut(Struct):
    id: uuid.UUID
    name: str
    slug: str
    parent_id: uuid.UUID | None
    product_count: Annotated[
        int, Meta(description="Live (not withdrawn) products in this category and all its sub-categories.")
    ]


class ProductIn(Struct):
    name: ProductName
    price: Price
    category_id: Annotated[
        uuid.UUID | None, Meta(description="Optional: omitted or null lists the product uncategorised.")
    ] = None
    description: Description = ""
    image_url: ImageUrl | None = None
    stock: Stock = 1


class ProductPatch(Struct, omit_defaults=True):
    name: ProductName | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    price: Price | UnsetType = UNSET
    image_url: ImageUrl | UnsetType | None = UNSET
    stock: Stock | UnsetType = UNSET
    category_id: Annotated[
        uuid.UUID | UnsetType | None, Meta(description="Another category, or null to make it uncategorised.")
    ] = UNSET


class UserRefOut(Struct):
    id: uuid.UUID
    username: str


class CategoryRefOut(Struct):
    id: uuid.UUID
    name: str
    slug: str


class ProductSummaryOut(Struct):
    id: uuid.UUID
    seller: UserRefOut
    name: str
    price: Decimal
    image_url: str | None
    category: CategoryRefOut | None
    stock: int
    rating_avg: RatingAvg
    review_count: int
    favorite_count: int
    created_at: datetime
    updated_at: datetime


class ProductOut(ProductSummaryOut):
    description: str


class ReviewIn(Struct):
    rating: Rating
    comment: Comment = ""


class ReviewPatch(Struct, omit_defaults=True):
    rating: Rating | UnsetType = UNSET
    comment: Comment | UnsetType = UNSET


class ReviewOut(Struct):
    id: uuid.UUID
    product_id: uuid.UUID
    author: UserRefOut
    rating: int
    comment: str
    verified_purchase: Annotated[bool, Meta(description="The author has ordered this product.")]
    created_at: datetime
    updated_at: datetime


class FavoriteOut(Struct):
    product: ProductSummaryOut
    created_at: Annotated[datetime, Meta(description="When it was favorited.")]


def out(value: Any, kind: type[T]) -> T:
    """A read model as its response body (nested views included)."""
    return msgspec.convert(value, kind, from_attributes=True)
