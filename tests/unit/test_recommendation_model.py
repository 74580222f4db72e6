"""Behaviour of the item-to-item model, the popularity model and per-request feed scoring."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from application.recommendations.evaluation import ItemToItemRecommender
from application.recommendations.feed import FeedItem, UserInteraction, merge_popular, score_feed
from application.recommendations.model import (
    SECONDS_PER_DAY,
    WEIGHT_FAVORITE,
    WEIGHT_PURCHASE,
    ModelConfig,
    _low_rank_target,
    _prune_heavy_users,
    _top_n_sparse,
    affinity,
    fit,
    neighbour_lookup,
    neighbour_table,
    popularity,
)
from tests.unit.strategies import user_interactions

NOW = 1_700_000_000.0
DAY = SECONDS_PER_DAY


def frame(rows: list[tuple[str, str, float, float]]) -> pl.DataFrame:
    schema = {"user": pl.String, "item": pl.String, "ts": pl.Float64, "weight": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def two_clusters() -> pl.DataFrame:
    """Users who take a also take b; users who take c also take d; one user bridges b and c."""
    rows = [(f"ab{u}", item, NOW, 1.0) for u in range(6) for item in ("a", "b")]
    rows += [(f"cd{u}", item, NOW, 1.0) for u in range(6) for item in ("c", "d")]
    rows += [("bridge", "b", NOW, 1.0), ("bridge", "c", NOW, 1.0)]
    return frame(rows)


@pytest.mark.parametrize("method", ["sar", "rp3beta", "ease"])
def test_co_occurring_items_are_each_others_best_neighbour(method: str) -> None:
    table = fit(two_clusters(), ModelConfig(method=method, half_life_days=None), now=NOW)  # type: ignore[arg-type]

    best = table.group_by("item", maintain_order=True).first()
    assert dict(best.select("item", "neighbour").iter_rows()) == {"a": "b", "b": "a", "c": "d", "d": "c"}
    assert table.filter(pl.col("item") == pl.col("neighbour")).is_empty()
    assert (table.get_column("score") > 0).all()


@pytest.mark.parametrize("method", ["sar", "rp3beta", "ease", "hybrid"])
def test_neighbour_table_keeps_at_most_top_n_per_item(method: str) -> None:
    rows = [(f"u{u}", f"i{(u * 7 + n * 3) % 40}", NOW - n * DAY, 1.0) for u in range(60) for n in range(8)]
    config = ModelConfig(method=method, top_n=3)  # type: ignore[arg-type]

    table = fit(frame(rows), config, now=NOW)

    assert table.group_by("item").len().get_column("len").max() == 3
    assert table.columns == ["item", "neighbour", "score"]
    # Sorted by item, then score descending: the table is deterministic.
    assert table.equals(table.sort(["item", "score", "neighbour"], descending=[False, True, False]))


def test_hybrid_is_ease_when_the_head_holds_the_whole_catalogue() -> None:
    rows = [(f"u{u}", f"i{(u * 7 + n * 3) % 40}", NOW - n * DAY, 1.0) for u in range(60) for n in range(8)]

    hybrid = fit(frame(rows), ModelConfig(method="hybrid", ease_head_items=40), now=NOW)
    ease = fit(frame(rows), ModelConfig(method="ease"), now=NOW)

    assert hybrid.select("item", "neighbour").equals(ease.select("item", "neighbour"))
    assert hybrid.get_column("score").to_list() == pytest.approx(ease.get_column("score").to_list(), abs=1e-6)


def test_hybrid_gives_head_items_ease_neighbours_and_the_tail_rp3beta_ones() -> None:
    # Popular a, b (12 users each) form the head; c, d (6 users) the tail; a bridge links b and c.
    rows = [(f"ab{u}", item, NOW, 1.0) for u in range(12) for item in ("a", "b")]
    rows += [(f"cd{u}", item, NOW, 1.0) for u in range(6) for item in ("c", "d")]
    rows += [("bridge", "b", NOW, 1.0), ("bridge", "c", NOW, 1.0)]
    config = ModelConfig(method="hybrid", ease_head_items=2, half_life_days=None)

    table = fit(frame(rows), config, now=NOW)

    head = table.filter(pl.col("item").is_in(["a", "b"]))
    assert set(head.get_column("neighbour")) <= {"a", "b"}  # EASE among the head only
    best = dict(table.group_by("item", maintain_order=True).first().select("item", "neighbour").iter_rows())
    assert best == {"a": "b", "b": "a", "c": "d", "d": "c"}
    assert "b" in set(table.filter(pl.col("item") == "c").get_column("neighbour"))  # tail rows reach the head
    assert (table.get_column("score") > 0).all()
    assert config.resolved_method(10_000) == "hybrid" and ModelConfig().resolved_method(100) == "ease"


interaction_sets = st.lists(
    st.tuples(st.integers(0, 14), st.integers(0, 19), st.integers(0, 60), st.sampled_from([1.0, 2.0])),
    min_size=1,
    max_size=120,
)


@given(interaction_sets, st.sampled_from([0.0, 1.0]), st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_ease_with_or_without_smoothing_is_deterministic_positive_and_bounded(
    events: list[tuple[int, int, int, float]], smoothing: float, top_n: int
) -> None:
    data = frame([(f"u{u}", f"i{i}", NOW - days * DAY, weight) for u, i, days, weight in events])
    config = ModelConfig(method="ease", top_n=top_n, ease_smoothing=smoothing, ease_smoothing_rank=4)

    table = fit(data, config, now=NOW)

    assert table.equals(fit(data.clone(), config, now=NOW))
    assert table.filter(pl.col("item") == pl.col("neighbour")).is_empty()
    assert (table.get_column("score") > 0).all()
    assert table.is_empty() or table.group_by("item").len().get_column("len").max() <= top_n


def test_smoothing_refits_the_ease_pattern_with_weights_that_follow_the_low_rank_taste() -> None:
    # a~b~c and b~c~d: the rank-1 structure of that block says c is as much a's taste as b is.
    rows = [(f"p{u}", item, NOW, 1.0) for u in range(8) for item in ("a", "b", "c")]
    rows += [(f"q{u}", item, NOW, 1.0) for u in range(8) for item in ("b", "c", "d")]
    rows += [(f"r{u}", item, NOW, 1.0) for u in range(4) for item in ("e", "f")]

    def scores(smoothing: float) -> dict[tuple[str, str], float]:
        config = ModelConfig(method="ease", half_life_days=None, ease_smoothing=smoothing, ease_smoothing_rank=2)
        table = fit(frame(rows), config, now=NOW)
        return {(item, neighbour): score for item, neighbour, score in table.iter_rows()}

    plain, smoothed = scores(0.0), scores(1.0)
    # The same pairs (EASE picks them), never a link between the {a..d} block and {e, f}.
    assert plain.keys() == smoothed.keys()
    assert not {pair for pair in smoothed if set(pair) & {"e", "f"} and set(pair) & set("abcd")}
    assert smoothed != pytest.approx(plain)


def test_popularity_exponent_scales_each_neighbour_by_its_user_count_to_that_power() -> None:
    # "hit" is taken by 9 users, "niche" by 3: both co-occur with "a".
    rows = [(f"h{u}", item, NOW, 1.0) for u in range(6) for item in ("a", "hit")]
    rows += [(f"n{u}", item, NOW, 1.0) for u in range(3) for item in ("a", "niche", "hit")]
    users = {"a": 9, "hit": 9, "niche": 3}

    def scores(exponent: float) -> dict[tuple[str, str], float]:
        config = ModelConfig(method="ease", half_life_days=None, ease_popularity_exponent=exponent)
        return {(i, n): s for i, n, s in fit(frame(rows), config, now=NOW).iter_rows()}

    plain, penalised = scores(0.0), scores(-0.5)
    assert plain.keys() == penalised.keys()
    for (item, neighbour), score in plain.items():
        assert penalised[item, neighbour] == pytest.approx(score * users[neighbour] ** -0.5)


def test_low_rank_target_needs_at_least_two_items() -> None:
    matrix = sp.csr_matrix(np.ones((3, 1)))

    assert _low_rank_target(matrix, np.asarray((matrix.T @ matrix).toarray()), 8) is None


def test_rp3beta_walks_only_through_a_heavy_users_strongest_items() -> None:
    # "big" bought a and b (twice: stronger) and favorited c, d; pairs of c, d exist only through big.
    rows = [("big", "a", NOW, 2.0), ("big", "b", NOW, 2.0), ("big", "c", NOW, 1.0), ("big", "d", NOW, 1.0)]
    rows += [(f"u{u}", item, NOW, 1.0) for u in range(3) for item in ("a", "b")]
    rows += [("v", "c", NOW, 1.0), ("w", "d", NOW, 1.0)]

    def pairs(cap: int | None) -> set[tuple[str, str]]:
        config = ModelConfig(method="rp3beta", half_life_days=None, rp3_max_user_items=cap)
        return set(fit(frame(rows), config, now=NOW).select("item", "neighbour").iter_rows())

    assert ("c", "d") in pairs(None) and ("a", "c") in pairs(None)
    assert pairs(2) == {("a", "b"), ("b", "a")}
    assert pairs(4) == pairs(None)


@given(
    st.lists(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=6, max_size=6), min_size=1, max_size=8),
    st.integers(1, 7),
)
@settings(max_examples=100, deadline=None)
def test_pruning_keeps_each_users_strongest_items_up_to_the_cap(values: list[list[float]], cap: int) -> None:
    dense = np.array(values, dtype=np.float32)
    dense[:, ::2] *= np.arange(len(values))[:, None] % 2  # some zeros: users of different sizes
    matrix = sp.csr_matrix(dense)

    pruned = _prune_heavy_users(matrix, cap).toarray()

    for user, row in enumerate(matrix.toarray()):
        kept = pruned[user]
        assert np.count_nonzero(kept) == min(np.count_nonzero(row), cap)
        assert set(np.flatnonzero(kept)) <= set(np.flatnonzero(row))
        assert np.all(kept[kept > 0] == row[kept > 0])
        if np.count_nonzero(kept):  # nothing dropped beats what was kept
            assert row[(kept == 0) & (row > 0)].max(initial=0.0) <= kept[kept > 0].min()


def test_affinity_halves_after_one_half_life_and_sums_weights() -> None:
    data = frame([("u", "old", NOW - 30 * DAY, WEIGHT_PURCHASE), ("u", "new", NOW, WEIGHT_FAVORITE)])
    data = pl.concat([data, frame([("u", "new", NOW - 30 * DAY, WEIGHT_FAVORITE)])])

    result = dict(affinity(data, now=NOW, half_life_days=30.0).select("item", "affinity").iter_rows())

    assert result["old"] == pytest.approx(WEIGHT_PURCHASE / 2)
    assert result["new"] == pytest.approx(WEIGHT_FAVORITE + WEIGHT_FAVORITE / 2)


def test_decay_lowers_the_weight_of_old_co_occurrences() -> None:
    # a co-occurs with b in 4 recent baskets and with c in 4 baskets five half-lives old.
    rows = [(f"r{u}", item, NOW, 1.0) for u in range(4) for item in ("a", "b")]
    rows += [(f"o{u}", item, NOW - 150 * DAY, 1.0) for u in range(4) for item in ("a", "c")]
    rows += [(f"x{u}", item, NOW, 1.0) for u in range(4) for item in ("b", "c", "d")]

    def scores(half_life: float | None) -> dict[str, float]:
        table = fit(frame(rows), ModelConfig(method="ease", half_life_days=half_life), now=NOW)
        return dict(table.filter(pl.col("item") == "a").select("neighbour", "score").iter_rows())

    without_decay, with_decay = scores(None), scores(30.0)
    assert without_decay["b"] == pytest.approx(without_decay["c"])
    assert with_decay["b"] > with_decay.get("c", 0.0)


def test_popularity_decays_and_ranks_per_category() -> None:
    data = frame(
        [
            ("u1", "old", NOW - 90 * DAY, 1.0),
            ("u2", "old", NOW - 90 * DAY, 1.0),
            ("u3", "new", NOW, 1.0),
            ("u4", "shoe", NOW, 2.0),
            ("u5", "hat", NOW, 1.0),
        ]
    )

    overall = popularity(data, now=NOW, half_life_days=30.0)
    per_category = popularity(data, now=NOW, category={"shoe": "wear", "hat": "wear", "new": "books"})

    # old: 2 events at 90 days = 3 half-lives -> 2 / 8 = 0.25 < new: 1.
    assert overall.get_column("item").to_list() == ["shoe", "hat", "new", "old"]
    assert overall.filter(pl.col("item") == "old").get_column("score").item() == pytest.approx(0.25)
    assert per_category.select("category", "item").rows() == [("books", "new"), ("wear", "shoe"), ("wear", "hat")]


def test_score_feed_sums_decayed_affinity_times_similarity_and_explains() -> None:
    neighbours = {"a": [("x", 0.5), ("y", 0.4), ("b", 0.9)], "b": [("y", 0.5), ("z", 0.1), ("gone", 1.0)]}
    interactions = [
        UserInteraction("a", "favorite", NOW),
        UserInteraction("b", "purchase", NOW - 60 * DAY),  # 2 half-lives old: affinity 2.0 / 4 = 0.5
    ]

    feed = score_feed(interactions, neighbours, exclude={"gone"}, limit=10, now=NOW, half_life_days=30.0)

    # x = 1 * 0.5; y = 1 * 0.4 + 0.5 * 0.5 = 0.65 (mostly from a); z = 0.5 * 0.1; b is already taken.
    assert [item.item for item in feed] == ["y", "x", "z"]
    assert feed[0].score == pytest.approx(0.65)
    assert (feed[0].because_item, feed[0].because_kind) == ("a", "favorite")
    assert feed[2].because_item == "b" and feed[2].because_kind == "purchase"


def test_score_feed_breaks_ties_on_item_id_whatever_the_input_order() -> None:
    neighbours = {"a": [("m", 1.0), ("k", 1.0)], "b": [("l", 0.5), ("k", 0.0)], "c": [("l", 0.5)]}
    interactions = [UserInteraction(i, "favorite", NOW) for i in ("c", "a", "b")]

    feed = score_feed(interactions, neighbours, exclude=(), limit=3, now=NOW)
    reversed_feed = score_feed(interactions[::-1], neighbours, exclude=(), limit=3, now=NOW)

    assert [(f.item, f.because_item) for f in feed] == [("k", "a"), ("l", "b"), ("m", "a")]
    assert feed == reversed_feed


def test_merge_popular_fills_the_feed_with_items_not_excluded_nor_taken() -> None:
    feed = [FeedItem("x", 1.0, "a", "favorite")]
    popular = [("x", 9.0), ("a", 8.0), ("banned", 7.0), ("p", 6.0), ("q", 5.0), ("r", 4.0)]

    merged = merge_popular(
        feed, popular, exclude={"banned"}, limit=3, interactions=[UserInteraction("a", "favorite", NOW)]
    )

    assert merged == [feed[0], FeedItem("p", 6.0, None, "popular"), FeedItem("q", 5.0, None, "popular")]


def test_batch_scoring_in_evaluation_matches_score_feed() -> None:
    rows = [(f"u{u}", f"i{(u * 5 + n * 3) % 23}", NOW - n * DAY, 1.0) for u in range(40) for n in range(7)]
    data = frame(rows)
    model = ItemToItemRecommender(ModelConfig(method="rp3beta", half_life_days=10.0))
    model.fit(data, NOW)

    batch = model.recommend(data, pl.Series(["u3", "u17"]), k=5, now=NOW)

    neighbours = neighbour_lookup(model.table)
    for user in ("u3", "u17"):
        history = [UserInteraction(item, "favorite", ts) for who, item, ts, _ in rows if who == user]
        online = score_feed(history, neighbours, exclude=(), limit=5, now=NOW, half_life_days=10.0)
        expected = batch.filter(pl.col("user") == user).sort("rank").get_column("item").to_list()
        assert [entry.item for entry in online] == expected


item_ids = st.sampled_from([f"i{n}" for n in range(15)])


@settings(max_examples=120, deadline=None)
@given(
    interactions=user_interactions(item_ids, now=NOW, max_size=12),
    neighbours=st.dictionaries(
        item_ids, st.lists(st.tuples(item_ids, st.floats(min_value=-1.0, max_value=5.0)), max_size=8)
    ),
    exclude=st.sets(item_ids, max_size=5),
    limit=st.integers(min_value=0, max_value=20),
)
def test_score_feed_never_returns_excluded_or_interacted_items_nor_more_than_limit(
    interactions: list[UserInteraction],
    neighbours: dict[str, list[tuple[str, float]]],
    exclude: set[str],
    limit: int,
) -> None:
    feed = score_feed(interactions, neighbours, exclude, limit, now=NOW)

    items = [entry.item for entry in feed]
    assert len(items) <= limit
    assert len(set(items)) == len(items)
    assert not set(items) & exclude
    assert not set(items) & {interaction.item for interaction in interactions}
    assert [entry.score for entry in feed] == sorted((entry.score for entry in feed), reverse=True)
    assert all(entry.because_item in {i.item for i in interactions} for entry in feed)


def _reference_top_n(rows: list[list[float]], codes: list[int], top_n: int) -> list[tuple[int, int, float]]:
    """Per row: positive off-diagonal entries, best first, ties on the smaller column, cut at top_n."""
    kept = []
    for row, values in enumerate(rows):
        ranked = sorted((-value, col) for col, value in enumerate(values) if value > 0 and col != codes[row])
        kept += [(codes[row], col, -negative) for negative, col in ranked[:top_n]]
    return sorted(kept)


@given(
    st.integers(1, 12).flatmap(
        lambda n_cols: st.tuples(
            st.lists(
                st.lists(st.sampled_from([-0.5, 0.0, 0.25, 0.5, 0.75, 1.0]), min_size=n_cols, max_size=n_cols),
                min_size=1,
                max_size=10,
            ),
            st.lists(st.integers(0, n_cols - 1), min_size=10, max_size=10),
        )
    ),
    st.integers(1, 6),
)
@settings(max_examples=200, deadline=None)
def test_sparse_top_n_keeps_the_best_positive_non_self_entries_with_ties_on_the_column(
    case: tuple[list[list[float]], list[int]], top_n: int
) -> None:
    values, all_codes = case
    codes = all_codes[: len(values)]
    product = sp.csr_matrix(np.array(values, dtype=np.float32))

    rows, cols, scores = _top_n_sparse(product, np.array(codes, dtype=np.int64), top_n)

    assert sorted(zip(rows.tolist(), cols.tolist(), scores.tolist(), strict=True)) == _reference_top_n(
        values, codes, top_n
    )


@given(
    st.lists(
        st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdefgh"), st.floats(0.001, 10.0)),
        max_size=30,
        unique_by=lambda row: (row[0], row[1]),
    )
)
@settings(max_examples=100, deadline=None)
def test_the_stores_compressed_rows_hold_every_list_in_order(rows: list[tuple[str, str, float]]) -> None:
    table = pl.DataFrame(rows, schema={"item": pl.String, "neighbour": pl.String, "score": pl.Float64}, orient="row")
    compressed = neighbour_table(table)
    assert dict(compressed.rows()) == neighbour_lookup(table)
    assert len(compressed.offsets) == len(compressed.items) + 1 and compressed.offsets[-1] == len(rows)
    assert len(compressed.neighbours) == len(compressed.scores) == len(rows)
