"""The composition root hands every handler what its signature promises.

Litestar injects dependencies by parameter name; this holds each name to its declared type, so a
handler that asks for ``cart: NamedDependency[OrderUseCases]`` fails here, not on a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.di import Dependency
from litestar.routes import HTTPRoute

from entrypoints.http.app import create_app
from entrypoints.wiring import Container
from tests.conftest import test_settings


async def test_every_injected_dependency_has_the_type_its_handler_declares(tmp_path: Path) -> None:
    settings = test_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'wiring.db'}", VAR_DIR=str(tmp_path / "var"))
    container = Container(settings)  # nothing connects
    try:
        checked = _check_dependencies(create_app(settings, container=container).routes)
    finally:
        await container.shutdown()
    assert checked > 50  # every use-case handler, /ready and /metrics


def _check_dependencies(routes: list[Any]) -> int:
    checked = 0
    for route in routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            provided = handler.resolve_dependencies()
            for name, parameter in handler.parsed_fn_signature.parameters.items():
                if not any(isinstance(marker, Dependency) for marker in parameter.metadata):
                    continue
                assert name in provided, f"{handler.handler_name}: nothing provides {name!r}"
                value = provided[name].dependency()
                assert isinstance(value, parameter.annotation), f"{handler.handler_name}: {name!r} is a {type(value)}"
                checked += 1
    return checked
