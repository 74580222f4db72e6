"""Send mail through an SMTP server with aiosmtplib (host, port, STARTTLS, credentials from settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiosmtplib

from adapters.mail.mime import to_mime
from application.ports.errors import Unavailable
from application.ports.mail import EmailMessage


@dataclass(frozen=True, kw_only=True, slots=True)
class SmtpMailer:
    host: str
    port: int
    mail_from: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 20.0

    async def send(self, message: EmailMessage) -> None:
        """Deliver one message; any SMTP or network error propagates so the job is retried, a server
        that cannot be reached (refused, reset, timed out) as ``Unavailable``."""
        try:
            await aiosmtplib.send(
                to_mime(message, self.mail_from),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                # Explicit: False never upgrades (a local relay), True requires STARTTLS.
                start_tls=self.starttls,
                timeout=self.timeout,
            )
        except OSError as error:  # aiosmtplib's connect, disconnect and timeout errors are OSErrors
            raise Unavailable("mail server", str(error)) from error
