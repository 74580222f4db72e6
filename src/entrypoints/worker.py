"""The background worker (``marketplace worker``): SAQ on Redis runs the outbox jobs and cron work.

- job functions: one per job kind, all through ``entrypoints.jobs.JobRunner.run`` (idempotent);
  per-kind timeouts and retries with exponential backoff are set at enqueue time;
- cron: webhook retries every 5 seconds, the recommendation model every 15 minutes, popular items
  every 5 minutes, the guest-cart purge every hour (``entrypoints.schedule.schedule``); the outbox
  relay runs as a loop of its own every few seconds (``entrypoints.schedule.RelayLoop``); SAQ keys
  cron jobs per queue, so several worker replicas run each tick once; a fresh install's first model
  is built right after start-up;
- graceful shutdown on SIGTERM/SIGINT: no new jobs are taken, running ones get
  ``SHUTDOWN_GRACE_SECONDS`` to finish, then are cancelled and go back on the queue (they are
  idempotent, so running one again is safe);
- liveness: ``/tmp/worker-alive`` is rewritten, and a heartbeat written to Redis (read by the
  API's ``/ready`` and ``/metrics``), every ``HEARTBEAT_SECONDS`` while the event loop runs (a
  stuck loop stops refreshing them); the file is removed on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from saq import CronJob, Worker
from saq.types import Context, PartialTimersDict, SettingsDict

from adapters.jobs.heartbeat import WorkerHeartbeat
from adapters.jobs.saq_queue import worker_redis_queue
from adapters.tasks import cancel_and_wait
from application.jobs import JOB_POLICIES
from entrypoints.jobs import JobRunner
from entrypoints.schedule import Scheduled
from entrypoints.settings import Settings
from entrypoints.wiring import Container

log = logging.getLogger(__name__)

ALIVE_FILE = Path("/tmp/worker-alive")  # noqa: S108 - the path compose's healthcheck reads
HEARTBEAT_SECONDS = 5.0
DEQUEUE_TIMEOUT = 2.0
SHUTDOWN_GRACE_SECONDS = 8


class Heartbeat:
    """Keeps the liveness file fresh (its mtime) while the event loop turns, and reports to Redis
    (``report``, what ``/ready`` and ``/metrics`` read) on the same beat."""

    def __init__(self, path: Path, every: float = HEARTBEAT_SECONDS) -> None:
        self.path = path
        self.every = every
        self._task: asyncio.Task[None] | None = None
        self._report: Callable[[], Awaitable[None]] | None = None

    def start(self, report: Callable[[], Awaitable[None]] | None = None) -> None:
        self._report = report
        self._task = asyncio.create_task(self._beat(), name="worker-heartbeat")

    async def _beat(self) -> None:
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(f"{time.time():.0f} pid={os.getpid()}\n")
            except OSError:
                log.warning("cannot write the liveness file %s", self.path)
            if self._report is not None:
                try:
                    async with asyncio.timeout(min(1.0, self.every)):
                        await self._report()
                except Exception:  # Redis is down: the API's /ready says so; the loop goes on
                    log.debug("could not report the heartbeat to Redis", exc_info=True)
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.path.unlink(missing_ok=True)


class MarketplaceWorker(Worker[Context]):
    """SAQ's worker, stopping its housekeeping loops at once on shutdown.

    ``Worker.stop`` waits up to the grace period for *all* its tasks, and its sweep loop sleeps
    for a minute, so every shutdown would take the whole grace period. Only job-processing tasks
    deserve that wait; the housekeeping ones are cancelled first.
    """

    async def stop(self) -> None:
        housekeeping = {task for task in self.tasks if task.get_name() != "process"}
        # Cancelled again while any is left: a task can swallow one cancellation (a Redis call it
        # interrupts catches it) and then sleep out its poll interval (a minute for the sweep),
        # which would hold the shutdown for the whole grace period.
        for _ in range(5):
            for task in housekeeping:
                task.cancel()
            _, housekeeping = await asyncio.wait(housekeeping, timeout=0.2) if housekeeping else (set(), set())
            if not housekeeping:
                break
        await super().stop()


async def _run_what_is_due_now(schedule: tuple[Scheduled, ...]) -> None:
    """Each scheduled job whose ``due_now`` says so runs right after start-up (a fresh install's
    first recommendation model), not at its next cron tick."""
    for item in schedule:
        try:
            if item.due_now is not None and await item.due_now():
                await item.run()
        except Exception:
            log.exception("the start-up run of %s failed; its cron job will retry", item.name)


def _job_function(jobs: JobRunner, kind: str) -> Any:
    async def handle(ctx: Context, *, payload: dict[str, Any]) -> dict[str, str]:
        return await jobs.run(kind, payload)

    handle.__qualname__ = handle.__name__ = kind
    return handle


def _cron_function(item: Scheduled) -> Any:
    async def run(ctx: Context) -> Any:
        result = await item.run()
        return result if isinstance(result, (int, float, str, dict, list)) else None

    # SAQ names (and de-duplicates) cron jobs by the function's qualified name.
    run.__qualname__ = run.__name__ = item.name
    return run


async def _bind_job(ctx: Context) -> None:
    job = ctx.get("job")
    if job is not None:
        structlog.contextvars.bind_contextvars(job_key=job.key, job_kind=job.function)


async def _unbind_job(ctx: Context) -> None:
    structlog.contextvars.unbind_contextvars("job_key", "job_kind")


def worker_settings(
    settings: Settings, *, concurrency: int | None = None, alive_file: Path = ALIVE_FILE
) -> SettingsDict[Context]:
    """SAQ's settings dict: queue, job functions, cron jobs, hooks, concurrency and timers.

    The container is built here (nothing connects before start-up) because the job and cron
    functions SAQ is given are its job runner's and its schedule's."""
    if not settings.redis_url:
        raise RuntimeError("the worker needs REDIS_URL; without it the API process runs jobs itself")
    queue = worker_redis_queue(settings.redis_url, settings.job_queue_name, dequeue_timeout=DEQUEUE_TIMEOUT)
    container = Container(settings)
    heartbeat = Heartbeat(alive_file)
    due_now: list[asyncio.Task[None]] = []

    async def startup(ctx: Context) -> None:
        await container.startup()
        heartbeat.start(WorkerHeartbeat(container.adapters.redis, prefix=settings.redis_key_prefix).beat)
        container.relay_loop.start()
        due_now.append(asyncio.create_task(_run_what_is_due_now(container.schedule), name="scheduled-jobs-due-now"))
        log.info("worker ready on queue %r", queue.name)

    async def shutdown(ctx: Context) -> None:
        await heartbeat.stop()
        await cancel_and_wait(*due_now)
        await container.shutdown()
        log.info("worker stopped")

    return SettingsDict(
        queue=queue,
        functions=[(kind, _job_function(container.jobs, kind)) for kind in JOB_POLICIES],
        concurrency=concurrency or settings.worker_concurrency,
        cron_jobs=[
            CronJob(_cron_function(item), cron=item.cron, timeout=item.timeout_seconds, retries=1)
            for item in container.schedule
        ],
        startup=startup,
        shutdown=shutdown,
        before_process=_bind_job,
        after_process=_unbind_job,
        dequeue_timeout=DEQUEUE_TIMEOUT,
        timers=PartialTimersDict(schedule=1, worker_info=10, sweep=30, abort=1),
    )


def saq_settings() -> SettingsDict[Context]:
    """For SAQ's own CLI, e.g. ``saq entrypoints.worker.saq_settings --web`` (its monitoring UI)."""
    return worker_settings(Settings.from_env())


def build_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    alive_file: Path = ALIVE_FILE,
    shutdown_grace_seconds: int = SHUTDOWN_GRACE_SECONDS,
) -> MarketplaceWorker:
    return MarketplaceWorker(
        **worker_settings(settings, concurrency=concurrency, alive_file=alive_file),
        shutdown_grace_period_s=shutdown_grace_seconds,
    )


async def run_worker(settings: Settings, **options: Any) -> None:
    """Run until SIGTERM/SIGINT (SAQ installs the handlers), then shut down gracefully."""
    worker = build_worker(settings, **options)
    await worker.queue.connect()
    try:
        await worker.start()
    finally:
        try:
            await worker.queue.disconnect()
        except Exception:  # Redis already gone: nothing left to close cleanly
            log.warning("could not disconnect from Redis cleanly")


def main(settings: Settings, **options: Any) -> None:
    from entrypoints.observability import configure_logging

    configure_logging(settings)
    asyncio.run(run_worker(settings, **options))
