"""The Litestar application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from litestar import Litestar, Router
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme

from entrypoints.bundles import UseCases
from entrypoints.http.controllers.auth import AuthController
from entrypoints.http.controllers.cart import CartController, GuestCartController
from entrypoints.http.controllers.catalog import CategoriesController, ProductsController, ReviewsController
from entrypoints.http.controllers.favorites import FavoritesController
from entrypoints.http.controllers.health import HealthController
from entrypoints.http.controllers.orders import OrdersController, SalesController
from entrypoints.http.controllers.profiles import PublicProfilesController
from entrypoints.http.controllers.recommendations import RecommendationsController
from entrypoints.http.controllers.reports import ReportsController
from entrypoints.http.controllers.users import UsersController
from entrypoints.http.controllers.webhooks import WebhooksController
from entrypoints.http.docs import docs_assets, docs_page
from entrypoints.http.metrics import MetricsController, MetricSources, edge
from entrypoints.http.openapi import document_errors
from entrypoints.http.problems import exception_handlers
from entrypoints.http.ratelimit import (
    AUTH_STORE,
    GUEST_CART_STORE,
    auth_rate_limit,
    build_store,
    guest_cart_rate_limit,
)
from entrypoints.http.security import CART_TOKEN_HEADER, CART_TOKEN_SCHEME, build_jwt_auth
from entrypoints.http.strict_json import check_request_input
from entrypoints.observability import configure_logging
from entrypoints.readiness import Readiness
from entrypoints.settings import Settings
from entrypoints.wiring import Container

MAX_BODY_BYTES = 1_048_576
ROUTE_HANDLERS: list[Any] = [
    HealthController,
    MetricsController,
    docs_page,
    docs_assets,
    UsersController,
    CartController,
    OrdersController,
    SalesController,
    ReportsController,
]

ROUTE_HANDLERS += [
    CategoriesController,
    ProductsController,
    ReviewsController,
    FavoritesController,
    PublicProfilesController,
    RecommendationsController,
    WebhooksController,
]


T = TypeVar("T")


def _provide(value: T) -> Provide:
    """``value`` itself, injected into every handler that declares it (built once, never per request)."""

    def provide() -> T:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def _metric_sources(container: Container) -> MetricSources:
    adapters = container.adapters
    return MetricSources(
        model_state=container.use_cases.recommendations.get_model_state.execute,
        outcome_counts=adapters.requests.outbox.outcome_counts,
        oldest_pending=adapters.requests.outbox.oldest_pending,
        queue_depth=adapters.queue.depth,
        worker_age=container.readiness.worker_age,
        cache_stats=adapters.cache.stats,
    )


def _dependencies(use_cases: UseCases, readiness: Readiness, metric_sources: MetricSources) -> dict[str, Provide]:
    """What handlers may declare, by parameter name: ``cart: Cart`` (see ``http.dependencies``)."""
    return {
        "auth": _provide(use_cases.auth),
        "users": _provide(use_cases.users),
        "cart": _provide(use_cases.cart),
        "orders": _provide(use_cases.orders),
        "catalog": _provide(use_cases.catalog),
        "recommendations": _provide(use_cases.recommendations),
        "reports": _provide(use_cases.reports),
        "webhooks": _provide(use_cases.webhooks),
        "readiness": _provide(readiness),
        "metric_sources": _provide(metric_sources),
    }


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    # SAQ logs each enqueue at INFO: four lines a checkout, a tenth of the API's CPU under load, and
    # the outbox row already records the dispatch (the worker keeps SAQ's job lines).
    configure_logging(settings, quiet=("saq",))
    container = container or Container(settings)
    jwt_auth = build_jwt_auth(
        settings,
        check_access_token=container.use_cases.auth.check_access_token,
        resolve_cart_token=container.use_cases.cart.resolve_cart_token,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await container.startup()
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await container.shutdown()

    openapi = OpenAPIConfig(
        title="Marketplace API",
        version="1.0.0",
        description="List, search, review and favorite products; fill a cart; check out; get a feed.",
        path="/schema",
        render_plugins=[JsonRenderPlugin()],
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                "OAuth2PasswordForm": SecurityScheme(
                    type="oauth2",
                    flows=OAuthFlows(password=OAuthFlow(token_url="/api/auth/token", scopes={})),
                ),
                CART_TOKEN_SCHEME: SecurityScheme(
                    type="apiKey",
                    name=CART_TOKEN_HEADER,
                    security_scheme_in="header",
                    description="A guest cart's token from POST /api/cart/guest; cart routes only, not checkout.",
                ),
            }
        ),
    )
    # Only the auth routes are rate limited, so no other request pays for the limiter's check.
    auth_routes = Router(
        path="/",
        route_handlers=[AuthController],
        middleware=[auth_rate_limit(settings.auth_rate_limit_per_minute).middleware],
    )
    guest_cart_routes = Router(
        path="/",
        route_handlers=[GuestCartController],
        middleware=[guest_cart_rate_limit(settings.guest_cart_rate_limit_per_minute).middleware],
    )
    app = Litestar(
        route_handlers=[*ROUTE_HANDLERS, auth_routes, guest_cart_routes],
        dependencies=_dependencies(container.use_cases, container.readiness, _metric_sources(container)),
        exception_handlers=exception_handlers,
        on_app_init=[jwt_auth.on_app_init],
        openapi_config=openapi,
        lifespan=[lifespan],
        stores={
            AUTH_STORE: build_store(container.adapters.redis, settings.redis_key_prefix),
            GUEST_CART_STORE: build_store(container.adapters.redis, settings.redis_key_prefix + "guest-cart-"),
        },
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=CORSConfig(
            allow_origins=settings.cors_allow_origins,
            allow_credentials=False,
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-None-Match", CART_TOKEN_HEADER],
            expose_headers=["ETag", "Retry-After"],
        )
        if settings.cors_allow_origins
        else None,
        allowed_hosts=AllowedHostsConfig(allowed_hosts=settings.allowed_hosts)
        if settings.allowed_hosts != ["*"]
        else None,
        before_request=check_request_input,
        debug=False,
        # Logging is configure_logging's: Litestar's default config would replace the root handler
        # (plain text through a queue thread), losing the JSON lines and the request ids.
        logging_config=None,
    )
    # The edge middleware wraps the whole ASGI handler, not just the routes (Litestar's own
    # middleware runs only once a route matched): 404s for unknown paths, 405s and answers from the
    # exception handler get the request id, the security headers and a metrics sample too.
    app.asgi_handler = edge(app.asgi_handler, deadline=settings.request_deadline)
    document_errors(app.openapi_schema)
    return app


def app_from_env() -> Litestar:
    """ASGI entry for servers: ``granian --interface asgi entrypoints.http.app:app_from_env --factory``."""
    return create_app(Settings.from_env())
