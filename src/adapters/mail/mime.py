"""Turn the application's ``EmailMessage`` into an RFC 5322 message (stdlib ``email``)."""

from __future__ import annotations

import email.message
import email.policy
import email.utils
import re

from application.ports.mail import EmailMessage

_ID_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def message_id_header(message_id: str, mail_from: str) -> str:
    """``<outbox-id@sender-domain>``: stable across retries, so a duplicate is recognisable."""
    domain = email.utils.parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<{_ID_SAFE.sub('', message_id)}@{domain}>"


def to_mime(message: EmailMessage, mail_from: str) -> email.message.EmailMessage:
    mime = email.message.EmailMessage(policy=email.policy.SMTP)
    mime["From"] = mail_from
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(usegmt=True)
    mime["Message-ID"] = message_id_header(message.message_id, mail_from)
    # RFC 3834: tells auto-responders (vacation replies) not to answer.
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime
