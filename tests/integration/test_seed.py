"""``marketplace seed``: a generated marketplace, and ``--force`` adding a second one beside it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from entrypoints.cli import main


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("users", "categories", "products", "orders")
        }


def test_seeding_twice_needs_force_and_then_adds_users_and_products_beside_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "seed.db"
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("REDIS_URL", "")
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"]).exit_code == 0
    args = ["seed", "--size", "demo", "--users", "20", "--products", "40", "--orders", "10"]

    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    once = counts(path)
    refused = runner.invoke(main, args)
    assert refused.exit_code != 0 and "--force" in refused.output
    assert counts(path) == once

    forced = runner.invoke(main, [*args, "--force"])

    assert forced.exit_code == 0, forced.output
    twice = counts(path)
    assert twice["users"] == 2 * once["users"] and twice["products"] == 2 * once["products"]
    assert twice["categories"] == once["categories"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(DISTINCT username) FROM users").fetchone()[0] == twice["users"]
