"""Access tokens as JWTs, minted with Litestar's ``Token`` (pyjwt underneath)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from litestar.security.jwt import Token


class JwtAccessTokenIssuer:
    def __init__(self, *, secret: str, algorithm: str, issuer: str, audience: str, lifetime_seconds: int = 900) -> None:
        self.secret = secret
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds

    def issue(self, *, user_id: uuid.UUID, role: str, token_version: int, family_id: uuid.UUID) -> str:
        now = datetime.now(UTC)
        token = Token(
            sub=str(user_id),
            exp=now + timedelta(seconds=self.lifetime_seconds),
            iat=now,
            iss=self.issuer,
            aud=self.audience,
            jti=uuid.uuid4().hex,
            extras={"role": role, "ver": token_version, "fam": str(family_id)},
        )
        return token.encode(secret=self.secret, algorithm=self.algorithm)
