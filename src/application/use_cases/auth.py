"""Accounts and sessions: register, log in, refresh with rotation, log out, verify, reset."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from application.identity import Principal
from application.jobs import SEND_PASSWORD_RESET, SEND_VERIFICATION, SEND_WELCOME, Job, JobDispatcher, record
from application.opaque_tokens import hash_secret, new_secret
from application.ports.clock import Clock
from application.ports.kv import KeyValueStore
from application.ports.persistence import UnitOfWork, UnitOfWorkFactory
from application.ports.security import AccessTokenIssuer, AccountStates, PasswordHasher
from application.use_cases.base import UseCase
from application.use_cases.cart import merge_guest_cart
from domain.errors import AuthenticationFailed, InvalidInput, TooManyAttempts
from domain.ids import new_id
from domain.sessions import EmailToken, EmailTokenPurpose, RefreshToken
from domain.users import Role, User, normalize_email, validate_password, validate_username

REFRESH_LIFETIME = timedelta(days=30)
VERIFY_LIFETIME = timedelta(days=2)
RESET_LIFETIME = timedelta(hours=1)
LOGIN_FAILURE_LIMIT = 10
LOGIN_FAILURE_WINDOW = 15 * 60
_BAD_CREDENTIALS = "Email/username or password is wrong."


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


@dataclass(frozen=True, slots=True)
class AuthDeps:
    """What every auth use case needs; built once by the composition root."""

    uow: UnitOfWorkFactory
    hasher: PasswordHasher
    tokens: AccessTokenIssuer
    kv: KeyValueStore
    clock: Clock
    jobs: JobDispatcher


async def _start_session(deps: AuthDeps, uow: UnitOfWork, user: User, family_id: uuid.UUID | None = None) -> TokenPair:
    now = deps.clock.now()
    secret = new_secret()
    family = family_id or new_id()
    await uow.refresh_tokens.add(
        RefreshToken(
            id=new_id(),
            user_id=user.id,
            family_id=family,
            token_hash=hash_secret(secret),
            expires_at=now + REFRESH_LIFETIME,
            created_at=now,
        )
    )
    access = deps.tokens.issue(
        user_id=user.id, role=user.role.value, token_version=user.token_version, family_id=family
    )
    return TokenPair(access_token=access, refresh_token=secret, expires_in=deps.tokens.lifetime_seconds)


async def new_email_token(
    deps: AuthDeps, uow: UnitOfWork, user: User, purpose: EmailTokenPurpose, lifetime: timedelta
) -> str:
    now = deps.clock.now()
    secret = new_secret()
    await uow.email_tokens.add(
        EmailToken(
            id=new_id(),
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_secret(secret),
            expires_at=now + lifetime,
            created_at=now,
        )
    )
    return secret


# Each kind of mailed token: how long it is valid, and the job that mails it.
_TOKEN_MAILS = {
    EmailTokenPurpose.VERIFY_EMAIL: (VERIFY_LIFETIME, SEND_VERIFICATION),
    EmailTokenPurpose.PASSWORD_RESET: (RESET_LIFETIME, SEND_PASSWORD_RESET),
}


async def token_mail(deps: AuthDeps, uow: UnitOfWork, user: User, purpose: EmailTokenPurpose) -> Job:
    """A new single-use token of ``purpose`` for ``user``, and the job that mails it (to record)."""
    lifetime, kind = _TOKEN_MAILS[purpose]
    secret = await new_email_token(deps, uow, user, purpose, lifetime)
    return kind, {"user_id": str(user.id), "token": secret}


REVOKED_TOKEN_PREFIX = "revoked-jti:"


async def deny_access_token(deps: AuthDeps, token_id: str) -> None:
    """Refuse this access token (by its ``jti``) until it would have expired anyway."""
    await deps.kv.set(REVOKED_TOKEN_PREFIX + token_id, b"1", deps.tokens.lifetime_seconds + 60)


class Register(UseCase[AuthDeps]):
    """Create an account (409 on a taken username or email) and mail a welcome and verification link."""

    async def execute(self, *, username: str, email: str, password: str) -> User:
        username = validate_username(username)
        email = normalize_email(email)
        validate_password(password)
        password_hash = await self.deps.hasher.hash(password)
        now = self.deps.clock.now()
        user = User(
            id=new_id(),
            username=username,
            email=email,
            password_hash=password_hash,
            role=Role.USER,
            created_at=now,
            updated_at=now,
        )
        async with self.deps.uow() as uow:
            await uow.users.add(user)
            verify = await token_mail(self.deps, uow, user, EmailTokenPurpose.VERIFY_EMAIL)
            jobs = await record(uow, [(SEND_WELCOME, {"user_id": str(user.id)}), verify])
            await uow.commit()
        await self.deps.jobs.dispatch(jobs)
        return user


class Login:
    """Exchange credentials for a token pair.

    Unknown users cost the same hashing work as known ones and get the same answer, and failed
    attempts are throttled per account.
    """

    def __init__(
        self,
        deps: AuthDeps,
        *,
        failure_limit: int = LOGIN_FAILURE_LIMIT,
        failure_window: int = LOGIN_FAILURE_WINDOW,
    ) -> None:
        self.deps = deps
        self.failure_limit = failure_limit
        self.failure_window = failure_window

    async def execute(self, *, login: str, password: str, cart_token: str | None = None) -> TokenPair:
        """``cart_token``: a guest cart to merge into the user's cart (``merge_guest_cart``) in the
        same transaction; an unknown, expired or spent one is ignored, never failing the login."""
        throttle_key = f"login-failures:{login.strip().lower()[:254]}"
        failures = await self.deps.kv.get(throttle_key)
        if failures is not None and int(failures) >= self.failure_limit:
            retry = await self.deps.kv.ttl(throttle_key)
            raise TooManyAttempts(
                "Too many failed logins for this account; try again later.", retry_after=max(retry, 1)
            )
        async with self.deps.uow() as uow:
            user = await uow.users.get_by_login(login.strip()) if len(login) <= 254 else None
            if user is None:
                await self.deps.hasher.burn(password)
                ok = False
            else:
                ok = await self.deps.hasher.verify(user.password_hash, password)
            if not ok or user is None:
                await self.deps.kv.incr(throttle_key, self.failure_window)
                raise AuthenticationFailed(_BAD_CREDENTIALS)
            if self.deps.hasher.needs_rehash(user.password_hash):
                user.password_hash = await self.deps.hasher.hash(password)
                user.updated_at = self.deps.clock.now()
                await uow.users.update(user)
            pair = await _start_session(self.deps, uow, user)
            if cart_token:
                await merge_guest_cart(uow, user_id=user.id, token=cart_token, now=self.deps.clock.now())
            await uow.commit()
        await self.deps.kv.delete(throttle_key)
        return pair


class Refresh(UseCase[AuthDeps]):
    """Spend a refresh token for a new pair in the same family; a replayed token kills the family."""

    async def execute(self, *, refresh_token: str) -> TokenPair:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            stored = await uow.refresh_tokens.get_by_hash(hash_secret(refresh_token))
            if stored is None:
                raise AuthenticationFailed("Refresh token is not valid.")
            if stored.used_at is not None or stored.revoked_at is not None:
                await uow.refresh_tokens.revoke_family(stored.family_id, now)
                await uow.commit()
                raise AuthenticationFailed("Refresh token was already used; the session is revoked.")
            if now >= stored.expires_at:
                raise AuthenticationFailed("Refresh token has expired.")
            if not await uow.refresh_tokens.spend(stored.id, now):
                # Lost a race with another use of the same token: treat it as a replay.
                await uow.refresh_tokens.revoke_family(stored.family_id, now)
                await uow.commit()
                raise AuthenticationFailed("Refresh token was already used; the session is revoked.")
            user = await uow.users.get(stored.user_id)
            if user is None:
                raise AuthenticationFailed("Refresh token is not valid.")
            pair = await _start_session(self.deps, uow, user, family_id=stored.family_id)
            await uow.commit()
        return pair


class Logout(UseCase[AuthDeps]):
    """End this session: deny the access token until it expires and revoke its refresh family."""

    async def execute(self, principal: Principal) -> None:
        if principal.token_id:
            await deny_access_token(self.deps, principal.token_id)
        if principal.family_id:
            async with self.deps.uow() as uow:
                await uow.refresh_tokens.revoke_family(principal.family_id, self.deps.clock.now())
                await uow.commit()


class VerifyEmail(UseCase[AuthDeps]):
    async def execute(self, *, token: str) -> None:
        now = self.deps.clock.now()
        async with self.deps.uow() as uow:
            stored = await uow.email_tokens.get_by_hash(hash_secret(token), EmailTokenPurpose.VERIFY_EMAIL)
            if stored is None or stored.used_at is not None or now >= stored.expires_at:
                raise InvalidInput("Verification link is not valid or has expired.", field="token")
            user = await uow.users.get(stored.user_id)
            if user is None or not await uow.email_tokens.spend(stored.id, now):
                raise InvalidInput("Verification link is not valid or has expired.", field="token")
            user.email_verified = True
            user.updated_at = now
            await uow.users.update(user)
            await uow.commit()


class ResendVerification(UseCase[AuthDeps]):
    async def execute(self, principal: Principal) -> None:
        async with self.deps.uow() as uow:
            user = await uow.users.get(principal.id)
            if user is None or user.email_verified:
                return
            jobs = await record(uow, [await token_mail(self.deps, uow, user, EmailTokenPurpose.VERIFY_EMAIL)])
            await uow.commit()
        await self.deps.jobs.dispatch(jobs)


class RequestPasswordReset(UseCase[AuthDeps]):
    """Always accepted (no account enumeration); mails a single-use link when the account exists."""

    async def execute(self, *, email: str) -> None:
        if len(email) > 254:
            return
        async with self.deps.uow() as uow:
            user = await uow.users.get_by_login(email.strip())
            if user is None:
                return
            jobs = await record(uow, [await token_mail(self.deps, uow, user, EmailTokenPurpose.PASSWORD_RESET)])
            await uow.commit()
        await self.deps.jobs.dispatch(jobs)


class ConfirmPasswordReset(UseCase[AuthDeps]):
    """Set a new password from a mailed link; every session of the account ends."""

    async def execute(self, *, token: str, new_password: str) -> None:
        validate_password(new_password, field="new_password")
        now = self.deps.clock.now()
        new_hash = await self.deps.hasher.hash(new_password)
        async with self.deps.uow() as uow:
            stored = await uow.email_tokens.get_by_hash(hash_secret(token), EmailTokenPurpose.PASSWORD_RESET)
            if stored is None or stored.used_at is not None or now >= stored.expires_at:
                raise InvalidInput("Reset link is not valid or has expired.", field="token")
            user = await uow.users.get(stored.user_id)
            if user is None or not await uow.email_tokens.spend(stored.id, now):
                raise InvalidInput("Reset link is not valid or has expired.", field="token")
            user.password_hash = new_hash
            user.token_version += 1
            user.updated_at = now
            await uow.users.update(user)
            await uow.refresh_tokens.revoke_user(user.id, now)
            await uow.commit()


class CheckAccessToken:
    """Accept an access token's claims only for a live user, current token version and session.

    The session is the refresh family the token was issued from: once it is revoked (logout, a
    replayed refresh token, a password change in another session) its access tokens are refused
    at once, not when they expire. The account states port reads all of it in one statement, so
    a token of a session costs one read: logging out revokes the family, which that read sees.
    Only a token without a family (none is issued so any more) needs the key-value deny-list."""

    def __init__(self, deps: AuthDeps, accounts: AccountStates) -> None:
        self.deps = deps
        self.accounts = accounts

    async def execute(
        self, *, user_id: uuid.UUID, token_version: int, token_id: str | None, family_id: uuid.UUID | None
    ) -> Principal | None:
        if family_id is None and token_id and await self.deps.kv.get(REVOKED_TOKEN_PREFIX + token_id) is not None:
            return None
        state = await self.accounts.auth_state(user_id, family_id)
        if state is None or state[1] != token_version:
            return None
        return Principal(id=user_id, role=Role(state[0]), family_id=family_id, token_id=token_id)
