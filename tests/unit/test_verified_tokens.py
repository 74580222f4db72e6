"""Access tokens are verified once per token text; expiry is still checked on every use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from litestar.exceptions import NotAuthorizedException
from litestar.security.jwt import Token

from entrypoints.http.security import VerifiedTokens

SECRET = "s" * 40
NOW = datetime.now(UTC).replace(microsecond=0)  # Token insists on an exp in the real future


def encoded(exp: datetime, **extras: object) -> str:
    return Token(exp=exp, sub="u1", iat=NOW - timedelta(seconds=5), extras=dict(extras)).encode(SECRET, "HS256")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def verifier(clock: Clock, *, capacity: int = 8) -> tuple[VerifiedTokens, list[str]]:
    decoded: list[str] = []

    def decode(text: str) -> Token:
        decoded.append(text)
        return Token.decode(text, SECRET, "HS256")

    return VerifiedTokens(decode, capacity=capacity, clock=clock), decoded


def test_a_token_is_decoded_once_and_served_from_memory_until_it_expires() -> None:
    clock = Clock()
    verified, decoded = verifier(clock)
    text = encoded(NOW + timedelta(minutes=5))

    assert verified(text).sub == "u1"
    assert verified(text).sub == "u1"
    assert decoded == [text]

    clock.now = NOW + timedelta(minutes=5)
    with pytest.raises(NotAuthorizedException):
        verified(text)


def test_a_token_that_fails_verification_is_never_remembered() -> None:
    clock = Clock()
    verified, decoded = verifier(clock)
    text = encoded(NOW + timedelta(minutes=5))
    tampered = text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1]

    for _ in range(2):
        with pytest.raises(NotAuthorizedException):
            verified(tampered)
    assert decoded == [tampered, tampered]


def test_tokens_with_a_not_before_claim_are_verified_every_time() -> None:
    clock = Clock()
    verified, decoded = verifier(clock)
    text = encoded(NOW + timedelta(minutes=5), nbf=int((NOW - timedelta(seconds=1)).timestamp()))

    verified(text)
    verified(text)

    assert decoded == [text, text]


def test_memory_is_bounded() -> None:
    clock = Clock()
    verified, decoded = verifier(clock, capacity=3)
    texts = [encoded(NOW + timedelta(minutes=5), n=i) for i in range(5)]

    for text in texts:
        verified(text)
    verified(texts[0])  # pushed out by the later ones: decoded again

    assert len(verified) <= 3
    assert decoded == [*texts, texts[0]]
