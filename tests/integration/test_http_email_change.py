"""Changing the account email over HTTP, on SQLite and on Postgres: it needs `current_password`
(a stolen access token alone cannot take the account over), clears `email_verified`, mails a
verification link to the new address and a notice to the old one (outbox jobs)."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

from tests.helpers import PASSWORD, drain_jobs, login, user_headers


def _mails(container: Any) -> list[Any]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in container.settings.outbox_dir.glob("*.eml")
    ]


def _text(message: Any) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def test_an_email_change_without_the_right_password_is_401_and_changes_nothing(
    client: Any, container: Any
) -> None:
    user, headers = await user_headers(client)
    for body in (
        {"email": "thief@example.com"},
        {"email": "thief@example.com", "current_password": "not my password"},
        {"email": "thief@example.com", "current_password": None},
        {"username": "new_name_1", "email": "thief@example.com"},
    ):
        r = await client.patch("/api/users/me", json=body, headers=headers)
        assert r.status_code == 401, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    me = (await client.get("/api/users/me", headers=headers)).json()
    assert (me["email"], me["username"]) == (user["email"], user["username"])
    await drain_jobs(client, container)
    assert not any("thief@example.com" in str(m["To"]) for m in _mails(container))
    r = await client.post("/api/auth/password-reset", json={"email": "thief@example.com"})
    assert r.status_code == 202  # no such account: nothing mailed to the would-be thief
    await drain_jobs(client, container)
    assert not any("thief@example.com" in str(m["To"]) for m in _mails(container))


async def test_an_email_change_reverifies_and_notifies_the_old_address(client: Any, container: Any) -> None:
    user, headers = await user_headers(client)
    await drain_jobs(client, container)
    old_link = re.search(r"token=([\w-]+)", _text(next(m for m in _mails(container) if "Confirm" in str(m["Subject"]))))
    assert old_link is not None
    new = f"new.{user['username']}@example.org"
    r = await client.patch("/api/users/me", json={"email": new, "current_password": PASSWORD}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == new and r.json()["email_verified"] is False
    await drain_jobs(client, container)
    mails = _mails(container)
    to_new = [m for m in mails if str(m["To"]) == new]
    notices = [m for m in mails if str(m["To"]) == user["email"] and "changed" in str(m["Subject"])]
    assert len(to_new) == 1 and "Confirm" in str(to_new[0]["Subject"])
    assert len(notices) == 1 and new in _text(notices[0])
    # The link mailed to the old address at registration no longer verifies anything.
    r = await client.post("/api/auth/verify-email", json={"token": old_link.group(1)})
    assert r.status_code == 400
    token = re.search(r"token=([\w-]+)", _text(to_new[0]))
    assert token is not None
    assert (await client.post("/api/auth/verify-email", json={"token": token.group(1)})).status_code == 204
    assert (await client.get("/api/users/me", headers=headers)).json()["email_verified"] is True
    await login(client, new)


async def test_a_letter_case_change_keeps_verification_and_needs_no_password(client: Any) -> None:
    user, headers = await user_headers(client)
    r = await client.patch("/api/users/me", json={"email": user["email"].upper()}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == user["email"].upper()
