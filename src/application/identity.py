"""Who is calling: the authenticated principal handed to use cases by the entrypoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.users import Role


@dataclass(frozen=True, slots=True)
class Principal:
    id: uuid.UUID
    role: Role
    # The refresh-token family of the session this access token belongs to (for logout).
    family_id: uuid.UUID | None = None
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
