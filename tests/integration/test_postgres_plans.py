"""Postgres plans each hot prepared statement once per connection, not again on every call.

A prepared statement gets five plans for its actual values, then Postgres compares their cost
with its one generic plan and keeps the generic plan only when it does not look worse. A
statement whose generic plan always looks worse is planned on every call, and planning a join
costs more than running it. These tests count the plans of one connection over a catalogue
large enough for the planner to take it seriously.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import String, Table, bindparam, func, insert, literal_column, select, table, text, true

from adapters.sql.catalog_queries import SqlCatalogQueries
from adapters.sql.pg_pool import STATEMENTS
from adapters.sql.statements.orders import LINES_OF_ORDERS, TAKE_ALL_POSTGRES
from adapters.sql.statements.products import LISTING_CAP, PRODUCT_SUMMARIES, ListingShape, listing
from adapters.sql.statements.webhooks import SOLD_OUT
from adapters.sql.tables import PRODUCTS, USERS
from application.views.catalog import ProductFilter, ProductSort
from tests.integration.test_cart_repository_contract import NOW, add_product, add_user, make_order

pytestmark = pytest.mark.parametrize("any_uow", ["postgres"], indirect=True)


async def copies_of(
    any_uow: Any, rows: Table, row_id: uuid.UUID, copies: int, varied: Callable[[Any], dict[str, Any]]
) -> None:
    """``copies`` more rows like ``row_id``'s, with the columns ``varied(n)`` gives for the n-th."""
    series = func.generate_series(1, copies).table_valued("n").render_derived()
    changes = varied(series.c.n)
    copied = [c for c in rows.c if c.computed is None and c.name != "id"]
    async with any_uow() as uow:
        await uow.executor.run(
            insert(rows).from_select(
                ["id", *(c.name for c in copied)],
                select(func.gen_random_uuid(), *(changes.get(c.name, c) for c in copied))
                .select_from(rows.join(series, true()))
                .where(rows.c.id == row_id),
            )
        )
        await uow.commit()
    async with any_uow() as uow:
        await uow.executor.run(text(f"ANALYZE {rows.name}"))


async def catalogue_of_copies(any_uow: Any, product: uuid.UUID, copies: int = 20_000) -> None:
    """A catalogue the planner takes for real: ``copies`` more products like ``product``, each a
    second older and a cent dearer than the last, and 5,000 more users like its seller."""
    await copies_of(
        any_uow,
        PRODUCTS,
        product,
        copies,
        lambda n: {
            "created_at": PRODUCTS.c.created_at - func.make_interval(0, 0, 0, 0, 0, 0, n),
            "price": PRODUCTS.c.price + n / 100,
        },
    )
    async with any_uow() as uow:
        seller = await uow.executor.value(select(PRODUCTS.c.seller_id).where(PRODUCTS.c.id == product))
    await copies_of(
        any_uow,
        USERS,
        seller,
        5_000,
        lambda n: {"username": USERS.c.username + func.cast(n, String), "email": func.cast(n, String) + USERS.c.email},
    )


async def plans_of(uow: Any, statement: Any) -> dict[str, int]:
    """How the connection of ``uow``'s transaction planned ``statement`` so far."""
    plans = await uow.executor.row(
        select(literal_column("generic_plans"), literal_column("custom_plans"))
        .select_from(table("pg_prepared_statements"))
        .where(literal_column("statement") == bindparam("sql")),
        sql=STATEMENTS(statement).sql,  # the text the pool prepared
    )
    assert plans is not None, "the statement was never prepared on this connection"
    return dict(plans)


def planned_once(plans: dict[str, int]) -> bool:
    """Five trial plans for the actual values, then the generic one."""
    return plans["custom_plans"] <= 5 and plans["generic_plans"] >= 5


async def test_take_all_is_planned_once_per_connection(any_uow) -> None:
    """The generic plan must guess how many products an order names; ``LIMIT :n`` keeps that
    guess small (without it: 10 custom plans and 0 generic, every checkout paid for planning)."""
    seller = await add_user(any_uow, "seller")
    a, b = [await add_product(any_uow, seller, stock=100) for _ in range(2)]
    await catalogue_of_copies(any_uow, a)
    async with any_uow() as uow:  # one transaction: one connection, whose plans are counted
        for _ in range(10):
            assert await uow.inventory.take_all({a: 1, b: 1}, NOW) is None
        plans = await plans_of(uow, TAKE_ALL_POSTGRES)
    assert planned_once(plans), plans


async def test_key_lookups_of_a_few_ids_are_planned_once_per_connection(any_uow) -> None:
    """``any_of(..., by_key=True)`` hides the list's length from the planner: a product's summary,
    an order's lines and an order's sold-out products are looked up by one id or a few, which a
    bare ``= ANY($1)`` had planned again on every call (10 custom plans and 0 generic)."""
    seller, buyer = await add_user(any_uow, "seller"), await add_user(any_uow, "buyer")
    product = await add_product(any_uow, seller, stock=0)
    order = make_order(buyer, [(product, seller, "10.00", 1)])
    async with any_uow() as uow:
        assert await uow.orders.add(order)
        await uow.commit()
    await catalogue_of_copies(any_uow, product)
    lookups = {
        "PRODUCT_SUMMARIES": (PRODUCT_SUMMARIES, {"product_ids": [product]}),
        "LINES_OF_ORDERS": (LINES_OF_ORDERS, {"order_ids": [order.id]}),
        "SOLD_OUT": (SOLD_OUT, {"product_ids": [product]}),
    }
    async with any_uow() as uow:
        for statement, params in lookups.values():
            for _ in range(10):
                assert len(await uow.executor.rows(statement, **params)) == 1
        plans = {name: await plans_of(uow, statement) for name, (statement, _) in lookups.items()}
    assert all(planned_once(counts) for counts in plans.values()), plans


async def test_product_pages_are_planned_once_per_connection(any_uow) -> None:
    """A page of GET /api/products: a ``LIMIT :limit`` alone made the generic plan guess a tenth
    of the catalogue, so every page was planned again (10 custom plans and 0 generic); the
    constant ``LISTING_CAP`` before it keeps the guess at a page."""
    seller = await add_user(any_uow, "seller")
    product = await add_product(any_uow, seller)
    await catalogue_of_copies(any_uow, product, 100_000)  # the bench's size: with 20,000 the old form passed
    async with any_uow() as uow:
        queries = SqlCatalogQueries(uow.executor, "postgresql")
        for _ in range(10):
            assert len(await queries.products(ProductFilter(), ProductSort.NEWEST, None, 21)) == 21
            assert len(await queries.products(ProductFilter(), ProductSort.PRICE_ASC, None, LISTING_CAP)) == LISTING_CAP
        shapes = [ListingShape("postgresql", ProductSort.NEWEST), ListingShape("postgresql", ProductSort.PRICE_ASC)]
        plans = {shape.sort.value: await plans_of(uow, listing(shape)) for shape in shapes}
        with pytest.raises(ValueError, match="at most"):
            await queries.products(ProductFilter(), ProductSort.NEWEST, None, LISTING_CAP + 1)
    assert all(planned_once(counts) for counts in plans.values()), plans
