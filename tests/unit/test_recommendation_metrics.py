"""Pins the offline metrics and split protocols on tiny hand-computed cases."""

from __future__ import annotations

import math

import polars as pl
import pytest

from application.recommendations.evaluation import (
    ItemToItemRecommender,
    PopularityRecommender,
    Recommender,
    chrono_split,
    evaluate,
    random_split,
    ranking_metrics,
)
from application.recommendations.model import ModelConfig


def recs(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user": pl.String, "item": pl.String, "rank": pl.Int64}, orient="row")


def pairs(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user": pl.String, "item": pl.String}, orient="row")


def events(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"user": pl.String, "item": pl.String, "ts": pl.Float64}, orient="row")
    return frame.with_columns(pl.lit(1.0).alias("weight"))


def test_metrics_on_three_users_by_hand() -> None:
    # k = 3, catalogue of 10 items.
    # u1: test {a, b, c}; ranked a, x, b, (y at rank 4 is past k). Hits at ranks 1 and 3.
    #   P = 2/3, R = 2/3, DCG = 1/log2(2) + 1/log2(4) = 1.5,
    #   IDCG over min(3, 3) = 3 hits = 1 + 1/log2(3) + 1/2 = 2.130930 -> nDCG = 0.703918,
    #   AP = (1/1 + 2/3) / min(3, 3) = 0.555556.
    # u2: test {z}; ranked y, z. Hit at rank 2.
    #   P = 1/3, R = 1/1 = 1, nDCG = (1/log2(3)) / 1 = 0.630930, AP = (1/2) / min(3, 1) = 0.5.
    # u3: test {q}; no recommendation at all: every metric 0, but the user still counts.
    # Means over 3 users: P = (2/3 + 1/3 + 0)/3 = 1/3, R = (2/3 + 1 + 0)/3 = 5/9,
    #   nDCG = (0.703918 + 0.630930)/3 = 0.444949, MAP = (0.555556 + 0.5)/3 = 0.351852.
    # Coverage: {a, x, b} ∪ {y, z} = 5 of 10 items = 0.5.
    recommended = recs([("u1", "a", 1), ("u1", "x", 2), ("u1", "b", 3), ("u1", "y", 4), ("u2", "y", 1), ("u2", "z", 2)])
    test = pairs([("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "z"), ("u3", "q")])

    metrics = ranking_metrics(recommended, test, k=3, n_catalogue=10)

    idcg_u1 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.n_users == 3
    assert metrics.precision == pytest.approx(1 / 3)
    assert metrics.recall == pytest.approx(5 / 9)
    assert metrics.ndcg == pytest.approx((1.5 / idcg_u1 + 1 / math.log2(3)) / 3)
    assert metrics.ndcg == pytest.approx(0.444949, abs=1e-6)
    assert metrics.map == pytest.approx(((1 + 2 / 3) / 3 + 0.5) / 3)
    assert metrics.coverage == pytest.approx(0.5)


def test_recall_divides_by_all_test_items_but_ndcg_and_map_cap_at_k() -> None:
    # k = 2, 5 test items, both recommendations hit.
    # R = 2/5 (standard recall, not 2/min(2, 5) = 1); P = 2/2 = 1;
    # nDCG = (1 + 1/log2(3)) / (1 + 1/log2(3)) = 1 (ideal over min(k, |test|) = 2 positions);
    # AP = (1/1 + 2/2) / min(2, 5) = 1.
    recommended = recs([("u", "a", 1), ("u", "b", 2)])
    test = pairs([("u", item) for item in "abcde"])

    metrics = ranking_metrics(recommended, test, k=2, n_catalogue=5)

    assert metrics.recall == pytest.approx(0.4)
    assert metrics.precision == pytest.approx(1.0)
    assert metrics.ndcg == pytest.approx(1.0)
    assert metrics.map == pytest.approx(1.0)
    assert metrics.coverage == pytest.approx(2 / 5)


def test_precision_divides_by_k_even_when_fewer_items_are_recommended() -> None:
    # One hit at rank 1 out of a single recommendation, k = 10: P = 1/10, nDCG = 1/1, AP = 1/1.
    metrics = ranking_metrics(recs([("u", "a", 1)]), pairs([("u", "a")]), k=10, n_catalogue=4)

    assert metrics.precision == pytest.approx(0.1)
    assert metrics.ndcg == pytest.approx(1.0)
    assert metrics.map == pytest.approx(1.0)


def test_random_split_holds_out_a_fifth_per_user_reproducibly() -> None:
    # u10 has 10 items -> round(0.2 * 10) = 2 to test; u2 has 2 -> max(1, round(0.4)) = 1;
    # u1 has a single item: nothing to hold out, it stays in train and is not evaluated.
    data = events(
        [("u10", f"i{n}", float(n)) for n in range(10)] + [("u2", "i0", 0.0), ("u2", "i1", 1.0), ("u1", "i0", 0.0)]
    )

    train, test = random_split(data)
    again_train, again_test = random_split(data)

    counts = dict(test.group_by("user").len().iter_rows())
    assert counts == {"u10": 2, "u2": 1}
    assert train.filter(pl.col("user") == "u1").height == 1
    assert train.join(test, on=["user", "item"]).is_empty()
    assert train.height + test.height == data.height
    assert test.sort("user", "item").equals(again_test.sort("user", "item"))
    assert train.sort("user", "item").equals(again_train.sort("user", "item"))


def test_chrono_split_holds_out_each_users_latest_items() -> None:
    # u has 10 items at t = 0..9 -> its 2 latest (t = 8, 9) go to test; v has 5 -> its latest one.
    data = events([("u", f"i{n}", float(n)) for n in range(10)] + [("v", f"j{n}", float(n)) for n in range(5)])

    _, test = chrono_split(data)

    assert sorted(test.iter_rows()) == [("u", "i8"), ("u", "i9"), ("v", "j4")]


def test_splits_keep_repeated_events_of_a_pair_together() -> None:
    # The pair (u, i9) has events at t = 9 and t = 3.5: it is dated by its first event (3.5), so the
    # two latest pairs are i8 and i7, and both events of i9 stay in train.
    data = events([("u", f"i{n}", float(n)) for n in range(10)] + [("u", "i9", 3.5)])

    train, test = chrono_split(data)

    assert sorted(test.iter_rows()) == [("u", "i7"), ("u", "i8")]
    assert train.filter(pl.col("item") == "i9").height == 2


def test_evaluate_runs_model_and_baseline_on_both_protocols() -> None:
    data = events(
        [(f"u{u}", f"i{(u + n) % 12}", float(n)) for u in range(30) for n in range(6)]
        + [(f"u{u}", f"i{(u * 7) % 12}", 10.0) for u in range(30)]
    )
    models: list[Recommender] = [
        ItemToItemRecommender(ModelConfig(method="sar", half_life_days=None)),
        PopularityRecommender(),
    ]

    results = evaluate(data, models)

    assert [(r.protocol, r.model) for r in results] == [
        ("random", "item-to-item (sar)"),
        ("random", "popularity"),
        ("chrono", "item-to-item (sar)"),
        ("chrono", "popularity"),
    ]
    for result in results:
        m = result.metrics
        assert m.n_users == 30
        assert 0 <= m.precision <= 1 and 0 <= m.recall <= 1 and 0 <= m.ndcg <= 1 and 0 <= m.map <= 1
        assert 0 < m.coverage <= 1
        assert result.fit_seconds >= 0
