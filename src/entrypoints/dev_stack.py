"""`marketplace dev-services` (`make run-pg`): the production shape on one machine, without Docker.

A Postgres and a Redis of our own (``entrypoints.devservices``, data kept in ``var/dev-services``
between runs), the database migrated, the SAQ worker as its own process and the API served on
them. Ctrl-C (or SIGTERM) stops the API and the worker, then the servers; if this process dies
outright, the devservices watchdog still stops the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from entrypoints.devservices import EmbeddedPostgres, EmbeddedRedis

DATABASE = "marketplace"
PREFERRED_PORTS = (55432, 56379)  # stable URLs between runs when they are free
CHILD_STOP_SECONDS = 20.0
# What `make run` sets too: a developer's stack, demo data in an empty database, readable logs.
DEVELOPMENT_DEFAULTS = {"APP_ENV": "development", "SEED_DEMO_DATA": "true", "LOG_JSON": "false"}
_CLI = "from entrypoints.cli import main; main()"


def _port(preferred: int, saved: Path) -> int:
    """The port used last time, else the preferred one, else any free one."""
    from entrypoints.devservices import free_port

    with contextlib.suppress(OSError, ValueError):
        preferred = int(saved.read_text())
    return preferred if _free(preferred) else free_port()


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is fine
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _ensure_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.contextmanager
def _child(args: list[str], env: dict[str, str], log: Path | None, pidfile: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A marketplace subcommand as a child process, stopped (SIGTERM, then SIGKILL) on exit or by the watchdog."""
    from entrypoints.devservices import stop_process, watch_process

    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else None
        proc = subprocess.Popen([sys.executable, "-c", _CLI, *args], env=env, stdout=out, stderr=out)  # noqa: S603
        watch_process(proc.pid, [_CLI, *args], pidfile)
        stack.callback(pidfile.unlink, missing_ok=True)
        try:
            yield proc
        finally:
            stop_process(proc, signal.SIGTERM, CHILD_STOP_SECONDS)


def _where(postgres: EmbeddedPostgres, redis: EmbeddedRedis, env: dict[str, str], worker_log: Path) -> str:
    host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
    rows = [
        ("API", f"http://{host}:{port}  (docs: http://{host}:{port}/docs)"),
        ("DATABASE_URL", env["DATABASE_URL"]),
        ("  data, log", f"{postgres.data_dir}, {postgres.log_file}"),
        ("REDIS_URL", env["REDIS_URL"]),
        ("  data, log", f"{redis.data_dir}, {redis.log_file}"),
        ("worker log", str(worker_log)),
        ("VAR_DIR", str(Path(env.get("VAR_DIR", "var")).absolute())),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows) + "\n  Ctrl-C stops everything."


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # SIGTERM unwinds like Ctrl-C: children first, then the servers


def run(base_dir: Path, say: Callable[[str], None] = print) -> int:
    """Start the whole stack and wait; the exit status of the first part to stop (0 on Ctrl-C)."""
    from adapters.sql.database import migrate
    from entrypoints.devservices import EmbeddedPostgres, EmbeddedRedis

    base_dir = base_dir.absolute()
    postgres = EmbeddedPostgres(base_dir / "postgres", port=_port(PREFERRED_PORTS[0], base_dir / "postgres.port"))
    redis = EmbeddedRedis(base_dir / "redis", port=_port(PREFERRED_PORTS[1], base_dir / "redis.port"))
    base_dir.mkdir(parents=True, exist_ok=True)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_signal)
    with contextlib.ExitStack() as stack:
        began = time.perf_counter()
        stack.callback(postgres.stop)
        stack.callback(redis.stop)
        redis.start()
        postgres.start()
        (base_dir / "postgres.port").write_text(str(postgres.port))
        (base_dir / "redis.port").write_text(str(redis.port))
        asyncio.run(_ensure_database(postgres.url, DATABASE))
        env = {**DEVELOPMENT_DEFAULTS, **os.environ}
        env["DATABASE_URL"] = postgres.url.rsplit("/", 1)[0] + f"/{DATABASE}"
        env["REDIS_URL"] = redis.url
        migrate(env["DATABASE_URL"])
        say(f"Postgres and Redis up and migrated in {time.perf_counter() - began:.1f} s")
        worker_log = base_dir / "worker.log"
        worker = stack.enter_context(
            _child(["worker", "--alive-file", str(base_dir / "worker-alive")], env, worker_log, base_dir / "worker.pid")
        )
        api = stack.enter_context(_child(["serve", "--no-migrate"], env, None, base_dir / "api.pid"))
        say(_where(postgres, redis, env, worker_log))
        try:
            while True:
                for name, proc in (("API", api), ("worker", worker)):
                    if proc.poll() is not None:
                        say(f"the {name} stopped (exit status {proc.returncode}); stopping the rest")
                        return proc.returncode or 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
            say("stopping the API, the worker, Redis and Postgres")
            return 0
