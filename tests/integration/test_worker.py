"""The worker process, the outbox relay on SQL, and the Redis outage path of the job queue."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis as SyncRedis
from sqlalchemy import select, update

from adapters.jobs.saq_queue import SaqJobQueue
from adapters.sql.tables import OutboxRow, table_of
from application.jobs import SEND_WELCOME
from application.ports.errors import Unavailable
from application.use_cases.outbox import RelayOutbox
from entrypoints.schedule import PeriodicTasks, Scheduled
from entrypoints.wiring import Container
from entrypoints.worker import SHUTDOWN_GRACE_SECONDS
from tests.conftest import REDIS_URL, test_settings
from tests.integration.queues import clear_queue, queue_name
from tests.unit.fakes import RecordingQueue

O = table_of(OutboxRow)  # noqa: E741
PW = "correct horse battery"


async def _rows(container: Any) -> dict[uuid.UUID, Any]:
    async with container.adapters.requests.db.engine.connect() as conn:
        return {row.id: row for row in (await conn.execute(select(O))).all()}


async def _set(container: Any, outbox_id: uuid.UUID, **values: Any) -> None:
    async with container.adapters.requests.db.engine.begin() as conn:
        await conn.execute(update(O).where(O.c.id == outbox_id).values(**values))


async def _add(container: Any, n: int, *, released: bool = True) -> list[uuid.UUID]:
    """Rows as a unit of work writes them (claimed by it), by default then released by their
    writer (the queue refused them): the relay's to send once its grace is over."""
    async with container.adapters.requests.uow() as uow:
        ids = [await uow.outbox.add(SEND_WELCOME, {"user_id": str(uuid.uuid4())}) for _ in range(n)]
        await uow.commit()
    if released:
        await container.adapters.requests.outbox.unclaim(ids)
    return ids


async def test_relay_on_sql(container: Any) -> None:
    """Which rows the relay picks, and that racing relays claim each row once (SQLite and Postgres)."""
    now = datetime.now(UTC)
    fresh, lost, stale, recent, done, dead = await _add(container, 6)
    hour_ago = now - timedelta(hours=1)
    for row_id in (lost, stale, recent, done, dead):
        await _set(container, row_id, created_at=hour_ago)
    await _set(container, stale, dispatched_at=now - timedelta(minutes=6))
    await _set(container, recent, dispatched_at=now - timedelta(minutes=1))
    await _set(container, done, processed_at=now)
    await _set(container, dead, attempts=30)  # the default cap
    queue = RecordingQueue()
    relay = RelayOutbox(container.adapters.requests.outbox, queue, container.adapters.clock)
    assert await relay.execute() == 2
    assert sorted(key for _, _, key in queue.jobs) == sorted([f"outbox:{lost}", f"outbox:{stale}"])
    rows = await _rows(container)
    assert rows[lost].dispatched_at is not None and rows[fresh].dispatched_at is None
    assert await relay.execute() == 0
    [claimed] = await _add(container, 1, released=False)  # its writer died before dispatching it
    await _set(container, claimed, created_at=hour_ago, dispatched_at=now - timedelta(minutes=1))
    assert await relay.execute() == 0  # the writer's claim is not stale yet
    await _set(container, claimed, dispatched_at=now - timedelta(minutes=3))
    assert await relay.execute() == 1 and queue.jobs[-1][2] == f"outbox:{claimed}"

    queue.jobs.clear()
    many = await _add(container, 30)
    for row_id in many:
        await _set(container, row_id, created_at=hour_ago)
    relays = [
        RelayOutbox(container.adapters.requests.outbox, queue, container.adapters.clock, batch_size=7) for _ in range(3)
    ]
    counts = await asyncio.gather(*(r.execute() for r in relays))
    assert sum(counts) == 30 and len({key for _, _, key in queue.jobs}) == 30

    queue.down = True  # enqueue fails: the claimed rows are released for the next run
    one = (await _add(container, 1))[0]
    await _set(container, one, created_at=hour_ago)
    assert await relay.execute() == 0
    assert (await _rows(container))[one].dispatched_at is None


async def test_registration_survives_a_dead_redis_and_the_relay_catches_up(sqlite_url: str, tmp_path: Path) -> None:
    settings = test_settings(DATABASE_URL=sqlite_url, VAR_DIR=str(tmp_path / "var"), REDIS_URL="redis://127.0.0.1:1/0")
    container = Container(settings)
    try:
        assert isinstance(container.adapters.queue, SaqJobQueue)
        started = time.perf_counter()
        await container.use_cases.auth.register.execute(username="eve", email="eve@example.com", password=PW)
        assert time.perf_counter() - started < 1.5  # fails fast, the request does not hang
        started = time.perf_counter()
        with contextlib.suppress(Unavailable):
            await container.adapters.queue.enqueue(SEND_WELCOME, {}, key="k")
        assert time.perf_counter() - started < 0.05  # paused after the failure: not even tried
        rows = await _rows(container)
        assert len(rows) == 2 and all(row.dispatched_at is None for row in rows.values())
        assert (await container.readiness.check())["queue"] is not None  # says what is wrong

        for row_id in rows:
            await _set(container, row_id, created_at=datetime.now(UTC) - timedelta(minutes=1))
        live = RecordingQueue()
        assert await RelayOutbox(container.adapters.requests.outbox, live, container.adapters.clock).execute() == 2
        assert {payload["outbox_id"] for _, payload, _ in live.jobs} == {str(i) for i in rows}
    finally:
        await container.shutdown()


async def test_embedded_schedule_runs_in_the_background_and_stops(container: Any) -> None:
    calls: list[float] = []

    async def tick() -> None:
        calls.append(time.perf_counter())

    async def broken() -> None:
        raise RuntimeError("boom")  # logged; the loop goes on

    periodic = PeriodicTasks(
        (Scheduled("tick", "* * * * *", 0.05, 0, tick, 1), Scheduled("broken", "* * * * *", 0.05, 0, broken, 1))
    )
    periodic.start()
    await asyncio.sleep(0.3)
    await periodic.stop()
    assert len(calls) >= 3 and periodic.runs["broken"] >= 3
    count = len(calls)
    await asyncio.sleep(0.1)
    assert len(calls) == count and not periodic.tasks


def test_worker_process_is_alive_then_stops_on_sigterm(sqlite_url: str, tmp_path: Path) -> None:
    alive = tmp_path / "alive"
    name = queue_name()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "JWT_SECRET": "x" * 48,
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": REDIS_URL,
        "JOB_QUEUE_NAME": name,
        "REDIS_KEY_PREFIX": f"{name}:",
        "VAR_DIR": str(tmp_path / "var"),
        "LOG_JSON": "false",
    }
    heartbeat_key = f"{name}:worker:heartbeat"  # what the API's /ready reads
    marketplace = Path(sys.executable).parent / "marketplace"
    process = subprocess.Popen(
        [str(marketplace), "worker", "--alive-file", str(alive), "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not alive.exists():
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "worker did not become alive"
            time.sleep(0.1)
        redis = SyncRedis.from_url(REDIS_URL)
        try:
            while (stamp := redis.get(heartbeat_key)) is None:
                assert time.monotonic() < deadline, "no heartbeat in Redis"
                time.sleep(0.1)
            assert abs(time.time() - float(stamp)) < 10
        finally:
            redis.delete(heartbeat_key)
            redis.close()
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        output, _ = process.communicate(timeout=30)
        took = time.monotonic() - stopped
    finally:
        if process.poll() is None:
            process.kill()
        asyncio.run(clear_queue(name))
    text = output.decode()
    print(f"worker stopped {took:.2f}s after SIGTERM")
    assert process.returncode == 0, text
    # Idle workers stop within the dequeue timeout (2 s) plus clean-up; well inside compose's 10 s.
    assert took < SHUTDOWN_GRACE_SECONDS, f"graceful shutdown took {took:.1f}s\n{text}"
    assert not alive.exists()
    assert "worker ready" in text and "worker stopped" in text


async def test_run_job_marks_processed_and_drops_secrets(container: Any) -> None:
    """The job side of the outbox on SQLite and Postgres, with the embedded mailer (.eml files)."""

    user = await container.use_cases.auth.register.execute(username="fay", email="fay@example.com", password=PW)
    await container.adapters.queue.drain()
    rows = await _rows(container)
    assert len(rows) == 2 and all(row.processed_at is not None for row in rows.values())
    verify = next(row for row in rows.values() if row.kind == "send_verification_email")
    assert verify.payload == {"user_id": str(user.id)} and verify.attempts == 0
    files = sorted(p.name for p in container.settings.outbox_dir.glob("*.eml"))
    assert files == sorted(f"{row_id}.eml" for row_id in rows)
    again = await container.jobs.run(verify.kind, {"outbox_id": str(verify.id), **verify.payload})
    assert again["outcome"] == "already processed"


async def test_stop_does_not_wait_for_a_housekeeping_task_that_swallowed_its_cancellation(tmp_path: Path) -> None:
    """A SIGTERM that lands while a housekeeping loop is inside a Redis call: the call catches the
    cancellation, the loop goes on to sleep its interval. Stop must not wait out the grace period."""
    from entrypoints.worker import build_worker
    from tests.conftest import REDIS_URL, test_settings

    worker = build_worker(
        test_settings(REDIS_URL=REDIS_URL, JOB_QUEUE_NAME=queue_name(), VAR_DIR=str(tmp_path / "var")),
        alive_file=tmp_path / "alive",
    )

    async def stubborn_poll() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as the Redis call did
            await asyncio.sleep(60)
        await asyncio.sleep(60)  # the poll interval

    task = asyncio.create_task(stubborn_poll())
    await asyncio.sleep(0)
    worker.tasks.add(task)
    started = time.monotonic()
    await worker.stop()
    assert task.done() and time.monotonic() - started < 2
