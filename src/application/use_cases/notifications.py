"""Emails the background jobs send: welcome, verification, password reset, order and sale notices.

Each use case reads what it needs (user, order lines), renders a plain-text and an HTML part,
and hands one message to the ``Mailer``. Jobs call them send-then-mark: the outbox row is marked
processed only after the mailer accepted the message, so a crash between the two re-sends on
retry (at least once) instead of losing mail (as claim-then-send would); the outbox id travels
as the Message-ID so such a duplicate is recognisable downstream. Returns a short note.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

from application.ports.mail import EmailMessage, Mailer
from application.ports.order_mail import MailLine, OrderForMail, OrderMailQueries
from application.ports.persistence import UnitOfWorkFactory
from application.use_cases.base import UseCase
from domain.users import User

SENT = "sent"


@dataclass(frozen=True, slots=True)
class MailDeps:
    uow: UnitOfWorkFactory
    mailer: Mailer
    orders: OrderMailQueries
    public_base_url: str
    site_name: str = "Marketplace"

    def link(self, path: str, token: str) -> str:
        return f"{self.public_base_url.rstrip('/')}{path}?token={quote(token, safe='')}"

    async def send(self, to: str, subject: str, text: str, html_body: str, message_id: str) -> str:
        """Hand one message to the mailer; the note a job records for it."""
        await self.mailer.send(EmailMessage(to=to, subject=subject, text=text, html=html_body, message_id=message_id))
        return SENT


async def _user(deps: MailDeps, user_id: uuid.UUID) -> User | None:
    async with deps.uow() as uow:
        return await uow.users.get(user_id)


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _page(title: str, paragraphs: list[str], extra_html: str = "") -> str:
    """A minimal HTML body; every dynamic value is escaped by the caller or here."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body style="font-family: sans-serif"><h1>{html.escape(title)}</h1>{body}{extra_html}</body></html>'
    )


def _lines_text(lines: tuple[MailLine, ...] | list[MailLine]) -> str:
    return "\n".join(
        f"  {line.quantity} x {line.name} @ {_money(line.unit_price)} = {_money(line.line_total)}" for line in lines
    )


def _lines_html(lines: tuple[MailLine, ...] | list[MailLine], total: Decimal) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(line.name)}</td><td>{line.quantity}</td>"
        f"<td>{_money(line.unit_price)}</td><td>{_money(line.line_total)}</td></tr>"
        for line in lines
    )
    return (
        '<table border="1" cellpadding="4" cellspacing="0">'
        "<tr><th>Item</th><th>Qty</th><th>Unit price</th><th>Line total</th></tr>"
        f'{rows}<tr><td colspan="3"><strong>Total</strong></td><td><strong>{_money(total)}</strong></td></tr>'
        "</table>"
    )


class SendWelcomeEmail(UseCase[MailDeps]):
    async def execute(self, *, user_id: uuid.UUID, message_id: str) -> str:
        user = await _user(self.deps, user_id)
        if user is None:
            return "skipped: account gone"
        site = self.deps.site_name
        text = (
            f"Hello {user.username},\n\nwelcome to {site}! You can now list products, keep favorites "
            f"and check out.\n\n{self.deps.public_base_url}\n"
        )
        html_body = _page(
            f"Welcome to {site}",
            [
                f"Hello {html.escape(user.username)},",
                "you can now list products, keep favorites and check out.",
                f'<a href="{html.escape(self.deps.public_base_url)}">{html.escape(self.deps.public_base_url)}</a>',
            ],
        )
        return await self.deps.send(user.email, f"Welcome to {site}", text, html_body, message_id)


class _TokenLinkEmail(UseCase[MailDeps]):
    """Mails an account's owner a single-use token: as a link to the web front end (``PATH``), which
    POSTs the token to the API, and as the token itself, for API clients."""

    PATH: str

    def skip(self, user: User) -> str | None:
        """Why this mail is not sent after all (the job's note), or None."""
        return None

    def render(self, user: User, link: str, token: str) -> tuple[str, str, str]:
        """The subject, the plain-text part and the HTML part."""
        raise NotImplementedError

    async def execute(self, *, user_id: uuid.UUID, token: str, message_id: str) -> str:
        user = await _user(self.deps, user_id)
        if user is None:
            return "skipped: account gone"
        skipped = self.skip(user)
        if skipped is not None:
            return skipped
        subject, text, html_body = self.render(user, self.deps.link(self.PATH, token), token)
        return await self.deps.send(user.email, subject, text, html_body, message_id)


class SendVerificationEmail(_TokenLinkEmail):
    """The link opens the web front end, which POSTs the token to /api/auth/verify-email."""

    PATH = "/verify-email"

    def skip(self, user: User) -> str | None:
        return "skipped: already verified" if user.email_verified else None

    def render(self, user: User, link: str, token: str) -> tuple[str, str, str]:
        text = (
            f"Hello {user.username},\n\nplease confirm your email address by opening this link:\n\n{link}\n\n"
            f'Or send this token to POST /api/auth/verify-email as {{"token": "..."}}:\n\n{token}\n\n'
            "The link expires in 48 hours. If you did not create an account, ignore this email.\n"
        )
        html_body = _page(
            "Confirm your email address",
            [
                f"Hello {html.escape(user.username)},",
                f'please confirm your email address: <a href="{html.escape(link)}">confirm my email</a>.',
                f"Or use this token: <code>{html.escape(token)}</code>",
                "The link expires in 48 hours. If you did not create an account, ignore this email.",
            ],
        )
        return "Confirm your email address", text, html_body


class SendEmailChangedNotice(UseCase[MailDeps]):
    """Tells the *old* address that the account's email changed: if the owner did not do it, the
    notice is their warning (the new address gets its own verification mail)."""

    async def execute(self, *, user_id: uuid.UUID, old_email: str, message_id: str) -> str:
        user = await _user(self.deps, user_id)
        if user is None or user.deleted_at is not None:
            return "skipped: account gone"
        text = (
            f"Hello {user.username},\n\nthe email address of your {self.deps.site_name} account was changed "
            f"from {old_email} to {user.email}.\n\nIf you did not do this, reset your password now and "
            "contact support: someone else may have access to your account.\n"
        )
        html_body = _page(
            "Your email address was changed",
            [
                f"Hello {html.escape(user.username)},",
                f"the email address of your {html.escape(self.deps.site_name)} account was changed from "
                f"<b>{html.escape(old_email)}</b> to <b>{html.escape(user.email)}</b>.",
                "If you did not do this, reset your password now and contact support: someone else may "
                "have access to your account.",
            ],
        )
        return await self.deps.send(old_email, "Your email address was changed", text, html_body, message_id)


class SendPasswordResetEmail(_TokenLinkEmail):
    """The link opens the web front end, which POSTs the token to /api/auth/password-reset/confirm."""

    PATH = "/reset-password"

    def render(self, user: User, link: str, token: str) -> tuple[str, str, str]:
        text = (
            f"Hello {user.username},\n\nsomeone (hopefully you) asked to reset your password. "
            f"Choose a new one here:\n\n{link}\n\n"
            f"Or send this token with your new password to POST /api/auth/password-reset/confirm:\n\n{token}\n\n"
            "The link works once and expires in one hour. If you did not ask, ignore this email; "
            "your password stays as it is.\n"
        )
        html_body = _page(
            "Reset your password",
            [
                f"Hello {html.escape(user.username)},",
                "someone (hopefully you) asked to reset your password.",
                f'<a href="{html.escape(link)}">Choose a new password</a>',
                f"Or use this token: <code>{html.escape(token)}</code>",
                "The link works once and expires in one hour. If you did not ask, ignore this email.",
            ],
        )
        return "Reset your password", text, html_body


class SendOrderConfirmation(UseCase[MailDeps]):
    """To the buyer: the order id, every line and the total."""

    async def execute(self, *, order_id: uuid.UUID, message_id: str) -> str:
        order = await self.deps.orders.order(order_id)
        if order is None:
            return "skipped: order gone"
        if order.buyer_email is None:
            return "skipped: buyer account gone"
        status = "" if order.status == "placed" else f" ({order.status})"
        text = (
            f"Hello {order.buyer_username},\n\nthank you for your order {order.id}{status}.\n\n"
            f"{_lines_text(order.lines)}\n\n  Total: {_money(order.total)}\n\n"
            f"Placed at {order.created_at.isoformat()}.\n"
        )
        html_body = _page(
            "Thank you for your order",
            [
                f"Hello {html.escape(order.buyer_username or '')},",
                f"your order <strong>{order.id}</strong>{html.escape(status)}:",
            ],
            _lines_html(order.lines, order.total),
        )
        return await self.deps.send(order.buyer_email, f"Your order {order.id}{status}", text, html_body, message_id)


class SendSaleNotice(UseCase[MailDeps]):
    """To one seller: "you sold", with only their lines of the order."""

    async def execute(self, *, order_id: uuid.UUID, seller_id: uuid.UUID, message_id: str) -> str:
        order: OrderForMail | None = await self.deps.orders.order(order_id)
        if order is None:
            return "skipped: order gone"
        if order.status != "placed":
            return f"skipped: order {order.status}"
        seller = await _user(self.deps, seller_id)
        if seller is None:
            return "skipped: seller account gone"
        lines = [line for line in order.lines if line.seller_id == seller_id]
        if not lines:
            return "skipped: no lines of this seller"
        total = sum((line.line_total for line in lines), Decimal("0"))
        text = (
            f"Hello {seller.username},\n\nyou sold items in order {order.id}:\n\n"
            f"{_lines_text(lines)}\n\n  Total: {_money(total)}\n"
        )
        html_body = _page(
            "You sold something",
            [f"Hello {html.escape(seller.username)},", f"you sold items in order <strong>{order.id}</strong>:"],
            _lines_html(lines, total),
        )
        subject = f"You sold {sum(line.quantity for line in lines)} item(s) (order {order.id})"
        return await self.deps.send(seller.email, subject, text, html_body, message_id)
