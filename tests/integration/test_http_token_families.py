"""Sessions are refresh-token families, and their access tokens die with them, over HTTP on
SQLite and on Postgres: a replayed refresh token (theft) or a logout refuses every access token
issued from that family at once, not when it expires; other sessions of the account live on."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers import PASSWORD, login, register


def _bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


async def _status(client: Any, access: str) -> int:
    return int((await client.get("/api/users/me", headers=_bearer(access))).status_code)


async def _refresh(client: Any, token: str) -> Any:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def test_a_replayed_refresh_token_refuses_the_familys_access_tokens(client: Any) -> None:
    user = await register(client)
    first = await login(client, user["username"])
    other = await login(client, user["username"])  # another session (device) of the same account
    second = (await _refresh(client, first["refresh_token"])).json()
    third = (await _refresh(client, second["refresh_token"])).json()
    assert [await _status(client, t["access_token"]) for t in (first, second, third)] == [200, 200, 200]

    assert (await _refresh(client, first["refresh_token"])).status_code == 401  # the replay
    for pair in (first, second, third):
        assert await _status(client, pair["access_token"]) == 401
        r = await client.get("/api/cart", headers=_bearer(pair["access_token"]))
        assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert (await _refresh(client, third["refresh_token"])).status_code == 401
    assert await _status(client, other["access_token"]) == 200


async def test_two_racing_replays_both_fail_and_the_family_is_dead(client: Any) -> None:
    user = await register(client)
    first = await login(client, user["username"])
    second = (await _refresh(client, first["refresh_token"])).json()
    replays = await asyncio.gather(*(_refresh(client, first["refresh_token"]) for _ in range(2)))
    assert [r.status_code for r in replays] == [401, 401]
    assert await _status(client, first["access_token"]) == 401
    assert await _status(client, second["access_token"]) == 401
    assert (await _refresh(client, second["refresh_token"])).status_code == 401


async def test_racing_uses_of_one_refresh_token_leave_no_live_access_token(client: Any) -> None:
    user = await register(client)
    pair = await login(client, user["username"])
    answers = await asyncio.gather(*(_refresh(client, pair["refresh_token"]) for _ in range(3)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) <= 1 and set(codes) <= {200, 401}
    if 401 in codes:  # a loser is a replay: the whole family, winner included, is revoked
        for r in answers:
            if r.status_code == 200:
                assert await _status(client, r.json()["access_token"]) == 401
        assert await _status(client, pair["access_token"]) == 401


async def test_logout_refuses_every_access_token_of_the_family(client: Any) -> None:
    user = await register(client)
    first = await login(client, user["username"])
    other = await login(client, user["username"])
    second = (await _refresh(client, first["refresh_token"])).json()
    out = await client.post("/api/auth/logout", headers=_bearer(second["access_token"]))
    assert out.status_code == 204
    assert await _status(client, first["access_token"]) == 401  # issued earlier in the same family
    assert await _status(client, second["access_token"]) == 401
    assert await _status(client, other["access_token"]) == 200
    again = await client.post("/api/auth/token", data={"username": user["username"], "password": PASSWORD})
    assert again.status_code == 200 and await _status(client, again.json()["access_token"]) == 200
