"""Order history, cancellation and the seller's sales."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, Parameter
from litestar.status_codes import HTTP_200_OK

from application.pagination import PAGE_DEFAULT, PAGE_MAX, PAGE_MIN, Page
from application.ports.orders import OrderView, SaleView
from domain.ids import parse_id
from entrypoints.http.dependencies import Caller, Orders

Limit = Annotated[int, Parameter(ge=PAGE_MIN, le=PAGE_MAX, description="Page size, 1–100.")]
Cursor = Annotated[
    str | None, Parameter(required=False, max_length=512, description="`next_cursor` from the previous page.")
]


class OrdersController(Controller):
    path = "/api/orders"
    tags = ["orders"]

    @get("/", operation_id="listOrders", summary="Your orders, newest first")
    async def list_orders(
        self, request: Caller, orders: Orders, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
    ) -> Page[OrderView]:
        return await orders.list_orders.execute(request.user, limit=limit, cursor=cursor)

    @get("/{order_id:str}", operation_id="getOrder", summary="One of your orders")
    async def get_order(self, request: Caller, order_id: FromPath[str], orders: Orders) -> OrderView:
        """Others' → 404."""
        return await orders.get_order.execute(request.user, order_id=parse_id(order_id, field="order_id"))

    @post(
        "/{order_id:str}/cancel", operation_id="cancelOrder", summary="Cancel a placed order", status_code=HTTP_200_OK
    )
    async def cancel_order(self, request: Caller, order_id: FromPath[str], orders: Orders) -> OrderView:
        """The stock goes back. Only the buyer may cancel (others → 404); twice → 409."""
        return await orders.cancel_order.execute(request.user, order_id=parse_id(order_id, field="order_id"))


class SalesController(Controller):
    path = "/api/sales"
    tags = ["orders"]

    @get("/", operation_id="listSales", summary="Order lines of your products, newest first")
    async def list_sales(
        self, request: Caller, orders: Orders, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
    ) -> Page[SaleView]:
        """Each line with its order's current status (a cancelled order's lines show `cancelled`)."""
        return await orders.list_sales.execute(request.user, limit=limit, cursor=cursor)
