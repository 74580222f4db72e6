"""Postgres plans each hot prepared statement once per connection, not again on every call.

A prepared statement gets five plans for its actual values, then Postgres compares their cost
with its one generic plan and keeps the generic plan only when it does not look worse. A
statement whose generic plan always looks worse is planned on every call, and planning a join
costs more than running it. These tests count the plans of one connection over a catalogue
large enough for the planner to take it seriously.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, literal_column, select, table, text, true

from adapters.sql.pg_pool import STATEMENTS
from adapters.sql.statements.orders import LINES_OF_ORDERS, TAKE_ALL_POSTGRES
from adapters.sql.statements.products import PRODUCT_SUMMARIES
from adapters.sql.statements.webhooks import SOLD_OUT
from adapters.sql.tables import PRODUCTS
from tests.integration.test_cart_repository_contract import NOW, add_product, add_user, make_order

pytestmark = pytest.mark.parametrize("any_uow", ["postgres"], indirect=True)


async def catalogue_of_copies(any_uow: Any, product: uuid.UUID, copies: int = 20_000) -> None:
    """``copies`` more rows like ``product``, analysed: the planner sees a real catalogue."""
    copied = [c for c in PRODUCTS.c if c.computed is None and c.name != "id"]
    series = func.generate_series(1, copies).table_valued("n")
    async with any_uow() as uow:
        await uow.executor.run(
            insert(PRODUCTS).from_select(
                ["id", *(c.name for c in copied)],
                select(func.gen_random_uuid(), *copied)
                .select_from(PRODUCTS.join(series, true()))
                .where(PRODUCTS.c.id == product),
            )
        )
        await uow.commit()
    async with any_uow() as uow:
        await uow.executor.run(text("ANALYZE products"))


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
