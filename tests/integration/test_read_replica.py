"""With DATABASE_REPLICA_URL set, catalog reads go to the replica and everything else to the primary.

To tell the two apart, the "replica" here is a different database (a SQLite copy of the schema)
holding a product the primary has never seen: browsing finds it, the cart (primary) does not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from adapters.sql.uow import SqlUnitOfWorkFactory
from domain.catalog import Category, Product
from domain.ids import new_id
from domain.users import Role, User
from entrypoints.http.app import create_app
from entrypoints.wiring import Container
from tests.conftest import _truncate, test_settings
from tests.helpers import user_headers


async def test_catalog_reads_use_the_replica_and_the_cart_the_primary(
    pg_url: str, sqlite_url: str, tmp_path: Any
) -> None:
    await _truncate(pg_url)
    container = Container(
        test_settings(DATABASE_URL=pg_url, DATABASE_REPLICA_URL=sqlite_url, VAR_DIR=str(tmp_path / "var"))
    )
    assert container.adapters.replica is not None
    now = datetime.now(UTC)
    seller = User(
        id=new_id(), username="replicated", email="r@example.com", password_hash="x", role=Role.USER,
        created_at=now, updated_at=now,
    )  # fmt: skip
    category = Category(id=new_id(), name="Maps", slug="maps", parent_id=None, created_at=now, updated_at=now)
    product = Product(
        id=new_id(), seller_id=seller.id, category_id=category.id, name="Only on the replica", description="",
        price=Decimal("9.99"), image_url=None, stock=3, created_at=now, updated_at=now,
    )  # fmt: skip
    async with SqlUnitOfWorkFactory(container.adapters.replica)() as uow:
        await uow.users.add(seller)
        await uow.categories.add(category)
        await uow.products.add(product)
        await uow.commit()
    app = create_app(container.settings, container=container)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            detail = await client.get(f"/api/products/{product.id}")
            assert detail.status_code == 200 and detail.json()["name"] == "Only on the replica"
            listed = (await client.get("/api/products")).json()["items"]
            assert [item["id"] for item in listed] == [str(product.id)]
            assert [c["slug"] for c in (await client.get("/api/categories")).json()] == ["maps"]
            _, headers = await user_headers(client)  # accounts live on the primary
            added = await client.post(
                "/api/cart/items", json={"product_id": str(product.id), "quantity": 1}, headers=headers
            )
            assert added.status_code == 422  # the primary has no such product
    finally:
        await container.shutdown()
