"""What a handler declares to be handed: its caller's request and its feature's use cases.

A bundle is injected by the parameter's name (``http.app`` provides ``cart``, ``catalog``, ...),
so a handler takes ``cart: Cart`` for the ``CartUseCases`` and ``request: Caller`` for a
signed-in user (``request.user`` is the ``Principal``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency

from application.identity import CartHolder, Principal
from entrypoints.bundles import (
    AuthUseCases,
    CartUseCases,
    CatalogUseCases,
    OrderUseCases,
    ReportUseCases,
    UserUseCases,
    WebhookUseCases,
)

Caller = Request[Principal, Any, Any]
# On the routes marked GUEST_OK: a signed-in user or the holder of a guest cart token.
CartCaller = Request[CartHolder, Any, Any]

Auth = NamedDependency[AuthUseCases]
Users = NamedDependency[UserUseCases]
Cart = NamedDependency[CartUseCases]
Orders = NamedDependency[OrderUseCases]
Catalog = NamedDependency[CatalogUseCases]
Reports = NamedDependency[ReportUseCases]
Webhooks = NamedDependency[WebhookUseCases]
