"""Request and response bodies shared across controllers (msgspec Structs → OpenAPI schemas).

Unknown fields in request bodies are ignored, so mass assignment (``role``, ``id``, ...) does
nothing. Constraints here document the contract and fail fast; the domain checks them again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Struct

T = TypeVar("T")

Username = Annotated[str, Meta(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$", examples=["alice_01"])]
Email = Annotated[str, Meta(min_length=3, max_length=254, examples=["alice@example.com"])]
Password = Annotated[str, Meta(min_length=10, max_length=128, examples=["correct horse battery"])]
Secret = Annotated[str, Meta(min_length=1, max_length=512)]


class RegisterBody(Struct):
    username: Username
    email: Email
    password: Password


class LoginBody(Struct):
    email: Annotated[
        str,
        Meta(min_length=1, max_length=254, description="Email or username.", examples=["alice@example.com"]),
    ]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]
    # A guest cart to merge at login (or the X-Cart-Token header, which wins); never fails a login.
    cart_token: str | None = None


class OAuth2PasswordForm(Struct):
    username: Annotated[str, Meta(min_length=1, max_length=254)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]
    grant_type: str | None = None
    scope: str | None = None


class RefreshBody(Struct):
    refresh_token: Secret


class TokenBody(Struct):
    token: Secret


class PasswordResetBody(Struct):
    email: Annotated[str, Meta(min_length=1, max_length=254)]


class PasswordResetConfirmBody(Struct):
    token: Secret
    new_password: Password


class TokenPairOut(Struct):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class UserOut(Struct):
    id: uuid.UUID
    username: str
    email: str
    email_verified: bool
    role: str
    created_at: datetime
    updated_at: datetime


class UpdateMeBody(Struct, omit_defaults=True):
    username: Username | None = None
    email: Email | None = None
    password: Password | None = None
    current_password: Annotated[str, Meta(max_length=1024)] | None = None


class PublicProfileOut(Struct):
    id: uuid.UUID
    username: str
    created_at: datetime
    product_count: int
    rating_avg: float | None


def to_struct(value: Any, kind: type[T]) -> T:
    return msgspec.convert(value, kind, from_attributes=True)
