"""Recommendation routes: the caller's feed and a product's similar products."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from msgspec import Meta, Struct

from application.identity import Principal
from application.use_cases.recommendations import LIMIT_DEFAULT, LIMIT_MAX, LIMIT_MIN, GetFeed, GetSimilarProducts
from entrypoints.bundles import RecommendationUseCases
from entrypoints.http.catalog_schemas import ProductSummaryOut, out
from entrypoints.http.controllers.catalog import PUBLIC, product_uuid

FeedLimit = Annotated[
    int,
    Parameter(
        ge=LIMIT_MIN,
        le=LIMIT_MAX,
        description="How many items, 1–50.",
    ),
]
Score = Annotated[
    float,
    Meta(
        description="Relevance; the list is sorted by it (best first). Personal and similar-product scores "
        "come from the model; popular fill-ins rank below them.",
        examples=[0.4213],
    ),
]


class RecommendationOut(Struct):
    product: ProductSummaryOut
    score: Score
    reason: Annotated[
        str,
        Meta(
            description='Why it is here: "because you favorited <product>", "because you bought <product>", '
            '"because you rated <product> highly", "popular in <category>" or "popular right now".',
            examples=["because you favorited Wireless Headphones"],
        ),
    ]


class RecommendationsOut(Struct):
    items: list[RecommendationOut]


class SimilarProductOut(Struct):
    product: ProductSummaryOut
    score: Score


class SimilarProductsOut(Struct):
    items: list[SimilarProductOut]


class RecommendationsController(Controller):
    path = "/api"
    tags = ["recommendations"]

    @get(
        "/recommendations",
        operation_id="getRecommendations",
        summary="Your personal feed",
        description=inspect.getdoc(GetFeed),
    )
    async def get_recommendations(
        self,
        request: Request[Principal, Any, Any],
        recommendations: NamedDependency[RecommendationUseCases],
        limit: FeedLimit = LIMIT_DEFAULT,
    ) -> Response[RecommendationsOut]:
        # The cached body of a ``Feed``, which has RecommendationsOut's exact shape (a test holds them equal).
        body = await recommendations.get_feed.encoded(request.user, limit=limit)
        response: Response[Any] = Response(content=body, media_type="application/json")
        return response

    @get(
        "/products/{product_id:str}/similar",
        operation_id="getSimilarProducts",
        summary="Products often favorited or bought together with this one",
        description=inspect.getdoc(GetSimilarProducts),
        **PUBLIC,
    )
    async def get_similar_products(
        self,
        product_id: FromPath[str],
        recommendations: NamedDependency[RecommendationUseCases],
        limit: FeedLimit = LIMIT_DEFAULT,
    ) -> SimilarProductsOut:
        return out(
            await recommendations.get_similar_products.execute(product_uuid(product_id), limit=limit),
            SimilarProductsOut,
        )
