"""Own profile, public profiles, account changes and deletion."""

from __future__ import annotations

import uuid
from datetime import datetime

from application.cached_catalog import CacheInvalidation
from application.identity import Principal
from application.jobs import SEND_EMAIL_CHANGED, OutboxJob, record
from application.ports.catalog import CatalogQueries
from application.ports.persistence import UnitOfWork
from application.use_cases.auth import AuthDeps, deny_access_token, token_mail
from application.use_cases.base import UnitOfWorkUseCase, UseCase
from application.views.catalog import PublicProfile
from domain.errors import AuthenticationFailed, NotFound
from domain.orders import CartOwner
from domain.sessions import EmailTokenPurpose
from domain.users import Role, User, normalize_email, validate_password, validate_username


class GetMe(UnitOfWorkUseCase):
    async def execute(self, principal: Principal) -> User:
        async with self.uow() as uow:
            user = await uow.users.get(principal.id)
        if user is None:
            raise NotFound("No such user.")
        return user


class GrantAdmin(UnitOfWorkUseCase):
    """Make an account an admin (the operator's ``create-admin`` command, the demo accounts)."""

    async def execute(self, user_id: uuid.UUID) -> None:
        async with self.uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise NotFound("No such user.")
            user.role = Role.ADMIN
            await uow.users.update(user)
            await uow.commit()


class UpdateMe(UseCase[AuthDeps]):
    """Change username, email or password; an email or password change needs the current password.

    Without it a stolen access token would take the account over (change the email, then reset
    the password). A new email is unverified: old verification links die, a new one goes to the
    new address and a notice to the old one (outbox jobs, committed with the change). A password
    change ends the account's other sessions (refresh tokens and their access tokens); this one stays.
    """

    async def execute(
        self,
        principal: Principal,
        *,
        username: str | None = None,
        email: str | None = None,
        password: str | None = None,
        current_password: str | None = None,
    ) -> User:
        if username is not None:
            validate_username(username)
        if email is not None:
            email = normalize_email(email)
        new_hash: str | None = None
        async with self.deps.uow() as uow:
            user = await uow.users.get(principal.id)
            if user is None:
                raise NotFound("No such user.")
            old_email = user.email
            email_changes = email is not None and email.lower() != old_email.lower()
            if password is not None:
                validate_password(password)
            if password is not None or email_changes:
                if current_password is None:
                    raise AuthenticationFailed("current_password is required to change the email or password.")
                if not await self.deps.hasher.verify(user.password_hash, current_password):
                    raise AuthenticationFailed("current_password is wrong.")
            if password is not None:
                new_hash = await self.deps.hasher.hash(password)
            now = self.deps.clock.now()
            if username is not None:
                user.username = username
            if email is not None:
                user.email = email  # a change of letter case only keeps the verification
            if new_hash is not None:
                user.password_hash = new_hash
                await uow.refresh_tokens.revoke_user(user.id, now, keep_family=principal.family_id)
            user.updated_at = now
            jobs: list[OutboxJob] = []
            if email_changes:
                user.email_verified = False
            await uow.users.update(user)
            if email_changes:
                await uow.email_tokens.spend_all(user.id, EmailTokenPurpose.VERIFY_EMAIL, now)
                verify = await token_mail(self.deps, uow, user, EmailTokenPurpose.VERIFY_EMAIL)
                jobs = await record(
                    uow, [verify, (SEND_EMAIL_CHANGED, {"user_id": str(user.id), "old_email": old_email})]
                )
            await uow.commit()
        if jobs:
            await self.deps.jobs.dispatch(jobs)
        return user


class DeleteMe:
    """Delete the account: listings withdrawn, orders kept but anonymised, sessions ended."""

    def __init__(self, deps: AuthDeps, invalidation: CacheInvalidation | None = None) -> None:
        self.deps = deps
        self.invalidation = invalidation

    async def execute(self, principal: Principal) -> None:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            user = await uow.users.get(principal.id)
            if user is None:
                raise NotFound("No such user.")
            user.deleted_at = now
            user.username = f"deleted-{user.id.hex[:20]}"
            user.email = f"{user.id.hex}@deleted.invalid"
            user.password_hash = "!"
            user.token_version += 1
            user.updated_at = now
            await uow.users.update(user)
            await uow.refresh_tokens.revoke_user(user.id, now)
            changed = await _forget_catalog_data(uow, user.id, now)
            await uow.webhooks.delete_for_user(user.id)
            await uow.commit()
        if self.invalidation is not None:
            await self.invalidation.products_changed(changed)
        if principal.token_id:
            await deny_access_token(self.deps, principal.token_id)


async def _forget_catalog_data(uow: UnitOfWork, user_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    """Withdraw the user's listings, empty carts of them and the user's own cart, and drop the
    user's favorites with their counts (all in the caller's unit of work).

    Returns the products whose reads changed (for cache invalidation after the commit)."""
    withdrawn = await uow.products.withdraw_all_of_seller(user_id, now)
    if withdrawn:
        await uow.cart_cleanup.remove_lines_of_products(withdrawn)
    await uow.cart.clear(CartOwner.of_user(user_id))
    dropped = await uow.favorites.remove_all_of_user(user_id)
    if dropped:
        await uow.products.apply_favorite_change(dropped, -1)
    return [*withdrawn, *dropped]


class GetPublicProfile:
    """Anyone may see a user's name, join date, live listing count and the average rating over
    all reviews of those listings; never the email. Deleted accounts are not found."""

    def __init__(self, queries: CatalogQueries) -> None:
        self.queries = queries

    async def execute(self, user_id: uuid.UUID) -> PublicProfile:
        profile = await self.queries.public_profile(user_id)
        if profile is None:
            raise NotFound("No such user.")
        return profile
