"""Recommendations: an item-to-item model fitted offline, and a per-request feed scorer.

* ``model``: ``fit`` (interactions → neighbour table), ``popularity`` (cold start), the kind weights.
* ``feed``: ``score_feed`` and ``merge_popular``, pure Python, for the request path.
* ``evaluation``: split protocols, ranking metrics and ``evaluate`` (model vs popularity).
"""

from application.recommendations.feed import FeedItem, UserInteraction, merge_popular, score_feed
from application.recommendations.model import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_TOP_N,
    KIND_WEIGHTS,
    WEIGHT_FAVORITE,
    WEIGHT_GOOD_REVIEW,
    WEIGHT_PURCHASE,
    ModelConfig,
    fit,
    neighbour_lookup,
    popularity,
)

__all__ = [
    "DEFAULT_HALF_LIFE_DAYS",
    "DEFAULT_TOP_N",
    "KIND_WEIGHTS",
    "WEIGHT_FAVORITE",
    "WEIGHT_GOOD_REVIEW",
    "WEIGHT_PURCHASE",
    "FeedItem",
    "ModelConfig",
    "UserInteraction",
    "fit",
    "merge_popular",
    "neighbour_lookup",
    "popularity",
    "score_feed",
]
