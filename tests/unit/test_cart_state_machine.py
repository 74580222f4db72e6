"""Random sequences of cart and order operations against a plain model of what they should do.

After every step: stock is never negative and matches the model, the cart (lines, quantities,
current prices, ``price_changed``) matches, totals are exact decimal sums, and no unit is lost
or invented (stock + units in placed orders == what was stocked).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from application.use_cases import cart, orders
from domain.errors import Conflict, DomainError, Forbidden, NotFound, RuleViolation
from tests.unit.fakes import make_world
from tests.unit.test_cart_use_cases import Shop

PRICES = st.sampled_from(["0.01", "0.10", "0.20", "0.30", "19.99", "999999.99"])
USERS = st.integers(min_value=0, max_value=2)  # user 0 sells product 0; users 1 and 2 sell the others
PRODUCTS = st.integers(min_value=0, max_value=2)
KEYS = st.one_of(st.none(), st.sampled_from(["k1", "k2"]))
# Mostly a few units (so orders go through and stock runs out), sometimes sizes that meet the
# 99-per-line cap exactly (33 + 66) or overshoot it by one (50 + 50).
QUANTITIES = st.one_of(st.integers(min_value=1, max_value=3), st.sampled_from([33, 50, 66, 99]))


@dataclass
class ModelLine:
    quantity: int
    price_at_add: Decimal
    line_id: uuid.UUID


@dataclass
class ModelOrder:
    buyer: int
    units: dict[int, int]
    total: Decimal
    status: str = "placed"


@dataclass
class Model:
    stock: list[int]
    price: list[Decimal]
    withdrawn: list[bool] = field(default_factory=lambda: [False, False, False])
    carts: dict[int, dict[int, ModelLine]] = field(default_factory=lambda: {0: {}, 1: {}, 2: {}})
    orders: dict[uuid.UUID, ModelOrder] = field(default_factory=dict)
    keys: dict[tuple[int, str], uuid.UUID] = field(default_factory=dict)
    stocked: list[int] = field(default_factory=list)


class CartMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.shop = Shop(make_world())
        self.users = [self.shop.user(f"user{i}") for i in range(3)]
        self.model: Model | None = None
        self.product_ids: list[uuid.UUID] = []

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def expect(self, error: type[DomainError] | None, coro: Any) -> Any:
        """Run a use case and check it failed with exactly ``error`` (or succeeded when None)."""
        result, failure = None, None
        try:
            result = self.run(coro)
        except DomainError as raised:
            failure = raised
        assert type(failure) is (error or type(None)), (error, failure)
        return result

    def teardown(self) -> None:
        self.loop.close()

    @initialize(
        stocks=st.tuples(st.integers(0, 6), st.integers(0, 6), st.sampled_from([40, 150])),
        prices=st.lists(PRICES, min_size=3, max_size=3),
    )
    def open_shop(self, stocks: tuple[int, int, int], prices: list[str]) -> None:
        """Product i is sold by user i; product 2 has enough stock to reach the 99-per-line cap."""
        self.product_ids = [
            self.shop.product(self.users[i], price=prices[i], stock=stocks[i], name=f"p{i}") for i in range(3)
        ]
        self.model = Model(stock=list(stocks), price=[Decimal(p) for p in prices], stocked=list(stocks))

    @precondition(lambda self: self.model is not None)
    @rule(data=st.data(), user=USERS, quantity=QUANTITIES)
    def add(self, data: st.DataObject, user: int, quantity: int) -> None:
        m = self.model
        assert m is not None
        product = data.draw(st.sampled_from([p for p in range(3) if p != user]) | PRODUCTS)  # mostly others'
        line = m.carts[user].get(product)
        summed = quantity + (line.quantity if line else 0)
        if m.withdrawn[product]:
            error: type[DomainError] | None = RuleViolation
        elif user == product:
            error = Forbidden
        elif quantity > m.stock[product]:
            error = Conflict
        elif summed > 99:
            error = RuleViolation
        elif summed > m.stock[product]:
            error = Conflict
        else:
            error = None
        result = self.expect(error, self.shop.add(self.users[user], self.product_ids[product], quantity))
        if result is not None:
            item, created = result
            assert created == (line is None)
            m.carts[user][product] = ModelLine(summed, m.price[product], item.id)

    @precondition(lambda self: self.model is not None and any(self.model.carts.values()))
    @rule(data=st.data(), quantity=QUANTITIES, as_other=st.booleans())
    def change_quantity(self, data: st.DataObject, quantity: int, as_other: bool) -> None:
        m = self.model
        assert m is not None
        user, product = data.draw(st.sampled_from([(u, p) for u, lines in m.carts.items() for p in lines]))
        line = m.carts[user][product]
        who = self.users[(user + 1) % 3] if as_other else self.users[user]
        if as_other or m.withdrawn[product]:
            error: type[DomainError] | None = NotFound
        elif quantity > m.stock[product]:
            error = Conflict
        else:
            error = None
        change = cart.ChangeCartQuantity(self.shop.w.uow, self.shop.w.clock)
        if self.expect(error, change.execute(who, line_id=line.line_id, quantity=quantity)) is not None:
            line.quantity = quantity

    @precondition(lambda self: self.model is not None)
    @rule(user=USERS, product=PRODUCTS)
    def remove(self, user: int, product: int) -> None:
        m = self.model
        assert m is not None
        line = m.carts[user].pop(product, None)
        if line is not None:
            self.run(cart.RemoveCartItem(self.shop.w.uow).execute(self.users[user], line_id=line.line_id))

    @precondition(lambda self: self.model is not None and any(self.model.carts.values()))
    @rule(data=st.data(), key=KEYS)
    def checkout(self, data: st.DataObject, key: str | None) -> None:
        """Mostly a buyer with something in the cart (empty carts are covered by the unit tests)."""
        m = self.model
        assert m is not None
        user = data.draw(st.sampled_from([u for u, lines in m.carts.items() if lines]) | USERS)
        live = {p: line for p, line in m.carts[user].items() if not m.withdrawn[p]}
        if key is not None and (user, key) in m.keys:
            view = self.run(self.shop.checkout(self.users[user], key))
            assert view.id == m.keys[(user, key)]
            return
        if not live:
            error: type[DomainError] | None = RuleViolation
        elif any(line.quantity > m.stock[p] for p, line in live.items()):
            error = Conflict
        else:
            error = None
        view = self.expect(error, self.shop.checkout(self.users[user], key))
        if view is None:
            return
        expected_total = sum((m.price[p] * line.quantity for p, line in live.items()), Decimal("0"))
        assert view.total == expected_total and view.total == sum((i.line_total for i in view.items), Decimal(0))
        assert {self.product_ids.index(i.product_id): i.quantity for i in view.items} == {
            p: line.quantity for p, line in live.items()
        }
        for p, line in live.items():
            m.stock[p] -= line.quantity
            del m.carts[user][p]
        m.orders[view.id] = ModelOrder(
            buyer=user, units={p: line.quantity for p, line in live.items()}, total=view.total
        )
        if key is not None:
            m.keys[(user, key)] = view.id

    @precondition(lambda self: self.model is not None and bool(self.model.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        m = self.model
        assert m is not None
        order_id = data.draw(st.sampled_from(sorted(m.orders)))
        order = m.orders[order_id]
        user = data.draw(st.just(order.buyer) | USERS)  # mostly the buyer
        if order.buyer != user:
            error: type[DomainError] | None = NotFound
        elif order.status != "placed":
            error = Conflict
        else:
            error = None
        cancel = orders.CancelOrder(self.shop.w.uow, self.shop.w.clock)
        view = self.expect(error, cancel.execute(self.users[user], order_id=order_id))
        if view is not None:
            assert view.status == "cancelled" and view.total == order.total
            order.status = "cancelled"
            for p, units in order.units.items():
                m.stock[p] += units

    @precondition(lambda self: self.model is not None)
    @rule(product=PRODUCTS, price=PRICES)
    def reprice(self, product: int, price: str) -> None:
        assert self.model is not None
        self.shop.stored_product(self.product_ids[product]).price = Decimal(price)
        self.model.price[product] = Decimal(price)

    @precondition(lambda self: self.model is not None)
    @rule(product=st.integers(min_value=0, max_value=1), stock=st.integers(min_value=0, max_value=6))
    def set_stock(self, product: int, stock: int) -> None:
        """The seller edits the stock (or sells elsewhere), so carts can outgrow it before checkout.

        Product 2 keeps its large stock, so lines can reach the 99 cap."""
        m = self.model
        assert m is not None
        self.shop.stored_product(self.product_ids[product]).stock = stock
        m.stocked[product] += stock - m.stock[product]
        m.stock[product] = stock

    @precondition(lambda self: self.model is not None and not self.model.withdrawn[1])
    @rule()
    def withdraw(self) -> None:
        """Only product 1 is ever withdrawn, so the others keep trading for the whole run."""
        assert self.model is not None
        self.shop.stored_product(self.product_ids[1]).withdrawn_at = self.shop.w.clock.now()
        self.model.withdrawn[1] = True

    @invariant()
    def stock_matches_and_is_never_negative(self) -> None:
        if self.model is None:
            return
        for i, product_id in enumerate(self.product_ids):
            stock = self.shop.stored_product(product_id).stock
            assert stock >= 0 and stock == self.model.stock[i]
            sold = sum(o.units.get(i, 0) for o in self.model.orders.values() if o.status == "placed")
            assert stock + sold == self.model.stocked[i]

    @invariant()
    def carts_match_with_exact_totals(self) -> None:
        m = self.model
        if m is None:
            return
        for user, principal in enumerate(self.users):
            view = self.run(self.shop.cart(principal))
            expected = {p: line for p, line in m.carts[user].items() if not m.withdrawn[p]}
            got = {self.product_ids.index(item.product.id): item for item in view.items}
            assert set(got) == set(expected)
            for p, item in got.items():
                assert item.quantity == expected[p].quantity and item.unit_price == m.price[p]
                assert item.line_total == m.price[p] * expected[p].quantity
                assert item.price_changed == (m.price[p] != expected[p].price_at_add)
            assert view.total == sum((m.price[p] * line.quantity for p, line in expected.items()), Decimal("0"))
            assert view.total.as_tuple().exponent == -2


CartMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
TestCartStateMachine = CartMachine.TestCase
