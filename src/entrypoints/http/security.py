"""Bearer authentication with Litestar's JWT auth: our claims, our lifetime, one algorithm.

The cart routes (handlers marked with ``GUEST_OK``) also take a guest cart's ``X-Cart-Token``
instead: without an ``Authorization`` header, the middleware resolves the token to a ``Guest``
(401 when it is unknown, expired or spent). With both headers the bearer token wins and the cart
token is ignored, so a signed-in client that still sends it keeps working on its own cart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.authentication import AuthenticationResult
from litestar.params import HeaderParameter
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from application.identity import Guest, Principal
from application.use_cases.auth import CheckAccessToken
from application.use_cases.cart import ResolveCartToken
from entrypoints.settings import Settings

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "jti", "sub"]
CART_TOKEN_HEADER = "X-Cart-Token"
CART_TOKEN_SCHEME = "CartToken"
_ACCEPTS_CART_TOKEN = "accepts_cart_token"  # a route handler's opt key
# Route-decorator keywords for a route a guest cart token may call: the marker the middleware
# reads, and the two alternative security requirements for the OpenAPI document.
GUEST_OK: dict[str, Any] = {
    _ACCEPTS_CART_TOKEN: True,
    "security": [{"BearerToken": []}, {CART_TOKEN_SCHEME: []}],
}
# Route-decorator keywords for a public route: no authentication, and no security requirement
# in the OpenAPI document.
PUBLIC: dict[str, Any] = {"exclude_from_auth": True, "security": [{}]}
# Declared on those handlers for the OpenAPI document (and generated clients); the middleware
# reads it, the handlers do not.
CartTokenHeader = Annotated[
    str | None,
    HeaderParameter(
        name=CART_TOKEN_HEADER,
        required=False,
        description="A guest cart's token (from POST /api/cart/guest), instead of a bearer token; "
        "ignored when a bearer token is sent too.",
    ),
]


# Verified tokens kept per process: a client sends the same access token until it expires.
VERIFIED_TOKENS = 10_000


class VerifiedTokens:
    """Decoded access tokens by their exact text, so a token's signature and claims are verified once
    rather than on every request (it was a fifth of a cached feed read's CPU).

    Only the very text that passed ``decode`` is served from memory, and its expiry is checked on
    every use; whether the session still stands (logout, password change, replay) is the per-request
    token check's business, as before. Tokens with a not-before claim are verified every time.
    Bounded: the oldest entry goes first.
    """

    def __init__(
        self,
        decode: Callable[[str], Token],
        *,
        capacity: int = VERIFIED_TOKENS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.decode = decode
        self.capacity = capacity
        self.clock = clock
        self._tokens: dict[str, Token] = {}

    def __len__(self) -> int:
        return len(self._tokens)

    def __call__(self, encoded: str) -> Token:
        token = self._tokens.get(encoded)
        if token is None:
            token = self.decode(encoded)  # raises NotAuthorizedException: nothing is kept
            if "nbf" in token.extras:
                return token
            if len(self._tokens) >= self.capacity:
                del self._tokens[next(iter(self._tokens))]
            self._tokens[encoded] = token
        elif token.exp <= self.clock():
            del self._tokens[encoded]
            raise NotAuthorizedException("Invalid token")
        return token


class CartTokenAuthenticationMiddleware(JWTAuthenticationMiddleware):
    """JWT bearer auth that lets a guest cart token through on the routes marked ``GUEST_OK``."""

    def __init__(self, *, resolve_cart_token: ResolveCartToken, **options: Any) -> None:
        super().__init__(**options)
        self.resolve_cart_token = resolve_cart_token
        self.verified = VerifiedTokens(
            lambda encoded: self.token_cls.decode(
                encoded_token=encoded,
                secret=self.token_secret,
                algorithm=self.algorithm,
                audience=self.token_audience,
                issuer=self.token_issuer,
                require_claims=self.require_claims,
                verify_exp=self.verify_expiry,
                verify_nbf=self.verify_not_before,
                strict_audience=self.strict_audience,
            )
        )

    async def authenticate_token(
        self, encoded_token: str, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Litestar's, with the decoding remembered per token text (``VerifiedTokens``)."""
        token = self.verified(encoded_token)
        user = await self.retrieve_user_handler(token, connection)
        if not user or (self.revoked_token_handler and await self.revoked_token_handler(token, connection)):
            raise NotAuthorizedException()
        return AuthenticationResult(user=user, auth=token)

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        if not connection.headers.get(self.auth_header):
            token = connection.headers.get(CART_TOKEN_HEADER)
            handler = connection.scope.get("route_handler")
            if token is not None and handler is not None and handler.opt.get(_ACCEPTS_CART_TOKEN):
                cart_id = await self.resolve_cart_token.execute(token)
                if cart_id is None:
                    raise NotAuthorizedException("The cart token is unknown, expired or already merged.")
                return AuthenticationResult(user=Guest(cart_id=cart_id), auth=None)
        return await super().authenticate_request(connection)


@dataclass(kw_only=True)
class BearerOrCartTokenAuth(JWTAuth[Principal, Token]):
    """Litestar's JWT auth, handing its middleware the use case that resolves guest cart tokens."""

    resolve_cart_token: ResolveCartToken

    @property
    def middleware(self) -> DefineMiddleware:
        middleware = super().middleware
        middleware.kwargs["resolve_cart_token"] = self.resolve_cart_token
        return middleware


def build_jwt_auth(
    settings: Settings, *, check_access_token: CheckAccessToken, resolve_cart_token: ResolveCartToken
) -> BearerOrCartTokenAuth:
    async def retrieve_user(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
        extras = token.extras or {}
        try:
            user_id = uuid.UUID(token.sub)
            version = int(extras.get("ver", -1))
            family = uuid.UUID(str(extras["fam"])) if extras.get("fam") else None
        except (ValueError, TypeError):
            return None
        jti = token.jti if isinstance(token.jti, str) else None
        return await check_access_token.execute(user_id=user_id, token_version=version, token_id=jti, family_id=family)

    return BearerOrCartTokenAuth(
        token_secret=settings.jwt_secret,
        algorithm=settings.jwt_algorithm,
        retrieve_user_handler=retrieve_user,
        default_token_expiration=timedelta(seconds=settings.access_token_ttl),
        accepted_issuers=[settings.jwt_issuer],
        accepted_audiences=[settings.jwt_audience],
        require_claims=REQUIRED_CLAIMS,
        exclude=["^/schema", "^/docs", "^/health$", "^/ready$", "^/metrics$", "^/$"],
        openapi_security_scheme_name="BearerToken",
        authentication_middleware_class=CartTokenAuthenticationMiddleware,
        description="Access token from POST /api/auth/login (or the OAuth2 form at /api/auth/token).",
        resolve_cart_token=resolve_cart_token,
    )
