"""Scale benchmark of the recommender (``make bench-recs``).

For each size, a fresh subprocess generates synthetic power-law interactions (seeded), fits the model,
and reports fit time (wall, and CPU, which does not grow when other processes share the cores) and
peak resident memory (``ru_maxrss``: Polars/numpy allocate natively, which tracemalloc does not see).
It then loads the table into dicts as serving does and times ``score_feed`` for 1000 random users,
and for 1000 synthetic users with 200 interactions each.

    uv run python bench/recs_scale.py --sizes 100k,1M,10M,10Mx1M --runs 3

A size is a row count, optionally ``x`` an item count (``10Mx1M``: 10M rows over 1M items); by
default there are 100 rows per item. With ``--runs N`` each size runs N times (fresh processes) and
the median fit time and the largest peak RSS are reported: other processes share the cores.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time

import click
import numpy as np
import polars as pl

from application.recommendations.factors import FactorScorer
from application.recommendations.feed import InteractionKind, UserInteraction, score_feed
from application.recommendations.model import KIND_WEIGHTS, ModelConfig, fit_model, neighbour_lookup, popularity

SEED = 42
KINDS: tuple[InteractionKind, ...] = ("favorite", "purchase", "review")
KIND_SHARE = (0.6, 0.25, 0.15)
NOW = 1_750_000_000.0
TWO_YEARS = 2 * 365 * 86_400.0


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def parse_spec(text: str) -> tuple[int, int]:
    """``rows[xitems]`` → (rows, items); 100 rows per item by default."""
    rows, _, items = text.strip().lower().partition("x")
    n_rows = parse_size(rows)
    return n_rows, parse_size(items) if items else max(n_rows // 100, 1)


def synthetic(n_rows: int, n_items: int | None = None, seed: int = SEED) -> pl.DataFrame:
    """Power-law users and items (10 rows per user, 100 per item by default), times over two years."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n_rows // 10, 1), n_items or max(n_rows // 100, 1)
    user_p = (np.arange(n_users) + 10.0) ** -0.6
    item_p = (np.arange(n_items) + 10.0) ** -0.9
    users = rng.choice(n_users, n_rows, p=user_p / user_p.sum())
    items = rng.choice(n_items, n_rows, p=item_p / item_p.sum())
    kinds = rng.choice(len(KINDS), n_rows, p=KIND_SHARE)
    ages = rng.random(n_rows) * TWO_YEARS
    weights = np.array([KIND_WEIGHTS[kind] for kind in KINDS])[kinds]
    return pl.DataFrame(
        {"user": users, "item": items, "ts": NOW - ages, "weight": weights, "kind": kinds}
    ).with_columns(
        pl.format("u{}", "user").alias("user"),
        pl.format("i{}", "item").alias("item"),
        pl.col("kind").replace_strict(dict(enumerate(KINDS)), return_dtype=pl.String),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def time_feed(
    histories: list[list[UserInteraction]],
    neighbours: dict[str, list[tuple[str, float]]],
    factors: FactorScorer | None,
    weight: float,
) -> dict[str, float]:
    times = []
    for history in histories:
        started = time.perf_counter()
        score_feed(history, neighbours, exclude=(), limit=50, now=NOW, factors=factors, factor_weight=weight)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99)}


def run_one(n_rows: int, n_items: int) -> dict[str, object]:
    """One size, in this process: the caller runs it in a fresh subprocess for a clean ru_maxrss."""
    data = synthetic(n_rows, n_items)
    data_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frame = data.drop("kind")
    config = ModelConfig()
    started, cpu_started = time.perf_counter(), time.process_time()
    model = fit_model(frame, config, now=NOW)
    table = model.table
    fit_s, fit_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    started = time.perf_counter()
    popularity(frame, now=NOW, top_n=1000)
    popularity_s = time.perf_counter() - started
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    started = time.perf_counter()
    neighbours = neighbour_lookup(table)
    scorer = FactorScorer(model.factors) if model.factors is not None else None
    load_s = time.perf_counter() - started
    dicts_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = random.Random(SEED)
    users = data.get_column("user").unique().sort().to_list()
    sample = pl.DataFrame({"user": rng.sample(users, min(1000, len(users)))})
    grouped = data.join(sample, on="user").group_by("user").agg("item", "kind", "ts")
    histories = [
        [UserInteraction(item, kind, ts) for item, kind, ts in zip(its, kinds, tss, strict=True)]
        for _, its, kinds, tss in grouped.iter_rows()
    ]
    catalogue = list(neighbours)
    heavy = [
        [UserInteraction(rng.choice(catalogue), rng.choice(KINDS), NOW - rng.random() * TWO_YEARS) for _ in range(200)]
        for _ in range(1000)
    ]
    n_items = data.get_column("item").n_unique()
    return {
        "rows": n_rows,
        "users": data.get_column("user").n_unique(),
        "items": n_items,
        "method": config.resolved_method(n_items),
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "load_average": os.getloadavg()[0],
        "popularity_s": popularity_s,
        "table_rows": table.height,
        "products_with_vectors": len(model.factors.items) if model.factors is not None else 0,
        "data_rss_mb": data_rss,
        "peak_rss_mb": peak_rss,
        "load_dicts_s": load_s,
        "peak_rss_with_dicts_mb": dicts_rss,
        "feed_random_users": time_feed(histories, neighbours, scorer, config.als_weight),
        "feed_200_interactions": time_feed(heavy, neighbours, scorer, config.als_weight),
    }


def run_sizes(spec: str, runs: int) -> dict[str, object] | None:
    """``runs`` fresh processes of one size: the median fit (wall and CPU) and the largest peak RSS."""
    n_rows, n_items = parse_spec(spec)
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, __file__, "--one", f"{n_rows}x{n_items}"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(f"{spec}: failed\n{done.stderr}", file=sys.stderr)
            return None
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = results[len(results) // 2] | {
        "fit_s": statistics.median(r["fit_s"] for r in results),
        "fit_cpu_s": statistics.median(r["fit_cpu_s"] for r in results),
        "fit_runs": [round(r["fit_s"], 2) for r in results],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
    }
    return result


@click.command()
@click.option(
    "--sizes", default="100k,1M,10M,10Mx1M", show_default=True, help="Comma-separated rows[xitems] (see above)."
)
@click.option("--runs", type=click.IntRange(min=1), default=1, show_default=True, help="Runs per size (median).")
@click.option("--one", hidden=True, help="Internal: run a single rows x items size and print JSON.")
def main(sizes: str, runs: int, one: str | None) -> None:
    """Fit time, peak memory and feed latency at growing synthetic sizes."""
    if one is not None:
        print(json.dumps(run_one(*parse_spec(one))))
        return
    for spec in [text for text in sizes.split(",") if text.strip()]:
        result = run_sizes(spec, runs)
        if result is None:
            continue
        feed, heavy = result["feed_random_users"], result["feed_200_interactions"]
        print(
            f"{result['rows']:,} rows, {result['users']:,} users, {result['items']:,} items [{result['method']}]\n"
            f"  fit {result['fit_s']:.2f} s, median of {result['fit_runs']} "
            f"(CPU {result['fit_cpu_s']:.2f} s, load average "
            f"{result['load_average']:.1f}), popularity {result['popularity_s']:.2f} s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB (generated data alone {result['data_rss_mb']:.0f} MB)\n"
            f"  table as dicts: {result['table_rows']:,} entries in {result['load_dicts_s']:.1f} s, "
            f"peak RSS then {result['peak_rss_with_dicts_mb']:.0f} MB\n"
            f"  score_feed (limit 50): random users p50 {feed['p50_ms']:.2f} / p99 {feed['p99_ms']:.2f} ms; "
            f"200-interaction users p50 {heavy['p50_ms']:.2f} / p99 {heavy['p99_ms']:.2f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
