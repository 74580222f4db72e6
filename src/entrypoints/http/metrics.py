"""Request ids, security headers, slow-request logs and Prometheus metrics for every HTTP request
(one pure-ASGI middleware), and the /metrics route."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import structlog
from litestar import Controller, Request, Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from entrypoints.http.headers import is_private, with_security_headers
from entrypoints.http.problems import PROBLEM_JSON, RETRY_AFTER_SECONDS, problem_bytes

log = structlog.get_logger("marketplace.http")
_slow_log = logging.getLogger("marketplace.slow")
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
                    log.warning("request deadline passed", path=scope["path"], deadline=deadline)
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


class MetricsController(Controller):
    tags = ["operations"]

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus metrics",
        exclude_from_auth=True,
        security=[{}],
        media_type="text/plain",
    )
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        container = request.app.state.container
        refresh = getattr(container, "refresh_metrics", None)
        if refresh is not None:
            await refresh()
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
