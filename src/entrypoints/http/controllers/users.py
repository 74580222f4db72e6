"""Own profile and public profiles."""

from __future__ import annotations

from litestar import Controller, delete, get, patch
from litestar.params import JSONBody

from entrypoints.http.dependencies import Caller, Users
from entrypoints.http.schemas import UpdateMeBody, UserOut, to_struct


class UsersController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/me", operation_id="getMe", summary="Your own profile")
    async def me(self, request: Caller, users: Users) -> UserOut:
        return to_struct(await users.get_me.execute(request.user), UserOut)

    @patch("/me", operation_id="updateMe", summary="Change username, email or password")
    async def update_me(self, request: Caller, data: JSONBody[UpdateMeBody], users: Users) -> UserOut:
        """An email or password change needs `current_password` (401 when missing or wrong). A new email is
        unverified until confirmed through the link mailed to it; the old address gets a notice. A password change
        ends your other sessions, their access tokens included.
        """
        user = await users.update_me.execute(
            request.user,
            username=data.username,
            email=data.email,
            password=data.password,
            current_password=data.current_password,
        )
        return to_struct(user, UserOut)

    @delete("/me", operation_id="deleteMe", summary="Delete your account")
    async def delete_me(self, request: Caller, users: Users) -> None:
        """Listings are withdrawn; orders are kept, anonymised."""
        await users.delete_me.execute(request.user)
