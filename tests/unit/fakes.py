"""Wiring of use cases onto in-memory adapters for unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.jobs.inprocess import InProcessJobQueue
from adapters.kv.memory import MemoryKeyValueStore
from adapters.memory.orders import MemoryCartReads
from adapters.memory.outbox import MemoryOutboxJobStore
from adapters.memory.uow import MemoryUnitOfWorkFactory
from adapters.security.jwt_tokens import JwtAccessTokenIssuer
from application.jobs import JobDispatcher
from application.ports.jobs import QueuedJob
from application.use_cases.auth import AuthDeps


class FakeHasher:
    """Deterministic, instant 'hashing' with argon2-like rehash semantics for tests."""

    def __init__(self, version: str = "v2") -> None:
        self.version = version
        self.burned = 0

    async def hash(self, password: str) -> str:
        return f"{self.version}${password[::-1]}"

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash.split("$", 1)[-1] == password[::-1]

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(self.version + "$")

    async def burn(self, password: str) -> None:
        self.burned += 1


@dataclass
class FakeClock:
    current: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += timedelta(**kwargs)


class RecordingQueue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, Any], str]] = []
        self.down = False

    async def enqueue(self, kind: str, payload: dict[str, Any], *, key: str) -> None:
        if self.down:
            raise ConnectionError("queue down")
        self.jobs.append((kind, payload, key))

    async def enqueue_many(self, jobs: Sequence[QueuedJob]) -> None:
        for kind, payload, key in jobs:
            await self.enqueue(kind, payload, key=key)

    async def ping(self) -> bool:
        return not self.down


@dataclass
class World:
    uow: MemoryUnitOfWorkFactory
    deps: AuthDeps
    clock: FakeClock
    queue: RecordingQueue
    hasher: FakeHasher
    kv: MemoryKeyValueStore

    @property
    def cart_reads(self) -> MemoryCartReads:
        return MemoryCartReads(self.uow.store)


def make_world() -> World:
    uow = MemoryUnitOfWorkFactory()
    clock = FakeClock()
    queue = RecordingQueue()
    hasher = FakeHasher()
    kv = MemoryKeyValueStore()
    tokens = JwtAccessTokenIssuer(secret="s" * 48, algorithm="HS256", issuer="test", audience="test")
    deps = AuthDeps(
        uow=uow,
        hasher=hasher,
        tokens=tokens,
        kv=kv,
        clock=clock,
        jobs=JobDispatcher(queue, MemoryOutboxJobStore(uow.store)),
    )
    return World(uow=uow, deps=deps, clock=clock, queue=queue, hasher=hasher, kv=kv)


__all__ = ["InProcessJobQueue", "World", "make_world"]
