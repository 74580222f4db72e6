"""The demo catalog: a category tree, 41 products (one uncategorised), reviews and favorites.

The data is ``demo_catalog.json`` beside this module: categories in creation order (a parent
before its children), products (``category`` null: an uncategorised listing), and reviews and
favorites that name a product by its position in ``products``. Everything goes through the use
cases, so the counters (ratings, favorites) are what real requests would have produced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from application.identity import Principal
from domain.users import Role
from entrypoints.bundles import CatalogUseCases

DEMO_CATALOG = Path(__file__).with_name("demo_catalog.json")


async def load_demo_catalog(catalog: CatalogUseCases, people: dict[str, Any], admin: Any) -> None:
    """A small, realistic catalog: a category tree, 41 products (one uncategorised), reviews, favorites."""

    def principal(user: Any) -> Principal:
        return Principal(id=user.id, role=user.role)

    data = json.loads(DEMO_CATALOG.read_text(encoding="utf-8"))
    admin_principal = Principal(id=admin.id, role=Role.ADMIN)
    categories: dict[str, Any] = {}
    for category in data["categories"]:
        parent = category["parent"]
        parent_id = categories[parent].id if parent else None
        categories[category["name"]] = await catalog.create_category.execute(
            admin_principal, name=category["name"], parent_id=parent_id
        )
    products = []
    for product in data["products"]:
        products.append(
            await catalog.create_product.execute(
                principal(people[product["seller"]]),
                name=product["name"],
                description=product["description"],
                price=product["price"],
                category_id=categories[product["category"]].id if product["category"] else None,
                stock=product["stock"],
            )
        )
    for review in data["reviews"]:
        await catalog.create_review.execute(
            principal(people[review["reviewer"]]),
            products[review["product"]].id,
            rating=review["rating"],
            comment=review["comment"],
        )
    for favorite in data["favorites"]:
        await catalog.add_favorite.execute(principal(people[favorite["user"]]), products[favorite["product"]].id)
