"""One contract for the user and session repositories, run on memory, SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import Conflict
from domain.ids import new_id
from domain.sessions import EmailToken, EmailTokenPurpose, RefreshToken
from domain.users import Role, User

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_user(name: str, email: str | None = None) -> User:
    return User(
        id=new_id(),
        username=name,
        email=email or f"{name}@example.com",
        password_hash="h",
        role=Role.USER,
        created_at=NOW,
        updated_at=NOW,
    )


async def add_users(any_uow, *users: User) -> None:
    async with any_uow() as uow:
        for user in users:
            await uow.users.add(user)
        await uow.commit()


async def test_add_get_and_login_lookup_case_insensitive(any_uow) -> None:
    user = make_user("Alice")
    async with any_uow() as uow:
        await uow.users.add(user)
        await uow.commit()
    async with any_uow() as uow:
        assert (await uow.users.get(user.id)).username == "Alice"
        assert (await uow.users.get_by_login("ALICE")).id == user.id
        assert (await uow.users.get_by_login("alice@EXAMPLE.com")).id == user.id
        assert await uow.users.get_by_login("bob") is None


@pytest.mark.parametrize("clash", [("ALICE", "other@example.com"), ("bob", "Alice@Example.COM")])
async def test_unique_username_and_email_case_insensitive(any_uow, clash) -> None:
    async with any_uow() as uow:
        await uow.users.add(make_user("alice"))
        await uow.commit()
    async with any_uow() as uow:
        with pytest.raises(Conflict):
            await uow.users.add(make_user(clash[0], clash[1]))


async def test_uncommitted_work_rolls_back(any_uow) -> None:
    user = make_user("ghost")
    async with any_uow() as uow:
        await uow.users.add(user)
    async with any_uow() as uow:
        assert await uow.users.get(user.id) is None


async def test_failure_mid_unit_rolls_back_everything(any_uow) -> None:
    first = make_user("first")

    async def add_both() -> None:
        async with any_uow() as uow:
            await uow.users.add(first)
            await uow.users.add(make_user("FIRST", "x@example.com"))
            await uow.commit()

    with pytest.raises(Conflict):
        await add_both()
    async with any_uow() as uow:
        assert await uow.users.get(first.id) is None


async def test_a_refused_statement_ends_its_unit_of_work(any_uow) -> None:
    """Postgres aborts the transaction at a refused statement, SQLite undoes only the statement:
    either way a caller that goes on and commits gets an error, never a half-written change."""
    if hasattr(any_uow, "store"):
        pytest.skip("the in-memory twin has no statements to refuse")
    from adapters.sql.executor import TransactionAborted

    await add_users(any_uow, make_user("taken"))
    before_the_clash = make_user("before")

    async def go_on_after_the_clash() -> None:
        async with any_uow() as uow:
            await uow.users.add(before_the_clash)
            with pytest.raises(Conflict):
                await uow.users.add(make_user("TAKEN", "other@example.com"))
            await uow.commit()

    with pytest.raises(TransactionAborted):
        await go_on_after_the_clash()
    async with any_uow() as uow:
        assert await uow.users.get(before_the_clash.id) is None


async def test_update_and_deleted_users_are_invisible(any_uow) -> None:
    user = make_user("carol")
    async with any_uow() as uow:
        await uow.users.add(user)
        user.email_verified = True
        user.token_version = 3
        await uow.users.update(user)
        await uow.commit()
    async with any_uow() as uow:
        stored = await uow.users.get(user.id)
        assert stored.email_verified
        assert stored.token_version == 3
        stored.deleted_at = NOW
        await uow.users.update(stored)
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.users.get(user.id) is None
        assert await uow.users.get_by_login("carol") is None


async def test_refresh_tokens_spend_once_and_revoke_by_family(any_uow) -> None:
    user = make_user("dave")
    family, other_family = new_id(), new_id()
    tokens = [
        RefreshToken(
            id=new_id(), user_id=user.id, family_id=f, token_hash=h, expires_at=NOW + timedelta(days=1), created_at=NOW
        )
        for f, h in ((family, "a" * 64), (family, "b" * 64), (other_family, "c" * 64))
    ]
    async with any_uow() as uow:
        await uow.users.add(user)
        for token in tokens:
            await uow.refresh_tokens.add(token)
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.refresh_tokens.spend(tokens[0].id, NOW)
        assert not await uow.refresh_tokens.spend(tokens[0].id, NOW)
        await uow.refresh_tokens.revoke_family(family, NOW)
        await uow.commit()
    async with any_uow() as uow:
        assert (await uow.refresh_tokens.get_by_hash("b" * 64)).revoked_at is not None
        assert (await uow.refresh_tokens.get_by_hash("c" * 64)).revoked_at is None
        await uow.refresh_tokens.revoke_user(user.id, NOW, keep_family=other_family)
        await uow.commit()
    async with any_uow() as uow:
        assert (await uow.refresh_tokens.get_by_hash("c" * 64)).revoked_at is None
        await uow.refresh_tokens.revoke_user(user.id, NOW)
        await uow.commit()
    async with any_uow() as uow:
        assert (await uow.refresh_tokens.get_by_hash("c" * 64)).revoked_at is not None


async def test_email_tokens_by_purpose_and_single_use(any_uow) -> None:
    user = make_user("erin")
    token = EmailToken(
        id=new_id(),
        user_id=user.id,
        purpose=EmailTokenPurpose.PASSWORD_RESET,
        token_hash="d" * 64,
        expires_at=NOW + timedelta(hours=1),
        created_at=NOW,
    )
    async with any_uow() as uow:
        await uow.users.add(user)
        await uow.email_tokens.add(token)
        await uow.commit()
    async with any_uow() as uow:
        assert await uow.email_tokens.get_by_hash("d" * 64, EmailTokenPurpose.VERIFY_EMAIL) is None
        found = await uow.email_tokens.get_by_hash("d" * 64, EmailTokenPurpose.PASSWORD_RESET)
        assert found is not None
        assert await uow.email_tokens.spend(found.id, NOW)
        assert not await uow.email_tokens.spend(found.id, NOW)
        await uow.commit()


async def test_outbox_rows_commit_with_the_unit(any_uow) -> None:
    async with any_uow() as uow:
        first = await uow.outbox.add("kind", {"a": 1})
        await uow.commit()
    async with any_uow() as uow:
        second = await uow.outbox.add("kind", {"b": 2})
    assert first != second


async def test_outbox_add_many_writes_every_job_in_order(any_uow) -> None:
    from adapters.memory.outbox import MemoryOutboxJobStore
    from adapters.sql.outbox import SqlOutboxJobStore

    jobs = MemoryOutboxJobStore(any_uow.store) if hasattr(any_uow, "store") else SqlOutboxJobStore(any_uow.db)
    async with any_uow() as uow:
        ids = await uow.outbox.add_many([("one", {"n": 1}), ("two", {"n": 2}), ("one", {"n": 3})])
        assert await uow.outbox.add_many([]) == []
        await uow.commit()
    assert len(set(ids)) == 3
    stored = [await jobs.get(outbox_id) for outbox_id in ids]
    assert [(e.kind, e.payload, e.attempts, e.processed_at) for e in stored] == [
        ("one", {"n": 1}, 0, None),
        ("two", {"n": 2}, 0, None),
        ("one", {"n": 3}, 0, None),
    ]
    async with any_uow() as uow:
        rolled_back = await uow.outbox.add_many([("three", {})])
    assert await jobs.get(rolled_back[0]) is None


async def test_account_states_for_the_token_check(any_uow) -> None:
    from adapters.memory.auth import MemoryAccountStates
    from adapters.sql.repositories.auth import SqlAccountStates

    if hasattr(any_uow, "store"):
        implementations: list = [MemoryAccountStates(any_uow.store)]
    else:
        implementations = [SqlAccountStates(any_uow.db.reads)]
    user = make_user("frank")
    user.role = Role.ADMIN
    user.token_version = 2
    async with any_uow() as uow:
        await uow.users.add(user)
        await uow.commit()
    for states in implementations:
        assert await states.auth_state(user.id) == ("admin", 2)
        assert await states.auth_state(new_id()) is None
    live, revoked = new_id(), new_id()
    async with any_uow() as uow:
        for family in (live, revoked):
            await uow.refresh_tokens.add(
                RefreshToken(
                    id=new_id(),
                    user_id=user.id,
                    family_id=family,
                    token_hash=f"hash-{family}",
                    expires_at=NOW + timedelta(days=1),
                    created_at=NOW,
                )
            )
        await uow.refresh_tokens.revoke_family(revoked, NOW)
        await uow.commit()
    for states in implementations:  # the session's revocation is part of the same read
        assert await states.auth_state(user.id, live) == ("admin", 2)
        assert await states.auth_state(user.id, new_id()) == ("admin", 2)  # rows purged: the version decides
        assert await states.auth_state(user.id, revoked) is None
    async with any_uow() as uow:
        stored = await uow.users.get(user.id)
        stored.deleted_at = NOW
        await uow.users.update(stored)
        await uow.commit()
    for states in implementations:
        assert await states.auth_state(user.id) is None


async def test_outbox_books_for_the_metrics(any_uow) -> None:
    from adapters.memory.outbox import MemoryOutboxJobStore
    from adapters.sql.outbox import SqlOutboxJobStore

    jobs = MemoryOutboxJobStore(any_uow.store) if hasattr(any_uow, "store") else SqlOutboxJobStore(any_uow.db)
    assert await jobs.oldest_pending() is None and await jobs.outcome_counts() == {}
    async with any_uow() as uow:
        done, failing, pending = await uow.outbox.add_many([("mail", {}), ("mail", {}), ("feed", {})])
        await uow.commit()
    now = datetime.now(UTC)
    await jobs.mark_processed(done, now, payload={})
    await jobs.record_failure(failing, "smtp down", now)
    assert (await jobs.get(pending)).dispatched_at is not None  # born claimed by its writer
    await jobs.unclaim([pending])
    assert await jobs.outcome_counts() == {("mail", "done"): 1, ("mail", "failing"): 1, ("feed", "pending"): 1}
    oldest = await jobs.oldest_pending()
    assert oldest is not None and oldest <= datetime.now(UTC)
    assert (await jobs.get(pending)).dispatched_at is None  # released for the relay
