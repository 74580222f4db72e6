"""Honest readiness and the outbox relay's loop: /ready on connections of its own, the worker's
heartbeat, the gauges in /metrics, and the relay waking within seconds of Redis coming back.

Every Redis key used here has a per-test prefix or queue name and is removed afterwards; Redis
"goes down" behind a loopback proxy this test owns, never the shared server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from adapters.jobs.heartbeat import WorkerHeartbeat
from adapters.jobs.inprocess import InProcessJobQueue
from adapters.sql.tables import OutboxRow, table_of
from entrypoints.wiring import Container
from entrypoints.worker import Heartbeat
from tests.conftest import REDIS_URL, test_settings
from tests.helpers import register
from tests.integration.queues import clear_queue, queue_name
from tests.integration.test_faults import TcpProxy, serve

OUTBOX = table_of(OutboxRow)


@contextlib.asynccontextmanager
async def redis_container(database_url: str, tmp_path: Path, **extra: str) -> AsyncIterator[Container]:
    """A container on the shared Redis under a prefix and queue of its own (removed afterwards)."""
    prefix, queue = f"test-{uuid.uuid4().hex[:8]}:", queue_name()
    env = {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": prefix, "JOB_QUEUE_NAME": queue, **extra}
    container = Container(test_settings(DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var"), **env))
    try:
        yield container
    finally:
        await container.shutdown()
        client = Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
        await clear_queue(queue)


async def test_ready_answers_on_its_own_connections_while_the_request_pool_is_exhausted(
    clean_pg_url: str, tmp_path: Path
) -> None:
    container = Container(test_settings(DATABASE_URL=clean_pg_url, VAR_DIR=str(tmp_path / "var"), DB_POOL_SIZE="1"))
    held: list[Any] = []
    try:
        async with serve(container) as c:
            assert (await c.get("/ready")).status_code == 200
            for _ in range(2):  # DB_POOL_SIZE=1: the units of work's pool holds two connections
                conn = await container.adapters.requests.db.engine.connect()
                await conn.execute(text("SELECT 1"))
                held.append(conn)
            assert container.adapters.requests.db.reads is not None
            pool = await container.adapters.requests.db.reads.pool()
            held_reads = [await pool.acquire() for _ in range(pool.get_max_size())]
            try:
                started = time.perf_counter()
                ready = await c.get("/ready")
                assert ready.status_code == 200 and time.perf_counter() - started < 1.0, ready.text
                # ... while a request that needs the pool gets a 503 within its deadline
                started = time.perf_counter()
                assert (await c.get("/api/categories")).status_code == 503
                assert time.perf_counter() - started < container.settings.request_deadline + 1
            finally:
                for connection in held_reads:
                    await pool.release(connection)
    finally:
        for conn in held:
            await conn.close()
        await container.shutdown()


async def test_ready_names_a_silent_worker_and_metrics_show_its_age(sqlite_url: str, tmp_path: Path) -> None:
    async with redis_container(sqlite_url, tmp_path) as container, serve(container) as c:
        ready = await c.get("/ready")
        assert ready.status_code == 503 and [e["field"] for e in ready.json()["errors"]] == ["worker"]
        assert ready.json()["errors"][0]["message"] == "no worker has reported"
        assert ready.headers["retry-after"]

        heartbeat = WorkerHeartbeat(container.adapters.redis, prefix=container.settings.redis_key_prefix)
        await heartbeat.beat()
        ready = await c.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": True, "cache": True, "queue": True, "worker": True}

        await heartbeat.beat(time.time() - 75)  # the last worker went quiet 75 s ago
        ready = await c.get("/ready")
        assert ready.status_code == 503 and "no worker has reported for 75 s" in ready.json()["detail"]
        metrics = (await c.get("/metrics")).text
        age = next(line for line in metrics.splitlines() if line.startswith("worker_heartbeat_age_seconds"))
        assert 74 <= float(age.split()[1]) < 80
        assert "job_queue_depth 0.0" in metrics

    async with redis_container(sqlite_url, tmp_path, WORKER_HEARTBEAT_MAX_AGE_SECONDS="0") as container:
        async with serve(container) as c:  # no worker check (an API deployed without one, e.g. make bench)
            assert (await c.get("/ready")).status_code == 200


async def test_metrics_show_the_age_of_the_oldest_pending_job(client: Any, container: Container) -> None:
    from entrypoints.http.metrics import OUTBOX_OLDEST_PENDING_AGE

    await client.get("/metrics")
    assert OUTBOX_OLDEST_PENDING_AGE._value.get() == 0.0  # nothing pending
    assert isinstance(container.adapters.queue, InProcessJobQueue)
    container.adapters.queue.handler = None  # jobs stay pending
    await register(client)
    async with container.adapters.requests.db.engine.begin() as conn:
        await conn.execute(OUTBOX.update().values(created_at=datetime.now(UTC) - timedelta(seconds=90)))
    metrics = (await client.get("/metrics")).text
    line = next(line for line in metrics.splitlines() if line.startswith("outbox_oldest_pending_age_seconds"))
    assert 89 <= float(line.split()[1]) < 100


async def test_the_heartbeat_reports_on_every_beat_and_outlives_a_failing_report(tmp_path: Path) -> None:
    reports: list[float] = []

    async def report() -> None:
        reports.append(time.perf_counter())
        if len(reports) == 2:
            raise ConnectionError("redis down")  # logged; the next beat reports again

    heartbeat = Heartbeat(tmp_path / "alive", every=0.05)
    heartbeat.start(report)
    await asyncio.sleep(0.3)
    assert (tmp_path / "alive").exists()
    await heartbeat.stop()
    assert len(reports) >= 4 and not (tmp_path / "alive").exists()


async def test_the_relay_sends_what_waited_within_seconds_of_redis_coming_back(sqlite_url: str, tmp_path: Path) -> None:
    redis = urlparse(REDIS_URL)
    proxy = TcpProxy((redis.hostname or "127.0.0.1", redis.port or 6379))
    await proxy.start()
    proxied = f"redis://127.0.0.1:{proxy.port}{redis.path or '/0'}"
    await proxy.cut()  # Redis is down from the start
    async with redis_container(sqlite_url, tmp_path, REDIS_URL=proxied) as container:
        try:
            container.relay_loop.start()
            async with serve(container) as c:
                await register(c)  # its two jobs wait in the outbox
            async with container.adapters.requests.db.engine.connect() as conn:
                rows = (await conn.execute(select(OUTBOX.c.id, OUTBOX.c.dispatched_at))).all()
            assert len(rows) == 2 and all(row.dispatched_at is None for row in rows)
            await asyncio.sleep(3)  # down a while: the relay backs off

            await proxy.start()  # Redis is back
            back = time.perf_counter()
            while time.perf_counter() - back < 8:
                async with container.adapters.requests.db.engine.connect() as conn:
                    pending = (await conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.dispatched_at.is_(None)))).all()
                if not pending:
                    break
                await asyncio.sleep(0.1)
            took = time.perf_counter() - back
            assert not pending and took < 5.0, took  # no grace, no minute-long cron tick
            assert await container.adapters.queue.depth() == 2  # both on the queue, for the worker
        finally:
            if proxy.server is not None:
                await proxy.cut()


@pytest.mark.parametrize("deadline", ["0", "-1", "x"])
def test_the_request_deadline_must_be_a_positive_number(deadline: str) -> None:
    from entrypoints.settings import SettingsError

    with pytest.raises((SettingsError, ValueError)):
        test_settings(REQUEST_DEADLINE_SECONDS=deadline)


async def test_a_job_failed_by_a_postgres_outage_is_counted_once_postgres_answers(pg_url: str, tmp_path: Path) -> None:
    """The outbox keeps its books through an outage: the attempt that failed because the database
    was gone is written (attempts, last_error) by the relay's next tick once it answers again."""
    from tests.conftest import _truncate

    await _truncate(pg_url)
    target = urlparse(pg_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 5432))
    await proxy.start()
    via_proxy = target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}").geturl()
    container = Container(test_settings(DATABASE_URL=via_proxy, VAR_DIR=str(tmp_path / "var")))
    try:
        assert isinstance(container.adapters.queue, InProcessJobQueue)
        container.adapters.queue.handler = None  # the test runs the job itself
        await container.use_cases.auth.register.execute(username="ivy", email="ivy@example.com", password="x" * 12)
        async with container.adapters.requests.db.engine.connect() as conn:
            row = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "send_welcome_email"))).one()
        await proxy.cut()  # Postgres is gone
        with pytest.raises(Exception):
            await container.jobs.run(row.kind, {"outbox_id": str(row.id), **row.payload})
        await proxy.start()  # back
        from entrypoints.jobs import relay_outbox

        await relay_outbox(container.use_cases.outbox)  # the relay's tick writes what the database missed
        async with container.adapters.jobs.db.engine.connect() as conn:
            after = (await conn.execute(select(OUTBOX).where(OUTBOX.c.id == row.id))).one()
        assert after.attempts == 1 and after.processed_at is None and after.last_error
        assert (await container.jobs.run(row.kind, {"outbox_id": str(row.id), **row.payload}))["outcome"] == "sent"
    finally:
        await container.shutdown()
        if proxy.server is not None:
            await proxy.cut()
