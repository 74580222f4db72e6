"""Own profile and public profiles."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from application.identity import Principal
from entrypoints.bundles import UserUseCases
from entrypoints.http.schemas import UpdateMeBody, UserOut, to_struct


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/me", operation_id="getMe", summary="Your own profile")
    async def me(self, request: Request[Principal, Any, Any], users: NamedDependency[UserUseCases]) -> UserOut:
        return to_struct(await users.get_me.execute(request.user), UserOut)

    @patch(
        "/me",
        operation_id="updateMe",
        summary="Change username, email or password",
        description="An email or password change needs `current_password` (401 when missing or wrong). "
        "A new email is unverified until confirmed through the link mailed to it; the old address gets a "
        "notice. A password change ends your other sessions, their access tokens included.",
    )
    async def update_me(
        self,
        request: Request[Principal, Any, Any],
        data: JSONBody[UpdateMeBody],
        users: NamedDependency[UserUseCases],
    ) -> UserOut:
        user = await users.update_me.execute(
            request.user,
            username=data.username,
            email=data.email,
            password=data.password,
            current_password=data.current_password,
        )
        return to_struct(user, UserOut)

    @delete(
        "/me",
        operation_id="deleteMe",
        summary="Delete your account",
        status_code=HTTP_204_NO_CONTENT,
        description="Listings are withdrawn; orders are kept, anonymised.",
    )
    async def delete_me(self, request: Request[Principal, Any, Any], users: NamedDependency[UserUseCases]) -> None:
        await users.delete_me.execute(request.user)
