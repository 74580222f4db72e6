"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get

from entrypoints.http.problems import problem_response


class HealthController(Controller):
    tags = ["operations"]
    include_in_schema = True

    @get("/health", operation_id="health", summary="Liveness", exclude_from_auth=True, security=[{}])
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        operation_id="ready",
        summary="Readiness of database, cache and queue",
        exclude_from_auth=True,
        security=[{}],
    )
    async def ready(self, request: Request[Any, Any, Any]) -> Response[Any]:
        status = await request.app.state.container.readiness()
        down = [name for name, ok in status.items() if not ok]
        if down:
            return problem_response(
                request,
                503,
                "Not ready: " + ", ".join(down) + " unavailable.",
                errors=[{"field": name, "message": "unavailable"} for name in down],
            )
        return Response({"status": "ready", "checks": status})
