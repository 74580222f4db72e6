"""Hot routes encode read models directly; these must stay field-for-field equal to the documented bodies."""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec
import pytest

from application.pagination import Page
from application.views.catalog import ProductDetail, ProductSummary
from application.views.recommendations import Feed
from entrypoints.http.catalog_schemas import ProductOut, ProductSummaryOut
from entrypoints.http.controllers.recommendations import RecommendationsOut


def shape(kind: Any) -> Any:
    """Field names in order, nested Structs and list items expanded; other types by name."""
    origin = typing.get_origin(kind)
    if origin is list:
        return ["list", shape(typing.get_args(kind)[0])]
    if origin in (typing.Union, types.UnionType):  # ``X | None``: each member by its shape
        return ["union", *(shape(arg) for arg in typing.get_args(kind))]
    if (isinstance(kind, type) and issubclass(kind, msgspec.Struct)) or (
        origin is not None and isinstance(origin, type) and issubclass(origin, msgspec.Struct)
    ):
        return [(f.encode_name, shape(f.type)) for f in msgspec.structs.fields(kind)]
    if typing.get_origin(kind) is typing.Annotated:
        return shape(typing.get_args(kind)[0])
    return repr(kind)


@pytest.mark.parametrize(
    ("view", "body"),
    [
        (ProductDetail, ProductOut),
        (ProductSummary, ProductSummaryOut),
        (Page[ProductSummary], Page[ProductSummaryOut]),
        (Feed, RecommendationsOut),
    ],
)
def test_views_encode_exactly_like_their_response_bodies(view: Any, body: Any) -> None:
    assert shape(view) == shape(body)
