"""``recommend`` commands: offline evaluation of the recommendation model, and a refresh now.

Attached to the main ``marketplace`` CLI, and runnable alone:
``uv run python -m entrypoints.recommend_cli evaluate --dataset ml-100k``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Literal, cast

import click
from click.decorators import FC
from rich.console import Console
from rich.table import Table

from adapters.datasets import DatasetError, load_dataset
from application.recommendations.evaluation import (
    PROTOCOLS,
    EvalResult,
    ItemToItemRecommender,
    PopularityRecommender,
    Protocol_,
    evaluate,
)
from application.recommendations.model import DEFAULT_HALF_LIFE_DAYS, METHODS, Method, ModelConfig

_DEFAULTS = ModelConfig()


def _model_option(field: str, kind: click.ParamType[Any] | type[float], help: str | None = None) -> Callable[[FC], FC]:
    """The option of one ``ModelConfig`` field: ``--ease-lambda`` for ``ease_lambda``, its default shown."""
    return click.option(
        "--" + field.replace("_", "-"), type=kind, default=getattr(_DEFAULTS, field), show_default=True, help=help
    )


@click.group("recommend")
def recommend() -> None:
    """Recommendation engine: evaluation, tuning and refreshes."""


@recommend.command("refresh")
def refresh_command() -> None:
    """Rebuild the model and the popular items now, in the database at DATABASE_URL.

    The same work as the scheduled job; running API processes use the new model at once.
    """
    import asyncio

    from entrypoints.settings import Settings, SettingsError
    from entrypoints.wiring import Container

    try:
        settings = Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None

    async def run() -> dict[str, object]:
        container = Container(settings)
        try:
            return await container.use_cases.recommendations.refresh_recommendations.execute()
        finally:
            await container.shutdown()

    click.echo(json.dumps(asyncio.run(run())))


@recommend.command("evaluate")
@click.option(
    "--dataset",
    default="ml-100k",
    show_default=True,
    help="'ml-100k' (from the recbole package) or an interactions CSV: user,item,timestamp[,weight].",
)
@click.option("--protocol", type=click.Choice(["random", "chrono", "both"]), default="both", show_default=True)
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True, help="Cut-off of the top-k.")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True)
@click.option(
    "--half-life-days",
    type=click.FloatRange(min=0),
    default=DEFAULT_HALF_LIFE_DAYS,
    show_default=True,
    help="Decay of old interactions; 0 turns decay off.",
)
@_model_option("top_n", click.IntRange(min=1))
@_model_option("ease_lambda", float)
@_model_option(
    "ease_smoothing",
    click.FloatRange(min=0),
    "Weight of the low-rank term in the EASE refit's targets; 0 turns it off.",
)
@_model_option(
    "ease_popularity_exponent", float, "Each EASE neighbour's score times its user count to this power; 0 turns it off."
)
@_model_option(
    "ease_head_items",
    click.IntRange(min=1),
    "hybrid: the most interacted-with items that get EASE neighbours (RP3beta for the rest).",
)
@_model_option("rp3_alpha", float)
@_model_option("rp3_beta", float)
@_model_option(
    "als_weight", click.FloatRange(min=0), "Weight of the ALS term beside the neighbour sum; 0 turns it off."
)
@_model_option("als_rank", click.IntRange(min=1))
@_model_option("als_regularization", click.FloatRange(min=0))
@_model_option("als_alpha", click.FloatRange(min=0))
@_model_option("als_iterations", click.IntRange(min=1))
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per protocol and method on stdout (the summary line goes to stderr).",
)
def evaluate_command(
    dataset: str,
    protocol: str,
    k: int,
    method: str,
    half_life_days: float,
    top_n: int,
    ease_lambda: float,
    ease_smoothing: float,
    ease_popularity_exponent: float,
    ease_head_items: int,
    rp3_alpha: float,
    rp3_beta: float,
    als_weight: float,
    als_rank: int,
    als_regularization: float,
    als_alpha: float,
    als_iterations: int,
    as_json: bool,
) -> None:
    """Model vs popularity baseline: P@k, R@k, nDCG@k, MAP@k, coverage and fit time."""
    try:
        interactions = load_dataset(dataset)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from exc
    half_life = half_life_days or None
    config = ModelConfig(
        method=cast(Method, method),
        half_life_days=half_life,
        top_n=top_n,
        ease_lambda=ease_lambda,
        ease_smoothing=ease_smoothing,
        ease_popularity_exponent=ease_popularity_exponent,
        ease_head_items=ease_head_items,
        rp3_alpha=rp3_alpha,
        rp3_beta=rp3_beta,
        als_weight=als_weight,
        als_rank=als_rank,
        als_regularization=als_regularization,
        als_alpha=als_alpha,
        als_iterations=als_iterations,
    )
    protocols = PROTOCOLS if protocol == "both" else (cast(Protocol_, protocol),)
    # Piped output keeps whole columns; with --json, stdout holds nothing but the JSON lines.
    console = Console(width=None if sys.stdout.isatty() else 120, stderr=as_json)
    console.print(
        f"[bold]{dataset}[/]: {interactions.height:,} interactions, "
        f"{interactions.get_column('user').n_unique():,} users, "
        f"{interactions.get_column('item').n_unique():,} items"
    )
    results = evaluate(
        interactions,
        [ItemToItemRecommender(config), PopularityRecommender(half_life)],
        protocols=protocols,
        k=k,
    )
    if as_json:
        for result in results:
            click.echo(json.dumps(result_record(result)))
    else:
        console.print(results_table(results, k))


def result_record(result: EvalResult) -> dict[str, object]:
    """One result as the ``--json`` line: the table's columns under stable names."""
    m = result.metrics
    return {
        "protocol": result.protocol,
        "method": result.model,
        "k": result.k,
        "precision": m.precision,
        "recall": m.recall,
        "ndcg": m.ndcg,
        "map": m.map,
        "coverage": m.coverage,
        "fit_seconds": result.fit_seconds,
        "users": m.n_users,
    }


def results_table(results: list[EvalResult], k: int) -> Table:
    table = Table(title=f"Top-{k} evaluation (train items excluded)")
    for header in ("protocol", "model", f"P@{k}", f"R@{k}", f"nDCG@{k}", f"MAP@{k}", "coverage", "fit s", "users"):
        justify: Literal["left", "right"] = "left" if header in {"protocol", "model"} else "right"
        table.add_column(header, justify=justify)
    for result in results:
        m = result.metrics
        table.add_row(
            result.protocol,
            result.model,
            f"{m.precision:.4f}",
            f"{m.recall:.4f}",
            f"{m.ndcg:.4f}",
            f"{m.map:.4f}",
            f"{m.coverage:.3f}",
            f"{result.fit_seconds:.2f}",
            f"{m.n_users:,}",
        )
    return table


if __name__ == "__main__":
    recommend()
