"""``marketplace recommend evaluate``: the table and the ``--json`` lines carry the same metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.recommend_cli import recommend

JSON_KEYS = {"protocol", "method", "precision", "recall", "ndcg", "map", "coverage", "fit_seconds", "users"}


@pytest.fixture
def interactions_csv(tmp_path: Path) -> Path:
    """30 users with 7 items each out of 12, some with a weight column."""
    lines = ["user,item,timestamp,weight"]
    for user in range(30):
        lines += [f"u{user},i{(user + n) % 12},{n},1" for n in range(6)]
        lines.append(f"u{user},i{(user * 7 + 3) % 12},10,2")
    path = tmp_path / "interactions.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_json_prints_one_object_per_protocol_and_method(interactions_csv: Path) -> None:
    args = ["evaluate", "--dataset", str(interactions_csv), "--method", "sar", "--json"]
    result = CliRunner().invoke(recommend, args)

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["protocol"], r["method"]) for r in records] == [
        ("random", "item-to-item (sar)"),
        ("random", "popularity"),
        ("chrono", "item-to-item (sar)"),
        ("chrono", "popularity"),
    ]
    for record in records:
        assert set(record) >= JSON_KEYS
        assert record["users"] == 30
        for metric in ("precision", "recall", "ndcg", "map", "coverage"):
            assert 0.0 <= record[metric] <= 1.0
        assert record["fit_seconds"] >= 0.0
    assert "interactions" in result.stderr  # the summary line stays off stdout


def test_json_matches_the_table(interactions_csv: Path) -> None:
    args = ["evaluate", "--dataset", str(interactions_csv), "--method", "sar", "--protocol", "chrono"]
    table = CliRunner().invoke(recommend, args)
    lines = CliRunner().invoke(recommend, [*args, "--json"])

    assert table.exit_code == 0 and lines.exit_code == 0
    for record in map(json.loads, lines.stdout.splitlines()):
        row = next(line for line in table.stdout.splitlines() if record["method"] in line)
        assert f"{record['ndcg']:.4f}" in row and f"{record['map']:.4f}" in row


def test_a_malformed_csv_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("user,item\nu1,i1\n")

    result = CliRunner().invoke(recommend, ["evaluate", "--dataset", str(path), "--json"])

    assert result.exit_code != 0
    assert "timestamp" in result.output
    assert "{" not in result.stdout


def test_ease_smoothing_option_reaches_the_model(interactions_csv: Path) -> None:
    base = ["evaluate", "--dataset", str(interactions_csv), "--method", "ease", "--protocol", "random", "--json"]
    smoothed = CliRunner().invoke(recommend, base)
    plain = CliRunner().invoke(recommend, [*base, "--ease-smoothing", "0"])

    assert smoothed.exit_code == 0 and plain.exit_code == 0, smoothed.output + plain.output
    assert all(json.loads(line)["method"] == "item-to-item (ease)" for line in smoothed.stdout.splitlines()[:1])
    assert len(plain.stdout.splitlines()) == len(smoothed.stdout.splitlines()) == 2
