"""How much CPU other work took while we measured (this 2-core machine is shared with test runs).

A benchmark on a busy machine measures the neighbours. Each run records the cores used by
processes that are not the bench's: not the server's process group, not the harness and its wrk,
not a Postgres backend of the bench database, not Postgres' and Redis' own service processes.
Other engineers' pytest workers (and their ``mkt_test_*`` Postgres backends) count as foreign.
``wait_quiet`` holds a measurement back until the neighbours are quiet (or gives up and says so).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
SHARED_SERVICES = ("postgres: 15/main: checkpointer", "background writer", "walwriter", "redis-server",
                   "autovacuum launcher", "logical replication launcher", "stats collector")  # fmt: skip


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (process group, command line, CPU seconds so far)."""
    found: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[2]), command, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


class Neighbours:
    """CPU of foreign processes between ``start`` and ``stop``, in cores."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.own_groups: set[int] = {os.getpgid(0)}
        self._before: dict[int, tuple[int, str, float]] = {}
        self._started = 0.0
        self._busy_before = 0.0
        self.server_group: int | None = None

    def ours(self, group: int, command: str) -> bool:
        return (
            group in self.own_groups
            or (command.startswith("postgres:") and f" {self.database} " in command)
            or any(service in command for service in SHARED_SERVICES)
            or command.startswith("postgres: 15/main: autovacuum worker")
        )

    def start(self, server_group: int | None = None) -> None:
        """``server_group``: the measured server's process group, whose CPU ``stop`` reports apart."""
        self.server_group = server_group
        self._busy_before = _busy_seconds()
        self._before = _processes()
        self._started = time.monotonic()

    def stop(self) -> dict[str, object]:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        usage: dict[str, float] = {}
        own: dict[str, float] = {}
        for pid, (group, command, cpu) in _processes().items():
            used = cpu - self._before.get(pid, (0, "", 0.0))[2]
            if self.ours(group, command):
                if used > 0:
                    part = _own_part(group, command, self.server_group)
                    own[part] = own.get(part, 0.0) + used
                continue
            if used > 0:
                name = command.split(" -")[0][:60] or str(pid)
                usage[name] = usage.get(name, 0.0) + used / elapsed
        top = sorted(usage.items(), key=lambda item: -item[1])[:3]
        # Processes that ended meanwhile (wrk, pgbench and its backends) are missing above: what the
        # whole machine was busy for, less the neighbours, is the measured setup's total.
        own["all"] = max(_busy_seconds() - self._busy_before - sum(usage.values()) * elapsed, 0.0)
        return {
            "foreign_cores": round(sum(usage.values()), 2),
            "foreign_top": [(n, round(c, 2)) for n, c in top],
            "own_cpu_seconds": {part: round(seconds, 3) for part, seconds in sorted(own.items())},
        }

    def wait_quiet(self, max_wait: float, threshold: float = 0.2) -> float:
        """Wait (sampling 1 s at a time) until foreign CPU < ``threshold`` cores; the last sample."""
        deadline = time.monotonic() + max_wait
        while True:
            self.start()
            time.sleep(1)
            cores = float(self.stop()["foreign_cores"])  # type: ignore[arg-type]
            if cores < threshold or time.monotonic() >= deadline:
                return cores


def _busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``: everything but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


def _own_part(group: int, command: str, server_group: int | None) -> str:
    """Which part of the measured setup a process of ours is: the server under test, the
    database, Redis, or the harness (wrk, pgbench, this script)."""
    if group == server_group:
        return "server"
    if command.startswith("postgres"):
        return "postgres"
    if "redis-server" in command:
        return "redis"
    return "harness"
