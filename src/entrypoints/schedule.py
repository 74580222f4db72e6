"""Scheduled work: webhook retries, the recommendation refreshes, the guest-cart purge, and the outbox
relay's loop.

With Redis, the SAQ worker runs the schedule as cron jobs (``entrypoints.worker``). In the embedded
default there is no worker, so the API process runs it as background asyncio tasks
(``PeriodicTasks``, started by the composition root and cancelled on shutdown); they run one at a
time per task, never inside a request, and their CPU-heavy parts belong in threads (the use cases'
job). A fresh install with data but no recommendation model gets its first refresh right after
start-up (``due_now``) instead of half a minute later.

The outbox relay is not a cron job but a loop of its own (``RelayLoop``, in the worker or the
embedded API process): every few seconds while the queue answers, probing it with a growing pause
while it does not, and relaying at once (with no grace) when it answers again, so the jobs written
during a Redis outage are on the queue within seconds of its return, not at the next minute.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from adapters.tasks import cancel_and_wait
from application.ports.jobs import JobQueue
from entrypoints.bundles import CartUseCases, OutboxUseCases, RecommendationUseCases, WebhookUseCases
from entrypoints.jobs import relay_outbox

log = logging.getLogger(__name__)
# How soon a job whose ``due_now`` says so runs after start-up (a fresh install's first model).
DUE_NOW_AFTER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Scheduled:
    name: str
    cron: str  # for the SAQ worker
    every_seconds: float  # for the embedded loop
    first_after_seconds: float
    run: Callable[[], Awaitable[object]]
    timeout_seconds: int
    # Checked once at start-up: when it says True, the first run comes after
    # ``DUE_NOW_AFTER_SECONDS`` instead of ``first_after_seconds``.
    due_now: Callable[[], Awaitable[bool]] | None = None


def schedule(
    recommendations: RecommendationUseCases, cart: CartUseCases, webhooks: WebhookUseCases
) -> tuple[Scheduled, ...]:
    """Everything that runs on a timer, each a use case of its bundle."""

    async def model_missing() -> bool:
        """A fresh install (or a restored database) with interactions but no model yet."""
        return (await recommendations.get_model_state.execute()).refresh_due

    return (
        Scheduled(
            "refresh_recommendations",
            "*/15 * * * *",
            900,
            30,
            recommendations.refresh_recommendations.execute,
            timeout_seconds=600,
            due_now=model_missing,
        ),
        Scheduled(
            "refresh_popular_items",
            "*/5 * * * *",
            300,
            30,
            recommendations.refresh_popular_items.execute,
            timeout_seconds=240,
        ),
        # Guest carts unused for 30 days go, with their lines.
        Scheduled("purge_guest_carts", "41 * * * *", 3600, 120, cart.purge_guest_carts.execute, timeout_seconds=600),
        # croniter's optional sixth field is seconds: every 5 s, so a first retry comes 5–10 s after a failure.
        Scheduled(
            "webhook_retries", "* * * * * */5", 5, 5, webhooks.retry_webhook_deliveries.execute, timeout_seconds=4
        ),
    )


class PeriodicTasks:
    """Runs each scheduled job in its own loop: first after a delay, then every interval."""

    def __init__(self, schedule: tuple[Scheduled, ...]) -> None:
        self.schedule = schedule
        self.tasks: list[asyncio.Task[None]] = []
        self.runs: dict[str, int] = {item.name: 0 for item in schedule}

    def start(self) -> None:
        if not self.tasks:
            self.tasks = [asyncio.create_task(self._loop(item), name=f"periodic:{item.name}") for item in self.schedule]

    async def _first_delay(self, item: Scheduled) -> float:
        if item.due_now is not None:
            try:
                if await item.due_now():
                    return DUE_NOW_AFTER_SECONDS
            except Exception:
                log.warning("could not tell whether %s is due now; it runs on schedule", item.name, exc_info=True)
        return item.first_after_seconds

    async def _loop(self, item: Scheduled) -> None:
        await asyncio.sleep(await self._first_delay(item))
        while True:
            try:
                async with asyncio.timeout(item.timeout_seconds):
                    await item.run()
            except Exception:
                log.exception("scheduled job %s failed; next run in %.0fs", item.name, item.every_seconds)
            self.runs[item.name] += 1
            await asyncio.sleep(item.every_seconds)

    async def stop(self) -> None:
        await cancel_and_wait(*self.tasks)
        self.tasks = []


RELAY_EVERY_SECONDS = 5.0
RELAY_TIMEOUT_SECONDS = 50.0


class RelayLoop:
    """The outbox relay, every ``every`` seconds while the queue answers. While it does not, the
    queue is pinged with a pause growing from ``min_pause`` to ``max_pause``; its first answer
    triggers a relay at once with no grace, so rows written during the outage go out then."""

    def __init__(
        self,
        outbox: OutboxUseCases,
        queue: JobQueue,
        *,
        every: float = RELAY_EVERY_SECONDS,
        min_pause: float = 0.5,
        max_pause: float = 4.0,
    ) -> None:
        self.outbox = outbox
        self.queue = queue
        self.every, self.min_pause, self.max_pause = every, min_pause, max_pause
        self.runs = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="outbox-relay")

    async def _loop(self) -> None:
        pause, queue_was_down = self.min_pause, False
        while True:
            if not await self.queue.ping():
                if not queue_was_down:
                    log.warning("job queue unavailable; the outbox relay waits for it")
                queue_was_down = True
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_pause)
                continue
            if queue_was_down:
                log.info("job queue available again; relaying the outbox now")
            try:
                async with asyncio.timeout(RELAY_TIMEOUT_SECONDS):
                    await relay_outbox(self.outbox, grace=timedelta(0) if queue_was_down else None)
                queue_was_down = False
            except Exception:
                log.warning("outbox relay failed; next run in %.0fs", self.every, exc_info=True)
            self.runs += 1
            pause = self.min_pause
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
