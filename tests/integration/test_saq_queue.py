"""The SAQ job queue on a real Redis: a batch is one round trip and behaves like SAQ's own enqueue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.jobs.saq_queue import SaqJobQueue
from application.jobs import SEND_SALE_NOTICE, SEND_WELCOME, UPDATE_FEED, job_policy
from application.ports.jobs import QueuedJob
from tests.conftest import REDIS_URL
from tests.integration.queues import clear_queue, queue_name
from tests.integration.redis_wire import count_redis_requests


@pytest.fixture
async def jobs() -> AsyncIterator[SaqJobQueue]:
    name = queue_name()
    queue = SaqJobQueue.from_url(REDIS_URL, name=name)
    try:
        yield queue
    finally:
        await queue.close()
        await clear_queue(name)


def _batch(*keys: str) -> list[QueuedJob]:
    kinds = [SEND_WELCOME, SEND_SALE_NOTICE, UPDATE_FEED]
    return [QueuedJob(kinds[n % 3], {"n": str(n)}, key) for n, key in enumerate(keys)]


async def test_a_batch_is_queued_whole_with_each_kinds_policy_in_one_round_trip(
    jobs: SaqJobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    await jobs.enqueue_many(_batch("warm-1", "warm-2"))  # the first batch also checks Redis has the script
    sent = count_redis_requests(monkeypatch)
    await jobs.enqueue_many(_batch("a", "b", "c"))
    await jobs.enqueue_many(_batch("d", "e", "f"))
    assert len(sent) == 2  # one request per batch: no per-job round trip, no script look-up
    monkeypatch.undo()
    assert await jobs.depth() == 8
    for kind, payload, key in _batch("a", "b", "c"):
        job = await jobs.queue.job(key)
        assert job is not None and job.function == kind and job.kwargs == {"payload": payload}
        assert job.retries == job_policy(kind).attempts and job.timeout == job_policy(kind).timeout_seconds


async def test_a_key_already_queued_is_not_queued_twice(jobs: SaqJobQueue) -> None:
    await jobs.enqueue_many(_batch("a", "b"))
    await jobs.enqueue_many(_batch("b", "c"))  # "b" is still waiting: SAQ drops the copy
    assert await jobs.depth() == 3


async def test_a_batch_still_arrives_after_redis_forgot_the_script(jobs: SaqJobQueue) -> None:
    await jobs.enqueue_many(_batch("a", "b"))
    admin = Redis.from_url(REDIS_URL)
    try:
        await admin.script_flush()  # what a Redis restart does to loaded scripts
    finally:
        await admin.aclose()
    await jobs.enqueue_many(_batch("c", "d"))
    assert await jobs.depth() == 4


async def test_a_batch_to_an_unreachable_redis_is_unavailable_and_pauses_the_queue() -> None:
    from application.ports.errors import Unavailable

    queue = SaqJobQueue.from_url("redis://127.0.0.1:1/0", name=queue_name(), enqueue_timeout=0.5)
    try:
        with pytest.raises(Unavailable):
            await queue.enqueue_many(_batch("a", "b"))
        with pytest.raises(Unavailable, match="moments ago"):
            await queue.enqueue_many(_batch("c"))
    finally:
        await queue.close()


async def test_job_records_read_the_same_with_saqs_default_json(jobs: SaqJobQueue) -> None:
    """Jobs queued by a release that used SAQ's default codec (``json``) still run after an upgrade,
    and the other way round: both write and read the same JSON."""
    from saq.queue.redis import RedisQueue

    from adapters.jobs.saq_queue import worker_redis_queue

    default_codec = RedisQueue(Redis.from_url(REDIS_URL), name=jobs.queue.name)
    worker = worker_redis_queue(REDIS_URL, jobs.queue.name, dequeue_timeout=1)
    try:
        await default_codec.enqueue(jobs.job(SEND_WELCOME, {"user": "Zoë ✓"}, key="old"))
        await jobs.enqueue_many(_batch("new"))
        old, new = await worker.job("old"), await default_codec.job("new")
        assert old is not None and old.kwargs == {"payload": {"user": "Zoë ✓"}}
        assert new is not None and new.function == SEND_WELCOME and new.kwargs == {"payload": {"n": "0"}}
    finally:
        await default_codec.disconnect()
        await worker.disconnect()
