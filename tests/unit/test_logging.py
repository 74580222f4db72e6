"""The API process logs through the project's renderer (JSON lines when LOG_JSON is on)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import logging
from entrypoints.http.app import create_app
create_app()
logging.getLogger("marketplace.probe").warning("probe %s", 1)
logging.getLogger("saq").info("Enqueuing Job<...>")
logging.getLogger("saq").warning("saq trouble")
"""


def test_the_app_keeps_json_logging_and_silences_per_job_queue_chatter(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "REDIS_URL": "",
        "APP_ENV": "development",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    events = {line["event"]: line for line in lines}
    assert events["probe 1"]["level"] == "warning"
    assert events["probe 1"]["logger"] == "marketplace.probe"
    assert "saq trouble" in events
    assert "Enqueuing Job<...>" not in result.stdout + result.stderr
