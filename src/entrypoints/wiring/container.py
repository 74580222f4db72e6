"""The composition root: adapters from the settings, each feature's use cases on them, and what
runs beside the requests (the job runner, the schedule, the outbox relay, the readiness checks)."""

from __future__ import annotations

from adapters.jobs.inprocess import InProcessJobQueue
from adapters.jobs.saq_queue import SaqJobQueue
from application.pagination import set_cursor_secret
from entrypoints.jobs import JobRunner
from entrypoints.readiness import Readiness
from entrypoints.schedule import PeriodicTasks, RelayLoop, Scheduled, schedule
from entrypoints.settings import Settings
from entrypoints.wiring.adapters import Adapters, build_adapters
from entrypoints.wiring.use_cases import build_use_cases


class Container:
    """Adapters and use cases for one app, worker or CLI process.

    Nothing connects while it is built; ``startup`` starts the background loops this process
    owns and ``shutdown`` stops them and closes every connection.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        set_cursor_secret(settings.jwt_secret)  # every process of the deployment signs cursors alike
        self.adapters: Adapters = build_adapters(settings)
        self.use_cases = use_cases = build_use_cases(settings, self.adapters)
        queue = self.adapters.queue
        self.jobs = JobRunner(use_cases.outbox, use_cases.webhooks)
        if isinstance(queue, InProcessJobQueue):
            queue.handler = self.jobs.run  # no worker in the embedded default: jobs run in this process
        self.schedule: tuple[Scheduled, ...] = schedule(use_cases.recommendations, use_cases.cart, use_cases.webhooks)
        self.periodic = PeriodicTasks(self.schedule)
        self.relay_loop = RelayLoop(use_cases.outbox, queue)  # started by whichever process runs the jobs
        self.readiness = Readiness(
            database_url=settings.database_url,
            replica_url=settings.database_replica_url,
            redis_url=settings.redis_url,
            queue_key=queue.depth_key if isinstance(queue, SaqJobQueue) else None,
            key_prefix=settings.redis_key_prefix,
            worker_max_age=settings.worker_heartbeat_max_age,
            local_queue_ping=queue.ping,
        )

    async def startup(self) -> None:
        if isinstance(self.adapters.queue, InProcessJobQueue):
            self.periodic.start()  # no worker in the embedded default: this process runs the schedule
            self.relay_loop.start()

    async def shutdown(self) -> None:
        await self.periodic.stop()
        await self.relay_loop.stop()
        await self.adapters.close()
        await self.readiness.close()
