"""``make faults --short``: the fault run itself, on servers it starts and throws away.

Marked ``devservices``: it runs where ``entrypoints.devservices`` can start a Postgres and a Redis
(the lock file's dev group), and is skipped elsewhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.devservices


def _devservices_available() -> bool:
    try:
        from entrypoints.devservices import postgres_install, redis_server_binary

        postgres_install()
        redis_server_binary()
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _devservices_available(), reason="entrypoints.devservices cannot start servers here")
def test_the_short_fault_run_passes() -> None:
    done = subprocess.run(
        # Few clients: the run shares the machine with the rest of the suite (timing-sensitive tests).
        [sys.executable, "-m", "bench.faults", "--short", "--clients", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for fault in ("table-lock", "redis-down", "pg-restart", "api-kill"):
        assert fault in done.stdout
    assert "ok   one order per idempotency key" in done.stdout and "ok   outbox drained" in done.stdout
