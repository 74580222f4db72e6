"""Who is calling: the authenticated principal handed to use cases by the entrypoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.orders import CartOwner
from domain.users import Role


@dataclass(frozen=True, slots=True)
class Principal:
    id: uuid.UUID
    role: Role
    # The refresh-token family of the session this access token belongs to (for logout).
    family_id: uuid.UUID | None = None
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def cart_owner(self) -> CartOwner:
        return CartOwner.of_user(self.id)


@dataclass(frozen=True, slots=True)
class Guest:
    """A caller holding a guest cart's token (``X-Cart-Token``) instead of an account.

    Only the cart routes (not checkout) ever see one; everything else needs a ``Principal``.
    """

    cart_id: uuid.UUID

    @property
    def cart_owner(self) -> CartOwner:
        return CartOwner.of_guest(self.cart_id)


# Who may use a cart: a signed-in user or a guest.
CartHolder = Principal | Guest
