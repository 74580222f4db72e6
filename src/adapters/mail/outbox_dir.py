"""The embedded default mailer: each message becomes an RFC 5322 ``.eml`` file in ``var/outbox/``.

Open one with any mail client, or read the verification/reset link out of it during development.
Files are named by the message id (the outbox row), so a re-sent job rewrites the same file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from pathlib import Path

from adapters.mail.mime import to_mime
from application.ports.mail import EmailMessage

log = logging.getLogger(__name__)
_NAME_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class OutboxDirMailer:
    def __init__(self, directory: Path, *, mail_from: str) -> None:
        self.directory = directory
        self.mail_from = mail_from

    def path_for(self, message_id: str) -> Path:
        return self.directory / f"{_NAME_SAFE.sub('', message_id) or 'message'}.eml"

    async def send(self, message: EmailMessage) -> None:
        data = to_mime(message, self.mail_from).as_bytes()
        path = self.path_for(message.message_id)
        await asyncio.to_thread(self._write, path, data)
        log.info("mail %r to %s written to %s", message.subject, message.to, path)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
