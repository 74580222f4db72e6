"""The results table, the ratios to the reference twins, the targets, and the saved JSON/Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# project endpoint -> (server, endpoint) of its fastest reference twin
TWINS = {
    "health": ("raw", "const"),
    "detail": ("raw", "detail"),
    "detail_cached": ("raw", "redis"),
    "categories": ("raw", "categories"),
    "list": ("raw", "list"),
    "list_deep": ("raw", "list_deep"),
    "search": ("raw", "search"),
    # the database's limit: pgbench running the same statements (bench/pgbench_limit.py)
    "cart_add": ("pgbench", "cart_add"),
    "checkout": ("pgbench", "checkout"),
}
# project endpoint -> FastAPI + ORM endpoint doing the same job (it has no cache: detail for both)
FASTAPI_TWINS = {
    "detail": "detail",
    "detail_cached": "detail",
    "categories": "categories",
    "list": "list",
    "list_deep": "list_deep",
    "search": "search",
    "cart": "cart",
    "cart_add": "cart_add",
    "checkout": "checkout",
}
TWIN_TARGETS = {
    "detail": 0.8,
    "list": 0.8,
    "list_deep": 0.8,
    "detail_cached": 1.0,
    "cart_add": 0.5,
    "checkout": 0.5,
}
# project endpoint -> (another project endpoint of the same run, least ratio)
SAME_RUN_TARGETS = {"feed": ("list", 0.5)}
# project endpoint -> (least req/s, greatest p99 ms) where an issue sets its own bar
ENDPOINT_TARGETS = {"feed": (2_000.0, 50.0)}
FASTAPI_TARGET = 2.5
P99_TARGET_MS = 100.0


def _ratio(results: dict[str, dict[str, Any]], mine: dict[str, Any], other: str) -> float | None:
    twin = results.get(other)
    if not twin or twin.get("status") != "ok" or mine.get("status") != "ok" or not twin["rps"]:
        return None
    return float(mine["rps"]) / float(twin["rps"])


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    """``results`` is keyed "server:endpoint"; project rows get ``vs_twin``/``vs_fastapi``."""
    for key, row in results.items():
        server, endpoint = key.split(":", 1)
        if server != "project":
            continue
        twin = TWINS.get(endpoint)
        row["twin"] = f"{twin[0]}:{twin[1]}" if twin else None
        row["vs_twin"] = _ratio(results, row, row["twin"]) if twin else None
        fast = FASTAPI_TWINS.get(endpoint)
        row["vs_fastapi"] = _ratio(results, row, f"fastapi:{fast}") if fast else None


def check_targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target, and whether it holds today (None: not measured)."""
    checks: list[dict[str, Any]] = []
    project = {k.split(":", 1)[1]: v for k, v in results.items() if k.startswith("project:")}
    for endpoint, floor in TWIN_TARGETS.items():
        row = project.get(endpoint, {})
        ratio = row.get("vs_twin")
        twin = TWINS[endpoint]
        checks.append(
            {
                "target": f"{endpoint} ≥ {floor}× {twin[0]}:{twin[1]}",
                "value": None if ratio is None else f"{ratio:.2f}×",
                "holds": None if ratio is None else ratio >= floor,
            }
        )
    for endpoint, row in project.items():
        if endpoint in FASTAPI_TWINS:
            ratio = row.get("vs_fastapi")
            checks.append(
                {
                    "target": f"{endpoint} ≥ {FASTAPI_TARGET}× fastapi:{FASTAPI_TWINS[endpoint]}",
                    "value": None if ratio is None else f"{ratio:.2f}×",
                    "holds": None if ratio is None else ratio >= FASTAPI_TARGET,
                }
            )
    for endpoint, (other, floor) in SAME_RUN_TARGETS.items():
        ratio = _ratio(results, project.get(endpoint, {}), f"project:{other}")
        checks.append(
            {
                "target": f"{endpoint} ≥ {floor}× project:{other}",
                "value": None if ratio is None else f"{ratio:.2f}×",
                "holds": None if ratio is None else ratio >= floor,
            }
        )
    for endpoint, (least_rps, most_p99) in ENDPOINT_TARGETS.items():
        row = project.get(endpoint, {})
        measured = row.get("status") == "ok"
        checks.append(
            {
                "target": f"{endpoint} ≥ {least_rps:,.0f} req/s",
                "value": f"{row['rps']:,.0f}" if measured else None,
                "holds": row["rps"] >= least_rps if measured else None,
            }
        )
        checks.append(
            {
                "target": f"{endpoint} p99 < {most_p99:.0f} ms",
                "value": f"{row['p99_ms']:.1f} ms" if measured else None,
                "holds": row["p99_ms"] < most_p99 if measured else None,
            }
        )
    for endpoint, row in project.items():
        if row.get("status") != "ok":
            continue
        checks.append(
            {
                "target": f"{endpoint} p99 < {P99_TARGET_MS:.0f} ms",
                "value": f"{row['p99_ms']:.1f} ms",
                "holds": row["p99_ms"] < P99_TARGET_MS,
            }
        )
        checks.append({"target": f"{endpoint} zero errors", "value": str(row["errors"]), "holds": row["errors"] == 0})
    return checks


def _num(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table (also what the terminal shows)."""
    head = (
        "| server | endpoint | req/s | p50 ms | p99 ms | errors | SQL/req | DB round trips | Redis/req "
        "| vs twin | vs FastAPI | other CPU | req/s per round |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]
    for key, row in results.items():
        server, endpoint = key.split(":", 1)
        count = row.get("count") or {}
        if row.get("status") != "ok":
            status = " ".join(str(row.get("status", "?")).split()).replace("|", "/")
            lines.append(f"| {server} | {endpoint} | {status} | | | | | | | | | | |")
            continue
        twin = f"{row['vs_twin']:.2f}× {row['twin'].split(':')[1]}" if row.get("vs_twin") is not None else ""
        fast = f"{row['vs_fastapi']:.2f}×" if row.get("vs_fastapi") is not None else ""
        lines.append(
            f"| {server} | {endpoint} | {row['rps']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} "
            f"| {row['errors']} | {_num(count.get('sql'), 'd')} | {_num(count.get('round_trips'), 'd')} "
            f"| {_num(count.get('redis'), 'd')} | {twin} | {fast} | {_num(row.get('foreign_cores'), '.2f')} "
            f"| {' / '.join(f'{rps:,}' for rps in row.get('rounds_rps', []))} |"
        )
    return "\n".join(lines)


def targets_table(checks: list[dict[str, Any]]) -> str:
    lines = ["| target | today | holds |", "|---|--:|:-:|"]
    for check in checks:
        mark = {True: "yes", False: "**no**", None: "n/a"}[check["holds"]]
        lines.append(f"| {check['target']} | {check['value'] or '–'} | {mark} |")
    return "\n".join(lines)


def save(directory: Path, run: dict[str, Any]) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "results.json"
    json_path.write_text(json.dumps(run, indent=2, default=str) + "\n")
    md = [
        f"# Benchmark {run['started']}",
        "",
        run["setup"],
        "",
        table(run["results"]),
        "",
        "## Targets",
        "",
        targets_table(run["targets"]),
        "",
        "## Notes",
        "",
        *[f"- {note}" for note in run["notes"]],
        "",
        "## SQL per request (counting pass, one request at a time)",
        "",
    ]
    for key, row in run["results"].items():
        count = row.get("count")
        if count:
            md.append(
                f"- **{key}**: {count['sql']} SQL, {count['transaction']} transaction control, "
                f"{count['ping']} pings, {count['round_trips']} round trips, Redis {count['redis_commands']}"
                f"; background after the response: {count.get('background_sql', 0)} SQL"
            )
            md.extend(f"    - `{sql}`" for sql in count["statements"])
    md_path = directory / "results.md"
    md_path.write_text("\n".join(md) + "\n")
    return json_path, md_path
