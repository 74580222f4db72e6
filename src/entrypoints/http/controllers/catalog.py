"""Catalog routes: categories (admin writes), products (owner writes), listing and search, reviews."""

from __future__ import annotations

import hashlib
import uuid
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, Parameter
from litestar.status_codes import HTTP_304_NOT_MODIFIED

from application.pagination import Page
from application.views.catalog import ProductDetail, ProductSort
from domain.ids import parse_id
from entrypoints.http.catalog_schemas import (
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    ProductIn,
    ProductOut,
    ProductPatch,
    ProductSummaryOut,
    ReviewIn,
    ReviewOut,
    ReviewPatch,
    out,
)
from entrypoints.http.dependencies import Caller, Catalog
from entrypoints.http.security import PUBLIC as PUBLIC  # also imported from here by the recommendation routes

_encode = msgspec.json.Encoder().encode
Limit = Annotated[int, Parameter(ge=1, le=100, description="Page size, 1–100.")]
Cursor = Annotated[
    str | None,
    Parameter(max_length=512, required=False, description="`next_cursor` of the previous page (opaque)."),
]
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", required=False, max_length=2048)]


def product_uuid(raw: str) -> uuid.UUID:
    return parse_id(raw, field="product_id")


def entity_tag(body: bytes) -> str:
    """A strong ETag: a hash of the exact representation sent."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(header: str | None, tag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


class CategoriesController(Controller):
    path = "/api/categories"
    tags = ["catalog"]

    @get("/", operation_id="listCategories", summary="All categories (a tree through parent_id)", **PUBLIC)
    async def list_categories(self, catalog: Catalog) -> list[CategoryOut]:
        """Every category with `product_count` = live products in the category **and all its sub-categories**. Not
        paginated: categories are few.
        """
        return out(await catalog.list_categories.execute(), list[CategoryOut])

    @post("/", operation_id="createCategory", summary="Create a category (admin)")
    async def create_category(self, request: Caller, data: JSONBody[CategoryIn], catalog: Catalog) -> CategoryOut:
        """The slug comes from the name and is made unique with -2, -3, …; an unknown `parent_id` → 422.
        Non-admins → 403.
        """
        view = await catalog.create_category.execute(request.user, name=data.name, parent_id=data.parent_id)
        return out(view, CategoryOut)

    @patch("/{category_id:str}", operation_id="updateCategory", summary="Rename or move a category (admin)")
    async def update_category(
        self, request: Caller, category_id: FromPath[str], data: JSONBody[CategoryPatch], catalog: Catalog
    ) -> CategoryOut:
        """A new name gets a new slug. `parent_id: null` makes it top-level; moving a category below itself or its
        descendants → 422.
        """
        view = await catalog.update_category.execute(
            request.user, parse_id(category_id, field="category_id"), name=data.name, parent_id=data.parent_id
        )
        return out(view, CategoryOut)

    @delete("/{category_id:str}", operation_id="deleteCategory", summary="Delete a category (admin)")
    async def delete_category(self, request: Caller, category_id: FromPath[str], catalog: Catalog) -> None:
        """409 while products (withdrawn ones included: past orders point at them) or sub-categories are in it."""
        await catalog.delete_category.execute(request.user, parse_id(category_id, field="category_id"))


def _product_response(
    view: ProductDetail, *, status_code: int = 200, if_none_match: str | None = None
) -> Response[Any]:
    # The view has ProductOut's exact shape (a test holds them equal), so it is encoded as it is.
    body = _encode(view)
    tag = entity_tag(body)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if if_none_match is not None and etag_matches(if_none_match, tag):
        return Response(content=b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, status_code=status_code, media_type="application/json", headers=headers)


class ProductsController(Controller):
    path = "/api/products"
    tags = ["catalog"]

    @get("/", operation_id="listProducts", summary="Browse and search products", **PUBLIC)
    async def list_products(
        self,
        catalog: Catalog,
        q: Annotated[str | None, Parameter(max_length=200, required=False, description="Search words.")] = None,
        category_id: FromQuery[uuid.UUID | None] = None,
        seller_id: FromQuery[uuid.UUID | None] = None,
        min_price: FromQuery[Decimal | None] = None,
        max_price: FromQuery[Decimal | None] = None,
        in_stock: FromQuery[bool | None] = None,
        sort: FromQuery[ProductSort | None] = None,
        cursor: Cursor = None,
        limit: Limit = 20,
    ) -> Response[Page[ProductSummaryOut]]:
        """Live products, keyset-paginated. `q` is full-text search over name and description (Postgres:
        `websearch_to_tsquery` syntax — quoted phrases, `or`, `-word`; SQLite: every word must match).
        `category_id` includes all sub-categories. `sort`: `newest` (default without `q`), `price_asc`,
        `price_desc`, `rating` (highest first, unrated last), or `relevance` (the default when `q` is given; needs
        `q`). On SQLite, relevance uses bm25, which depends on the whole catalog, so a relevance walk is
        best-effort while products change; every other sort is exact. A cursor only works with the sort it came from
        (else 400). Unknown sort or filter values, `min_price` > `max_price` and `limit` outside 1–100 → 400.
        """
        page = await catalog.list_products.execute(
            q=q,
            category_id=category_id,
            seller_id=seller_id,
            min_price=min_price,
            max_price=max_price,
            in_stock=in_stock,
            sort=sort,
            cursor=cursor,
            limit=limit,
        )
        # Page[ProductSummary] has the exact shape of Page[ProductSummaryOut] (a test holds them equal).
        response: Response[Any] = Response(content=_encode(page), media_type="application/json")
        return response

    @post("/", operation_id="createProduct", summary="List a product for sale")
    async def create_product(
        self, request: Caller, data: JSONBody[ProductIn], catalog: Catalog
    ) -> Response[ProductOut]:
        """name 1–200 characters; price > 0 and ≤ 1000000 with at most two decimals (string or number); image_url
        http(s) or null; stock ≥ 0 (default 1); category_id optional (omitted or null: an uncategorised product,
        shown with `category: null`); an unknown category → 422.
        """
        view = await catalog.create_product.execute(
            request.user,
            name=data.name,
            description=data.description,
            price=data.price,
            image_url=data.image_url,
            category_id=data.category_id,
            stock=data.stock,
        )
        return _product_response(view, status_code=201)

    @get(
        "/{product_id:str}",
        operation_id="getProduct",
        summary="A product",
        responses={HTTP_304_NOT_MODIFIED: ResponseSpec(data_container=None, description="Not modified.")},
        **PUBLIC,
    )
    async def get_product(
        self, product_id: FromPath[str], catalog: Catalog, if_none_match: IfNoneMatch = None
    ) -> Response[ProductOut]:
        """Sent with a strong `ETag`; `If-None-Match` with the current tag → 304 without a body. Withdrawn or unknown
        products → 404.
        """
        view = await catalog.get_product.execute(product_uuid(product_id))
        return _product_response(view, if_none_match=if_none_match)

    @patch("/{product_id:str}", operation_id="updateProduct", summary="Change a product (seller or admin)")
    async def update_product(
        self, request: Caller, product_id: FromPath[str], data: JSONBody[ProductPatch], catalog: Catalog
    ) -> Response[ProductOut]:
        """Partial update: only the given fields change (`category_id: null` makes the product uncategorised).
        Others → 403, nothing changes.
        """
        view = await catalog.update_product.execute(
            request.user,
            product_uuid(product_id),
            name=data.name,
            description=data.description,
            price=data.price,
            image_url=data.image_url,
            stock=data.stock,
            category_id=data.category_id,
        )
        return _product_response(view)

    @delete("/{product_id:str}", operation_id="withdrawProduct", summary="Withdraw a product (seller or admin)")
    async def withdraw_product(self, request: Caller, product_id: FromPath[str], catalog: Catalog) -> None:
        """Afterwards it is 404, gone from lists, favorites lists and carts; past orders keep their lines."""
        await catalog.withdraw_product.execute(request.user, product_uuid(product_id))

    @get("/{product_id:str}/reviews", operation_id="listReviews", summary="A product's reviews, newest first", **PUBLIC)
    async def list_reviews(
        self, product_id: FromPath[str], catalog: Catalog, cursor: Cursor = None, limit: Limit = 20
    ) -> Page[ReviewOut]:
        page = await catalog.list_reviews.execute(product_uuid(product_id), cursor=cursor, limit=limit)
        return out(page, Page[ReviewOut])

    @post("/{product_id:str}/reviews", operation_id="createReview", summary="Review a product")
    async def create_review(
        self, request: Caller, product_id: FromPath[str], data: JSONBody[ReviewIn], catalog: Catalog
    ) -> ReviewOut:
        """rating 1–5. One review per user and product (409); not on your own product (403). `verified_purchase` is
        true when you have ordered it. The product's rating_avg and review_count change at once.
        """
        view = await catalog.create_review.execute(
            request.user, product_uuid(product_id), rating=data.rating, comment=data.comment
        )
        return out(view, ReviewOut)


class ReviewsController(Controller):
    path = "/api/reviews"
    tags = ["catalog"]

    @patch("/{review_id:str}", operation_id="updateReview", summary="Edit your review")
    async def update_review(
        self, request: Caller, review_id: FromPath[str], data: JSONBody[ReviewPatch], catalog: Catalog
    ) -> ReviewOut:
        """The author only (others → 403). A concurrent edit of the same review → 409."""
        view = await catalog.update_review.execute(
            request.user, parse_id(review_id, field="review_id"), rating=data.rating, comment=data.comment
        )
        return out(view, ReviewOut)

    @delete("/{review_id:str}", operation_id="deleteReview", summary="Delete a review (author or admin)")
    async def delete_review(self, request: Caller, review_id: FromPath[str], catalog: Catalog) -> None:
        await catalog.delete_review.execute(request.user, parse_id(review_id, field="review_id"))
