"""Cart routes and checkout (the cart turns into an order here).

Every cart route but checkout also serves a guest cart: ``X-Cart-Token`` instead of a bearer
token (``entrypoints.http.security`` resolves it; with both headers the bearer token wins).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta, Struct

from application.ports.orders import CartItemView, CartView, OrderView
from domain.ids import parse_id
from domain.orders import QUANTITY_MAX, QUANTITY_MIN
from entrypoints.http.dependencies import Caller, Cart, CartCaller, Orders
from entrypoints.http.security import GUEST_OK, PUBLIC, CartTokenHeader

Quantity = Annotated[int, Meta(ge=QUANTITY_MIN, le=QUANTITY_MAX, description="1–99.", examples=[1])]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes a retried checkout return the first order instead of placing another "
        "(1–200 visible ASCII characters).",
    ),
]


class AddCartItemBody(Struct):
    product_id: uuid.UUID
    quantity: Quantity = 1


class UpdateCartItemBody(Struct):
    quantity: Quantity


class GuestCartOut(Struct):
    cart_token: Annotated[str, Meta(description="Send it as `X-Cart-Token` on the cart routes; shown only here.")]


class GuestCartController(Controller):
    """``POST /api/cart/guest``, apart so that only it sits behind its rate limit (``http.app``)."""

    path = "/api/cart"
    tags = ["cart"]

    @post("/guest", operation_id="createGuestCart", summary="Start a guest cart", **PUBLIC)
    async def create_guest(self, cart: Cart) -> Response[GuestCartOut]:
        """Anyone; rate-limited per client address (429 with `Retry-After`). The token is valid for 30 days since its
        last use and is spent when it is merged at login.
        """
        token = await cart.create_guest_cart.execute()
        return Response(
            GuestCartOut(cart_token=token), status_code=HTTP_201_CREATED, headers={"Cache-Control": "no-store"}
        )


class CartController(Controller):
    path = "/api/cart"
    tags = ["cart"]

    @get("/", operation_id="getCart", summary="Your cart", **GUEST_OK)
    async def get_cart(self, request: CartCaller, cart: Cart, cart_token: CartTokenHeader = None) -> CartView:
        """Lines at current prices with exact decimal totals; `price_changed` is true when the price moved since the
        line was added. Withdrawn products drop out.
        """
        return await cart.get_cart.execute(request.user)

    @post(
        "/items",
        operation_id="addCartItem",
        summary="Add a product to the cart",
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=CartItemView, description="The product was already in the cart; quantities added."
            )
        },
        **GUEST_OK,
    )
    async def add_item(
        self, request: CartCaller, data: JSONBody[AddCartItemBody], cart: Cart, cart_token: CartTokenHeader = None
    ) -> Response[CartItemView]:
        """201 with a new line, or 200 when the product was already in the cart (quantities add, up to 99). Own
        product → 403; unknown or withdrawn `product_id` → 422; more than the stock → 409.
        """
        item, created = await cart.add_to_cart.execute(request.user, product_id=data.product_id, quantity=data.quantity)
        return Response(item, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @patch("/items/{item_id:str}", operation_id="updateCartItem", summary="Change a cart line's quantity", **GUEST_OK)
    async def update_item(
        self,
        request: CartCaller,
        item_id: FromPath[str],
        data: JSONBody[UpdateCartItemBody],
        cart: Cart,
        cart_token: CartTokenHeader = None,
    ) -> CartItemView:
        """Others' lines → 404; more than the stock → 409."""
        return await cart.change_cart_quantity.execute(
            request.user, line_id=parse_id(item_id, field="item_id"), quantity=data.quantity
        )

    @delete("/items/{item_id:str}", operation_id="removeCartItem", summary="Remove a line from the cart", **GUEST_OK)
    async def remove_item(
        self, request: CartCaller, item_id: FromPath[str], cart: Cart, cart_token: CartTokenHeader = None
    ) -> None:
        """Others' lines → 404."""
        await cart.remove_cart_item.execute(request.user, line_id=parse_id(item_id, field="item_id"))

    @delete("/", operation_id="clearCart", summary="Empty the cart", **GUEST_OK)
    async def clear(self, request: CartCaller, cart: Cart, cart_token: CartTokenHeader = None) -> None:
        await cart.clear_cart.execute(request.user)

    @post("/checkout", operation_id="checkout", summary="Turn the cart into an order")
    async def checkout(self, request: Caller, orders: Orders, idempotency_key: IdempotencyKey = None) -> OrderView:
        """Prices and names are snapshotted, stock is taken atomically (409 naming the product when it runs out;
        nothing is ordered and the cart stays) and the cart empties. With an `Idempotency-Key` a retry returns the
        same order. Empty cart → 422. Needs a signed-in user: a guest cart token alone gets 401 (log in with it to
        merge the cart first).
        """
        return await orders.checkout.execute(request.user, idempotency_key=idempotency_key)
