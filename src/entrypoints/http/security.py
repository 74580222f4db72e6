"""Bearer authentication with Litestar's JWT auth: our claims, our lifetime, one algorithm."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth, Token

from application.identity import Principal
from entrypoints.settings import Settings

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "jti", "sub"]


def build_jwt_auth(settings: Settings) -> JWTAuth[Principal, Token]:
    async def retrieve_user(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
        container = connection.app.state.container
        extras = token.extras or {}
        try:
            user_id = uuid.UUID(token.sub)
            version = int(extras.get("ver", -1))
            family = uuid.UUID(str(extras["fam"])) if extras.get("fam") else None
        except (ValueError, TypeError):
            return None
        jti = token.jti if isinstance(token.jti, str) else None
        principal: Principal | None = await container.use_cases["check_access_token"].execute(
            user_id=user_id, token_version=version, token_id=jti, family_id=family
        )
        return principal

    return JWTAuth[Principal, Token](
        token_secret=settings.jwt_secret,
        algorithm=settings.jwt_algorithm,
        retrieve_user_handler=retrieve_user,
        default_token_expiration=__import__("datetime").timedelta(seconds=settings.access_token_ttl),
        accepted_issuers=[settings.jwt_issuer],
        accepted_audiences=[settings.jwt_audience],
        require_claims=REQUIRED_CLAIMS,
        exclude=["^/schema", "^/docs", "^/health$", "^/ready$", "^/metrics$", "^/$"],
        openapi_security_scheme_name="BearerToken",
        description="Access token from POST /api/auth/login (or the OAuth2 form at /api/auth/token).",
    )
