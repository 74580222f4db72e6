"""A client generated from our OpenAPI document (openapi-python-client) drives a whole purchase.

This is what a front-end team does on day one: if the document is not generator-friendly or
does not describe what the service really answers, this test fails.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from domain.users import Role
from entrypoints.http.app import create_app
from entrypoints.wiring import Container
from tests.conftest import test_settings

PASSWORD = "correct horse battery"


def _generate(document: dict[str, Any], folder: Path) -> None:
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(document))
    generator = Path(sys.executable).with_name("openapi-python-client")
    env = {**os.environ, "PATH": f"{generator.parent}:{os.environ.get('PATH', '')}"}
    subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(folder / "mkt_client"),
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=240,
    )


async def test_generated_client_runs_a_purchase(sqlite_url: str, tmp_path: Path) -> None:
    container = Container(test_settings(DATABASE_URL=sqlite_url, VAR_DIR=str(tmp_path / "var")))
    app = create_app(container.settings, container=container)
    _generate(app.openapi_schema.to_schema(), tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        models = importlib.import_module("mkt_client.models")
        client_mod = importlib.import_module("mkt_client.client")
        from mkt_client.api.auth import login, register  # type: ignore[import-not-found]
        from mkt_client.api.cart import add_cart_item, checkout, get_cart  # type: ignore[import-not-found]
        from mkt_client.api.catalog import (  # type: ignore[import-not-found]
            create_category,
            create_product,
            list_products,
        )
        from mkt_client.api.orders import list_orders  # type: ignore[import-not-found]

        transport = httpx.ASGITransport(app=app)
        anon = client_mod.Client(base_url="http://127.0.0.1:8000", httpx_args={"transport": transport})

        async def sign_up(name: str) -> Any:
            made = await register.asyncio_detailed(
                client=anon, body=models.RegisterBody(username=name, email=f"{name}@example.com", password=PASSWORD)
            )
            assert made.status_code == 201, made.content
            pair = await login.asyncio_detailed(client=anon, body=models.LoginBody(email=name, password=PASSWORD))
            assert pair.status_code == 200, pair.content
            return client_mod.AuthenticatedClient(
                base_url="http://127.0.0.1:8000", token=pair.parsed.access_token, httpx_args={"transport": transport}
            ), made.parsed

        admin, admin_user = await sign_up("gen_admin")
        async with container.adapters.requests.uow() as uow:
            stored = await uow.users.get(uuid.UUID(str(admin_user.id)))
            stored.role = Role.ADMIN
            await uow.users.update(stored)
            await uow.commit()
        # the role is read per request, so the same token now acts as admin
        category = await create_category.asyncio_detailed(client=admin, body=models.CategoryIn(name="Generated"))
        assert category.status_code == 201, category.content

        seller, _ = await sign_up("gen_seller")
        made = await create_product.asyncio_detailed(
            client=seller,
            body=models.ProductIn(
                name="Generated mug",
                description="from a generated client",
                price="12.50",
                category_id=str(category.parsed.id),
                stock=4,
            ),
        )
        assert made.status_code == 201, made.content

        listed = await list_products.asyncio_detailed(client=anon, q="mug")
        assert listed.status_code == 200
        assert [str(p.id) for p in listed.parsed.items] == [str(made.parsed.id)]

        buyer, _ = await sign_up("gen_buyer")
        line = await add_cart_item.asyncio_detailed(
            client=buyer, body=models.AddCartItemBody(product_id=str(made.parsed.id), quantity=2)
        )
        assert line.status_code == 201, line.content
        cart = await get_cart.asyncio_detailed(client=buyer)
        assert cart.parsed.total == "25.00"
        order = await checkout.asyncio_detailed(client=buyer, idempotency_key="gen-1")
        assert order.status_code == 201, order.content
        assert order.parsed.total == "25.00"
        history = await list_orders.asyncio_detailed(client=buyer)
        assert [str(o.id) for o in history.parsed.items] == [str(order.parsed.id)]
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "mkt_client" or m.startswith("mkt_client.")]:
            del sys.modules[name]
        await container.shutdown()
