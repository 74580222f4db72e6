"""Public profiles: GET /api/users/{user_id} (never the email)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import FromPath

from domain.ids import parse_id
from entrypoints.http.dependencies import Users
from entrypoints.http.schemas import PublicProfileOut, to_struct
from entrypoints.http.security import PUBLIC


class PublicProfilesController(Controller):
    path = "/api/users"
    tags = ["users"]

    @get("/{user_id:str}", operation_id="getPublicProfile", summary="A user's public profile", **PUBLIC)
    async def public_profile(self, user_id: FromPath[str], users: Users) -> PublicProfileOut:
        """`product_count` counts live listings; `rating_avg` is the mean over all reviews of them (two decimals,
        null without reviews). Deleted users → 404. Never the email.
        """
        profile = await users.get_public_profile.execute(parse_id(user_id, field="user_id"))
        return to_struct(profile, PublicProfileOut)
