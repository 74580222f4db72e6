from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str
    # A stable id (the outbox row) so a retried job can be recognised downstream.
    message_id: str


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...
