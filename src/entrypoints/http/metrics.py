"""Request ids, security headers, slow-request logs and Prometheus metrics for every HTTP request
(one pure-ASGI middleware), and the /metrics route with the gauges it refreshes at scrape time."""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from application.use_cases.recommendations import ModelState
from entrypoints.http.headers import is_private, with_security_headers
from entrypoints.http.problems import PROBLEM_JSON, RETRY_AFTER_SECONDS, problem_bytes
from entrypoints.http.security import PUBLIC
from entrypoints.readiness import CHECK_SECONDS

log = structlog.get_logger("marketplace.http")
_slow_log = logging.getLogger("marketplace.slow")
_scrape_log = logging.getLogger(__name__)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

REQUESTS = Counter("http_requests_total", "HTTP requests by route and status", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CACHE_EVENTS = Gauge("cache_events", "Cache hits and misses seen by this process", ["result"])
QUEUE_DEPTH = Gauge("job_queue_depth", "Jobs waiting in the queue (outbox rows not yet processed)")
JOB_OUTCOMES = Gauge("job_outcomes", "Jobs finished by kind and outcome (from the outbox)", ["kind", "outcome"])
MODEL_AGE = Gauge("recommendation_model_age_seconds", "Seconds since the recommendation model was built")
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest outbox job not yet processed (0: none pending)"
)
WORKER_HEARTBEAT_AGE = Gauge(
    "worker_heartbeat_age_seconds", "Seconds since a job worker last reported (NaN: none reported, or no Redis)"
)
SLOW_REQUEST_SECONDS = 0.5
# Routes with budgets of their own: liveness does no I/O, readiness and the metrics scrape give each
# source a second (concurrently), so they answer even when the request deadline is shorter.
OWN_BUDGET_PATHS = frozenset({"/health", "/ready", "/metrics"})


def _children(metric: Any) -> Callable[..., Any]:
    """``metric.labels(*values)``, memoised: labels() validates and locks on every call."""
    return functools.lru_cache(maxsize=4096)(metric.labels)


_request_counter = _children(REQUESTS)
_latency_histogram = _children(LATENCY)


async def _deadline_answer(send: Callable[[Message], Any], path: str) -> None:
    body = problem_bytes(503, "The request did not finish within its deadline; try again shortly.", path)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def edge(app: ASGIApp, *, deadline: float | None = None) -> ASGIApp:
    """The one middleware every request passes (one send wrapper, so it stays cheap): bind a request
    id (from X-Request-ID when sane, else new) and echo it, add the security headers, time and count
    the request, log it when slow.

    It also holds the request deadline, the last line of defence behind the database's and Redis's
    own timeouts: a request that has not started its answer ``deadline`` seconds in is cancelled (a
    transaction in flight rolls back, its connection is dropped) and answered 503 with Retry-After.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        private = is_private(scope["path"])
        status_holder = [500]
        timer: asyncio.Timeout | None = None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                if timer is not None and not timer.expired():
                    timer.reschedule(None)  # the answer has begun: its body is not cut off
                status_holder[0] = message["status"]
                headers = with_security_headers(list(message.get("headers", ())), private=private)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            if deadline is None or scope["path"] in OWN_BUDGET_PATHS:
                await app(scope, receive, send_wrapper)
            else:
                try:
                    async with asyncio.timeout(deadline) as timer:
                        await app(scope, receive, send_wrapper)
                except TimeoutError:
                    if timer is None or not timer.expired():
                        raise
                    log.warning("request deadline passed", path=scope["path"], deadline=deadline, exc_info=True)
                    await _deadline_answer(send_wrapper, scope["path"])
        finally:
            elapsed = time.perf_counter() - started
            route = str(scope.get("path_template") or "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # bounded label values
            _request_counter(method, route, str(status_holder[0])).inc()
            _latency_histogram(method, route).observe(elapsed)
            if elapsed > SLOW_REQUEST_SECONDS:
                _slow_log.warning("slow request %s %s took %.3fs", method, route, elapsed)
            structlog.contextvars.unbind_contextvars("request_id")

    return middleware


@dataclass(frozen=True, slots=True)
class MetricSources:
    """Where the gauges come from at scrape time (the composition root picks them)."""

    model_state: Callable[[], Awaitable[ModelState]]
    outcome_counts: Callable[[], Awaitable[dict[tuple[str, str], int]]]  # (kind, outcome) → jobs
    oldest_pending: Callable[[], Awaitable[datetime | None]]  # the oldest unprocessed outbox row
    queue_depth: Callable[[], Awaitable[int]]  # -1: the queue did not answer
    worker_age: Callable[[], Awaitable[float | None]]  # None: no worker has reported
    cache_stats: Callable[[], dict[str, int]]


async def refresh_metrics(sources: MetricSources) -> None:
    """Set the gauges ``/metrics`` reads: model age, cache events, queue depth, the oldest pending
    outbox row, the worker's heartbeat age. Each source has a second; one that does not answer
    leaves its gauge NaN (or as it was) and the scrape still answers.

    The model age is NaN while there is no model (a fresh install before its first refresh).
    """

    async def model_age() -> None:
        state = await sources.model_state()
        MODEL_AGE.set(time.time() - state.built_at if state.built_at is not None else math.nan)

    async def outcomes() -> None:
        for (kind, outcome), count in (await sources.outcome_counts()).items():
            JOB_OUTCOMES.labels(kind, outcome).set(count)

    async def oldest_pending() -> None:
        oldest = await sources.oldest_pending()
        OUTBOX_OLDEST_PENDING_AGE.set(max(0.0, time.time() - oldest.timestamp()) if oldest else 0.0)

    async def queue_depth() -> None:
        depth = await sources.queue_depth()
        QUEUE_DEPTH.set(depth if depth >= 0 else math.nan)

    async def worker_age() -> None:
        age = await sources.worker_age()
        WORKER_HEARTBEAT_AGE.set(math.nan if age is None else age)

    counts = sources.cache_stats()
    for key, result in (("hits", "hit"), ("misses", "miss"), ("errors", "error")):
        if key in counts:
            CACHE_EVENTS.labels(result).set(counts[key])
    readers: dict[str, Callable[[], Awaitable[None]]] = {
        "model age": model_age,
        "job outcomes": outcomes,
        "oldest pending job": oldest_pending,
        "queue depth": queue_depth,
        "worker heartbeat": worker_age,
    }

    async def bounded(name: str, read: Callable[[], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await read()
        except Exception:  # the database or Redis is down or stalled: /ready says so
            _scrape_log.warning("metrics: could not read the %s", name, exc_info=True)

    await asyncio.gather(*(bounded(name, read) for name, read in readers.items()))


class MetricsController(Controller):
    tags = ["operations"]

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus metrics",
        **PUBLIC,
        media_type="text/plain",
    )
    async def metrics(self, metric_sources: NamedDependency[MetricSources]) -> Response[bytes]:
        await refresh_metrics(metric_sources)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
