"""Interaction data sets for offline evaluation of the recommender.

Every loader returns a Polars frame with the model's columns ``user`` (str), ``item`` (str),
``ts`` (float, unix seconds) and ``weight`` (float), so evaluation never sees a file format.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl

RECBOLE_INSTALL_HINT = (
    "MovieLens-100k is read from the 'recbole' package, which is not installed. "
    "Install it into the virtualenv only with: uv pip install --no-deps recbole==1.2.1 "
    "(research-use licence: never commit the data)."
)

MODEL_SCHEMA = {"user": pl.String, "item": pl.String, "ts": pl.Float64, "weight": pl.Float64}


class DatasetError(RuntimeError):
    """A data set is missing or malformed; the message says how to fix it."""


def movielens_100k_path() -> Path:
    """Path of ``ml-100k.inter`` inside the installed recbole package.

    recbole is installed with ``--no-deps``, so importing it fails: only its location is looked up.
    """
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(RECBOLE_INSTALL_HINT)
    for location in spec.submodule_search_locations:
        path = Path(location) / "dataset_example" / "ml-100k" / "ml-100k.inter"
        if path.is_file():
            return path
    raise DatasetError(f"recbole is installed but has no dataset_example/ml-100k. {RECBOLE_INSTALL_HINT}")


def load_movielens_100k() -> pl.DataFrame:
    """MovieLens-100k where every rating counts as one positive interaction (weight 1.0)."""
    path = movielens_100k_path()
    raw = pl.read_csv(path, separator="\t", infer_schema=False)
    # The header is typed (``user_id:token``): keep the name before the colon.
    raw = raw.rename({name: name.split(":", 1)[0] for name in raw.columns})
    return raw.select(
        pl.col("user_id").alias("user"),
        pl.col("item_id").alias("item"),
        pl.col("timestamp").cast(pl.Float64).alias("ts"),
        pl.lit(1.0).alias("weight"),
    )


def load_interactions_csv(path: str | Path) -> pl.DataFrame:
    """An interactions CSV with header ``user,item,timestamp[,weight]`` (weight defaults to 1.0)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"No such interactions file: {path}")
    raw = pl.read_csv(path, infer_schema=False)
    missing = {"user", "item", "timestamp"} - set(raw.columns)
    if missing:
        raise DatasetError(f"{path} lacks column(s) {sorted(missing)}; expected header user,item,timestamp[,weight]")
    weight = pl.col("weight").cast(pl.Float64) if "weight" in raw.columns else pl.lit(1.0)
    try:
        return raw.select(
            pl.col("user"),
            pl.col("item"),
            pl.col("timestamp").cast(pl.Float64).alias("ts"),
            weight.alias("weight"),
        )
    except pl.exceptions.InvalidOperationError as exc:
        raise DatasetError(f"{path}: timestamp and weight must be numbers ({exc})") from exc


def load_dataset(name: str) -> pl.DataFrame:
    """``ml-100k`` or the path of an interactions CSV."""
    if name.lower() in {"ml-100k", "ml100k", "movielens-100k"}:
        return load_movielens_100k()
    return load_interactions_csv(name)
