"""The constructor most use cases share: what they need comes in one object, given once.

A feature's use cases take its deps dataclass (ports and settings, built by the composition
root); those that need nothing but units of work take the factory itself.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from application.ports.persistence import UnitOfWorkFactory

Deps = TypeVar("Deps")


class UseCase(Generic[Deps]):
    """A use case built with its feature's ``deps``."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps


class UnitOfWorkUseCase:
    """A use case that needs nothing but units of work."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self.uow = uow
