"""Load from a second process: wrk (C, 2 threads) with ``rotate.lua`` over a file of requests.

wrk rather than a Python client because on a 2-core machine the load generator shares the CPU
with the server: wrk spends a small fraction of what an asyncio client would per request, so the
numbers describe the server, not the client. Closed loop: ``connections`` requests in flight.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROTATE = Path(__file__).with_name("rotate.lua")


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def line(self) -> str:
        headers = "|".join(f"{k}: {v}" for k, v in self.headers.items())
        for text in (self.path, headers, self.body):
            if "\t" in text or "\n" in text:
                raise ValueError(f"tab or newline in a request: {text[:80]!r}")
        return f"{self.method}\t{self.path}\t{headers}\t{self.body}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_requests(path: Path, requests: Iterable[Req]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r.line() for r in requests]
    if not lines:
        raise ValueError(f"no requests for {path.name}")
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    base_url: str, requests_file: Path, *, duration: float, connections: int, threads: int = 2
) -> dict[str, float]:
    """One closed-loop run; req/s, latency percentiles (ms) and error counts."""
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(ROTATE),
        base_url,
        "--",
        str(requests_file),
        str(threads),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = raw["status"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "status_errors": raw["status"],
        "socket_errors": errors - raw["status"],
        "lines": raw["lines"],
        "kb_per_request": raw["bytes"] / max(raw["requests"], 1) / 1024,
    }
