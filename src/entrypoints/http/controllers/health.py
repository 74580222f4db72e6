"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency

from entrypoints.http.problems import problem_response
from entrypoints.http.security import PUBLIC
from entrypoints.readiness import Readiness


class HealthController(Controller):
    tags = ["operations"]
    include_in_schema = True

    @get("/health", operation_id="health", summary="Liveness", **PUBLIC)
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        operation_id="ready",
        summary="Readiness of database, cache and queue",
        **PUBLIC,
    )
    async def ready(self, request: Request[Any, Any, Any], readiness: NamedDependency[Readiness]) -> Response[Any]:
        """Within 2 s, on connections of its own: 503 names each check that is down or stalled."""
        status = await readiness.check()
        failing = {name: reason for name, reason in status.items() if reason is not None}
        if failing:
            return problem_response(
                request,
                503,
                "Not ready: " + "; ".join(f"{name} {reason}" for name, reason in failing.items()) + ".",
                errors=[{"field": name, "message": reason} for name, reason in failing.items()],
                headers={"Retry-After": "2"},
            )
        return Response({"status": "ready", "checks": dict.fromkeys(status, True)})
