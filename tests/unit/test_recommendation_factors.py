"""The feed's ALS term: the fit, the per-user fold-in, and how it joins the neighbour sum."""

from __future__ import annotations

from array import array

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import bm25_weight
from threadpoolctl import threadpool_limits

from application.recommendations.evaluation import ItemToItemRecommender
from application.recommendations.factors import FactorScorer, bm25, fit_factors
from application.recommendations.feed import UserInteraction, score_feed
from application.recommendations.model import SECONDS_PER_DAY, ModelConfig, fit_model, neighbour_lookup
from application.recommendations.table import ItemFactors
from tests.unit.strategies import user_interactions

NOW = 1_700_000_000.0
DAY = SECONDS_PER_DAY
SMALL = ModelConfig(method="ease", als_rank=4, als_iterations=8, half_life_days=10.0)


def frame(rows: list[tuple[str, str, float, float]]) -> pl.DataFrame:
    schema = {"user": pl.String, "item": pl.String, "ts": pl.Float64, "weight": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def shop_rows(users: int = 60, items: int = 30) -> list[tuple[str, str, float, float]]:
    """Users with overlapping tastes: each takes seven items from a stride of the catalogue."""
    return [
        (f"u{u}", f"i{(u * 5 + n * 3) % items:02d}", NOW - n * DAY, 1.0 + (n % 2))
        for u in range(users)
        for n in range(7)
    ]


def random_factors(n_items: int, rank: int, seed: int) -> ItemFactors:
    rng = np.random.default_rng(seed)
    return ItemFactors(
        items=[f"i{n:02d}" for n in range(n_items)],
        rank=rank,
        vectors=array("f", rng.normal(0, 0.5, n_items * rank).astype(np.float32).tolist()),
        idf=array("d", rng.uniform(0.2, 3.0, n_items).tolist()),
        mean_length=3.0,
        regularization=2.0,
        alpha=3.0,
        bm25_k1=100.0,
        bm25_b=0.8,
    )


def test_bm25_weighs_a_matrix_as_implicit_does() -> None:
    rng = np.random.default_rng(1)
    matrix = sp.random(40, 25, density=0.2, random_state=rng, format="csr", dtype=np.float64)
    matrix.data = matrix.data * 3 + 0.1
    idf = np.log(matrix.shape[0]) - np.log1p(matrix.getnnz(axis=0))
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    ours = bm25(matrix.data, totals[rows], idf[matrix.indices], float(totals.mean()), 100.0, 0.8)
    theirs = bm25_weight(matrix, K1=100.0, B=0.8).tocsr()
    np.testing.assert_allclose(ours, theirs.data, rtol=1e-9)


def test_fold_in_is_the_least_squares_solve_implicit_makes_for_a_user() -> None:
    factors = random_factors(30, 5, seed=2)
    scorer = FactorScorer(factors)
    affinity = {"i03": 1.0, "i07": 2.5, "i11": 0.4, "i29": 1.2}
    user = scorer.fold_in(affinity)
    assert user is not None

    codes = np.array([3, 7, 11, 29])
    values = np.array([1.0, 2.5, 0.4, 1.2])
    weights = bm25(values, np.full(4, values.sum()), scorer.idf[codes], 3.0, 100.0, 0.8)
    row = sp.csr_matrix((weights.astype(np.float32), (np.zeros(4, int), codes)), shape=(1, 30))
    with threadpool_limits(1, "blas"):  # as implicit asks
        reference = AlternatingLeastSquares(factors=5, regularization=2.0, alpha=3.0, random_state=0)
        reference.item_factors = np.frombuffer(factors.vectors, dtype=np.float32).reshape(30, 5).copy()
        expected = reference.recalculate_user(0, row)
    np.testing.assert_allclose(user.vector, np.asarray(expected).ravel(), rtol=1e-4, atol=1e-6)


def test_a_user_with_no_item_the_model_knows_has_no_vector() -> None:
    scorer = FactorScorer(random_factors(10, 3, seed=3))
    assert scorer.fold_in({"unknown": 1.0}) is None
    assert scorer.fold_in({}) is None


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    values=st.lists(st.floats(min_value=0.01, max_value=20.0), min_size=1, max_size=12),
)
def test_each_items_contributions_add_up_to_its_score(seed: int, values: list[float]) -> None:
    scorer = FactorScorer(random_factors(20, 4, seed))
    user = scorer.fold_in({f"i{n:02d}": value for n, value in enumerate(values)})
    assert user is not None
    codes = np.arange(20)
    scores = scorer.scores(user)  # scored in float32, like the fitted vectors
    tolerance = 1e-5 * max(1.0, float(np.abs(scores).max()))
    np.testing.assert_allclose(scorer.contributions(user, codes).sum(axis=1), scores, atol=tolerance)


def test_fit_factors_gives_vectors_to_the_items_with_most_users_only() -> None:
    data = frame(shop_rows())
    fitted = fit_model(data, SMALL, now=NOW)
    assert fitted.factors is not None and fitted.factors.rank == 4
    assert sorted(fitted.factors.items) == sorted(set(data.get_column("item")))
    assert len(fitted.factors.vectors) == 4 * len(fitted.factors.items)
    again = fit_model(data, SMALL, now=NOW).factors
    assert again == fitted.factors  # the same data gives the same vectors

    matrix = sp.csr_matrix(np.ones((50, 12)) * (np.arange(12) < 9) + np.eye(50, 12))
    head = fit_factors(
        matrix,
        [f"p{n}" for n in range(12)],
        rank=2,
        regularization=1.0,
        alpha=1.0,
        iterations=3,
        bm25_k1=100.0,
        bm25_b=0.8,
        max_items=5,
        max_users=20,
    )
    assert head is not None and head.items == ["p0", "p1", "p2", "p3", "p4"]  # most users; ties by code


def test_too_small_a_catalogue_or_a_zero_weight_fits_no_vectors() -> None:
    assert fit_model(frame(shop_rows(users=10, items=4)), SMALL, now=NOW).factors is None
    assert fit_model(frame(shop_rows()), ModelConfig(method="ease", als_weight=0.0), now=NOW).factors is None


def test_batch_scoring_in_evaluation_matches_score_feed_with_the_als_term() -> None:
    rows = shop_rows()
    data = frame(rows)
    model = ItemToItemRecommender(SMALL)
    model.fit(data, NOW)
    assert model.factors is not None and "+ als" in model.name

    batch = model.recommend(data, pl.Series(["u3", "u17", "u42"]), k=6, now=NOW)

    neighbours = neighbour_lookup(model.table)
    scorer = FactorScorer(model.factors)
    for user in ("u3", "u17", "u42"):
        history = [UserInteraction(item, "favorite", ts) for who, item, ts, _ in rows if who == user]
        # The batch reads weights from the frame: the same affinities as favorites of those weights.
        history += [UserInteraction(item, "favorite", ts) for who, item, ts, w in rows if who == user and w > 1]
        online = score_feed(history, neighbours, (), 6, NOW, 10.0, factors=scorer, factor_weight=SMALL.als_weight)
        expected = batch.filter(pl.col("user") == user).sort("rank").get_column("item").to_list()
        assert [entry.item for entry in online] == expected


def test_the_als_term_reaches_items_no_neighbour_list_holds_and_names_a_reason() -> None:
    scorer = FactorScorer(random_factors(30, 4, seed=5))
    history = [UserInteraction("i01", "favorite", NOW), UserInteraction("i02", "purchase", NOW)]
    neighbours = {"i01": [("i05", 1.0)]}
    plain = score_feed(history, neighbours, (), 10, NOW)
    blended = score_feed(history, neighbours, ("i07",), 10, NOW, factors=scorer, factor_weight=1.0)
    assert [entry.item for entry in plain] == ["i05"]
    assert len(blended) == 10 and {"i01", "i02", "i07"}.isdisjoint(entry.item for entry in blended)
    assert all(entry.because_item in {"i01", "i02"} for entry in blended)
    assert {entry.because_kind for entry in blended} <= {"favorite", "purchase"}
    assert score_feed(history, neighbours, (), 10, NOW, factors=scorer, factor_weight=0.0) == plain


item_ids = st.sampled_from([f"i{n:02d}" for n in range(24)])


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    interactions=user_interactions(item_ids, now=NOW, max_size=10),
    neighbours=st.dictionaries(item_ids, st.lists(st.tuples(item_ids, st.floats(0.0, 5.0)), max_size=6)),
    exclude=st.sets(item_ids, max_size=5),
    limit=st.integers(min_value=0, max_value=30),
    weight=st.sampled_from([0.5, 1.0, 3.0]),
)
def test_the_blended_feed_keeps_the_feed_rules(
    seed: int,
    interactions: list[UserInteraction],
    neighbours: dict[str, list[tuple[str, float]]],
    exclude: set[str],
    limit: int,
    weight: float,
) -> None:
    scorer = FactorScorer(random_factors(20, 3, seed))  # i20..i23 have no vector
    feed = score_feed(interactions, neighbours, exclude, limit, NOW, factors=scorer, factor_weight=weight)

    items = [entry.item for entry in feed]
    assert len(items) <= limit and len(set(items)) == len(items)
    assert not set(items) & exclude
    assert not set(items) & {interaction.item for interaction in interactions}
    assert all(entry.score > 0 for entry in feed)
    assert [entry.score for entry in feed] == sorted((entry.score for entry in feed), reverse=True)
    assert all(entry.because_item in {i.item for i in interactions} for entry in feed)
    again = score_feed(interactions[::-1], neighbours, exclude, limit, NOW, factors=scorer, factor_weight=weight)
    assert [entry.item for entry in again] == items


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_config_weight_zero_serves_the_neighbour_sum_alone(weight: float) -> None:
    data = frame(shop_rows())
    fitted = fit_model(data, ModelConfig(method="ease", als_rank=4, als_weight=weight), now=NOW)
    assert (fitted.factors is None) == (weight == 0.0)


def test_a_user_whose_system_is_not_positive_definite_gets_no_als_term() -> None:
    factors = random_factors(6, 2, seed=7)
    weak = FactorScorer(
        ItemFactors(
            items=factors.items,
            rank=2,
            vectors=array("f", [5.0, 0.0] * 6),
            idf=array("d", [1.0] * 6),
            mean_length=1.0,
            regularization=0.0,
            alpha=1e-6,  # confidence ≈ 0: the user's row takes its items' vectors back out
            bm25_k1=100.0,
            bm25_b=0.8,
        )
    )
    assert weak.fold_in({"i00": 1.0, "i01": 1.0}) is None
    history = [UserInteraction("i00", "favorite", NOW)]
    assert score_feed(history, {"i00": [("i03", 1.0)]}, (), 5, NOW, factors=weak, factor_weight=1.0)[0].item == "i03"
