"""Auth use cases on in-memory adapters: rules, rotation, reuse detection, throttling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.memory.auth import MemoryAccountStates
from application.identity import Principal
from application.use_cases import auth, users
from domain.errors import AuthenticationFailed, Conflict, InvalidInput, RuleViolation, TooManyAttempts
from domain.users import validate_username
from tests.unit.fakes import make_world

PW = "correct horse battery"


async def test_register_then_login_case_insensitively() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="Alice", email="Alice@Example.com", password=PW)
    assert user.role.value == "user" and not user.email_verified
    pair = await auth.Login(w.deps).execute(login="alice@example.COM", password=PW)
    assert pair.token_type == "bearer" and pair.expires_in == 900
    pair = await auth.Login(w.deps).execute(login="ALICE", password=PW)
    assert pair.refresh_token


async def test_register_enqueues_welcome_and_verification_emails() -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    assert sorted(kind for kind, _, _ in w.queue.jobs) == ["send_verification_email", "send_welcome_email"]


async def test_register_survives_queue_outage_and_keeps_jobs_in_outbox() -> None:
    w = make_world()
    w.queue.down = True
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    outbox = w.uow.store.table("outbox")
    assert len(outbox) == 2 and all(row["dispatched_at"] is None for row in outbox.values())


@pytest.mark.parametrize(("username", "email"), [("alice", "other@example.com"), ("bob", "ALICE@example.com")])
async def test_duplicates_conflict_case_insensitively(username: str, email: str) -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="Alice", email="alice@example.com", password=PW)
    with pytest.raises(Conflict):
        await auth.Register(w.deps).execute(username=username.upper(), email=email, password=PW)
    assert len(w.uow.store.table("users")) == 1


@pytest.mark.parametrize(
    ("username", "email", "password"),
    [
        ("ab", "a@example.com", PW),
        ("a" * 33, "a@example.com", PW),
        ("bad name", "a@example.com", PW),
        ("alice", "not-an-email", PW),
        ("alice", "a@example.com", "short"),
        ("alice", "a@example.com", "x" * 129),
    ],
)
async def test_register_rules(username: str, email: str, password: str) -> None:
    w = make_world()
    with pytest.raises(RuleViolation):
        await auth.Register(w.deps).execute(username=username, email=email, password=password)
    assert not w.uow.store.table("users")


async def test_unknown_user_and_wrong_password_look_the_same_and_burn_work() -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    with pytest.raises(AuthenticationFailed) as unknown:
        await auth.Login(w.deps).execute(login="nobody@example.com", password=PW)
    with pytest.raises(AuthenticationFailed) as wrong:
        await auth.Login(w.deps).execute(login="alice", password="wrong password!")
    assert unknown.value.detail == wrong.value.detail
    assert w.hasher.burned == 1


async def test_login_rehashes_outdated_hash() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    w.hasher.version = "v3"
    await auth.Login(w.deps).execute(login="alice", password=PW)
    stored = w.uow.store.table("users")[user.id]
    assert stored.password_hash.startswith("v3$")


async def test_failed_logins_are_throttled_per_account() -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    login = auth.Login(w.deps, failure_limit=3)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await login.execute(login="alice", password="wrong password!")
    with pytest.raises(TooManyAttempts) as throttled:
        await login.execute(login="alice", password=PW)
    assert throttled.value.retry_after >= 1


async def test_refresh_rotates_and_replay_revokes_family() -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    first = await auth.Login(w.deps).execute(login="alice", password=PW)
    second = await auth.Refresh(w.deps).execute(refresh_token=first.refresh_token)
    third = await auth.Refresh(w.deps).execute(refresh_token=second.refresh_token)
    with pytest.raises(AuthenticationFailed):
        await auth.Refresh(w.deps).execute(refresh_token=first.refresh_token)
    with pytest.raises(AuthenticationFailed):  # the newest token died with its family
        await auth.Refresh(w.deps).execute(refresh_token=third.refresh_token)


async def test_other_sessions_survive_a_replay_in_one_family() -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    phone = await auth.Login(w.deps).execute(login="alice", password=PW)
    laptop = await auth.Login(w.deps).execute(login="alice", password=PW)
    await auth.Refresh(w.deps).execute(refresh_token=phone.refresh_token)
    with pytest.raises(AuthenticationFailed):
        await auth.Refresh(w.deps).execute(refresh_token=phone.refresh_token)
    assert await auth.Refresh(w.deps).execute(refresh_token=laptop.refresh_token)


async def test_a_replay_refuses_the_familys_access_tokens_at_once() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    phone = await auth.Login(w.deps).execute(login="alice", password=PW)
    await auth.Login(w.deps).execute(login="alice", password=PW)  # the laptop
    families = {t.family_id for t in w.uow.store.table("refresh_tokens").values()}
    await auth.Refresh(w.deps).execute(refresh_token=phone.refresh_token)
    phone_family = next(t.family_id for t in w.uow.store.table("refresh_tokens").values() if t.used_at is not None)
    check = auth.CheckAccessToken(w.deps, MemoryAccountStates(w.uow.store))

    def claims(family: object) -> dict[str, object]:
        return {"user_id": user.id, "token_version": 0, "token_id": None, "family_id": family}

    assert all([await check.execute(**claims(f)) for f in families])  # type: ignore[arg-type]
    with pytest.raises(AuthenticationFailed):
        await auth.Refresh(w.deps).execute(refresh_token=phone.refresh_token)
    assert await check.execute(**claims(phone_family)) is None  # type: ignore[arg-type]
    (laptop_family,) = families - {phone_family}
    assert await check.execute(**claims(laptop_family)) is not None  # type: ignore[arg-type]


async def test_expired_refresh_token_is_refused() -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    pair = await auth.Login(w.deps).execute(login="alice", password=PW)
    w.clock.advance(days=31)
    with pytest.raises(AuthenticationFailed):
        await auth.Refresh(w.deps).execute(refresh_token=pair.refresh_token)


async def test_password_reset_is_single_use_and_ends_sessions() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    pair = await auth.Login(w.deps).execute(login="alice", password=PW)
    await auth.RequestPasswordReset(w.deps).execute(email="A@example.com")
    token = next(p["token"] for kind, p, _ in w.queue.jobs if kind == "send_password_reset_email")
    await auth.ConfirmPasswordReset(w.deps).execute(token=token, new_password="a brand new password")
    with pytest.raises(InvalidInput):
        await auth.ConfirmPasswordReset(w.deps).execute(token=token, new_password="another new password")
    with pytest.raises(AuthenticationFailed):
        await auth.Refresh(w.deps).execute(refresh_token=pair.refresh_token)
    check = auth.CheckAccessToken(w.deps, MemoryAccountStates(w.uow.store))
    assert await check.execute(user_id=user.id, token_version=0, token_id="x", family_id=None) is None
    assert await auth.Login(w.deps).execute(login="alice", password="a brand new password")


async def test_password_reset_for_unknown_email_is_silent() -> None:
    w = make_world()
    await auth.RequestPasswordReset(w.deps).execute(email="nobody@example.com")
    assert w.queue.jobs == []


async def test_verify_email_once() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    token = next(p["token"] for kind, p, _ in w.queue.jobs if kind == "send_verification_email")
    await auth.VerifyEmail(w.deps).execute(token=token)
    me = await users.GetMe(w.uow).execute(Principal(id=user.id, role=user.role))
    assert me.email_verified
    with pytest.raises(InvalidInput):
        await auth.VerifyEmail(w.deps).execute(token=token)


async def test_logout_denies_token_and_family() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    pair = await auth.Login(w.deps).execute(login="alice", password=PW)
    family = next(iter(w.uow.store.table("refresh_tokens").values())).family_id
    principal = Principal(id=user.id, role=user.role, family_id=family, token_id="jti-1")
    await auth.Logout(w.deps).execute(principal)
    check = auth.CheckAccessToken(w.deps, MemoryAccountStates(w.uow.store))
    assert await check.execute(user_id=user.id, token_version=0, token_id="jti-1", family_id=family) is None
    # A token without a family (the form before sessions had one) is refused by the deny-list.
    assert await check.execute(user_id=user.id, token_version=0, token_id="jti-1", family_id=None) is None
    assert await check.execute(user_id=user.id, token_version=0, token_id="jti-2", family_id=None) is not None
    with pytest.raises(AuthenticationFailed):
        await auth.Refresh(w.deps).execute(refresh_token=pair.refresh_token)


async def test_password_change_needs_current_password() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    me = Principal(id=user.id, role=user.role)
    with pytest.raises(AuthenticationFailed):  # missing: 401, as the contract says
        await users.UpdateMe(w.deps).execute(me, password="a brand new password")
    with pytest.raises(AuthenticationFailed):
        await users.UpdateMe(w.deps).execute(me, password="a brand new password", current_password="nope")
    await users.UpdateMe(w.deps).execute(me, password="a brand new password", current_password=PW)
    assert await auth.Login(w.deps).execute(login="alice", password="a brand new password")


async def test_an_email_change_needs_the_current_password_and_reverifies() -> None:
    from application.jobs import SEND_EMAIL_CHANGED, SEND_VERIFICATION

    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    (old_link,) = [r["payload"]["token"] for r in w.uow.store.table("outbox").values() if "token" in r["payload"]]
    me = Principal(id=user.id, role=user.role)
    for current in (None, "wrong password!"):
        with pytest.raises(AuthenticationFailed):
            await users.UpdateMe(w.deps).execute(me, email="thief@example.com", current_password=current)
    stored = w.uow.store.table("users")[user.id]
    assert stored.email == "a@example.com"
    stored.email_verified = True
    outbox_before = len(w.uow.store.table("outbox"))
    same = await users.UpdateMe(w.deps).execute(me, email="A@example.com")  # letter case only: no password
    assert same.email_verified
    changed = await users.UpdateMe(w.deps).execute(me, email="new@example.com", current_password=PW)
    assert changed.email == "new@example.com" and not changed.email_verified
    rows = list(w.uow.store.table("outbox").values())[outbox_before:]
    assert [r["kind"] for r in rows] == [SEND_VERIFICATION, SEND_EMAIL_CHANGED]
    assert rows[1]["payload"]["old_email"] == "A@example.com"
    with pytest.raises(InvalidInput):  # the link mailed to the old address cannot verify the new one
        await auth.VerifyEmail(w.deps).execute(token=old_link)
    await auth.VerifyEmail(w.deps).execute(token=rows[0]["payload"]["token"])
    assert w.uow.store.table("users")[user.id].email_verified


async def test_deleted_account_cannot_log_in_and_frees_its_name() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    await users.DeleteMe(w.deps).execute(Principal(id=user.id, role=user.role))
    with pytest.raises(AuthenticationFailed):
        await auth.Login(w.deps).execute(login="alice", password=PW)
    await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)


@given(st.text(max_size=40))
def test_username_rule_matches_the_contract(name: str) -> None:
    import re

    ok = re.fullmatch(r"[A-Za-z0-9_.-]{3,32}", name) is not None
    try:
        validate_username(name)
        accepted = True
    except RuleViolation:
        accepted = False
    assert accepted == ok


async def test_token_check_reads_account_state_only() -> None:
    w = make_world()
    user = await auth.Register(w.deps).execute(username="alice", email="a@example.com", password=PW)
    check = auth.CheckAccessToken(w.deps, MemoryAccountStates(w.uow.store))
    principal = await check.execute(user_id=user.id, token_version=0, token_id="t1", family_id=None)
    assert principal is not None
    assert principal.role.value == "user"
    assert await check.execute(user_id=user.id, token_version=1, token_id="t2", family_id=None) is None
    await users.DeleteMe(w.deps).execute(Principal(id=user.id, role=user.role))
    assert await check.execute(user_id=user.id, token_version=0, token_id="t3", family_id=None) is None
