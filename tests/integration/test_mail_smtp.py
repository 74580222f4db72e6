"""Emails end to end through a real SMTP server (aiosmtpd), and jobs through SAQ on the real Redis.

The jobs run the production code paths: the outbox dispatcher, ``entrypoints.jobs.JobRunner`` and
its use cases, the SMTP mailer; with Redis, the SAQ adapter and the worker's job functions.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from adapters.jobs.saq_queue import SaqJobQueue
from application.jobs import SEND_ORDER_CONFIRMATION, SEND_SALE_NOTICE, SEND_WELCOME, JobPolicy
from application.ports.errors import Unavailable
from entrypoints.wiring import Container
from entrypoints.worker import build_worker
from tests.conftest import REDIS_URL, test_settings
from tests.integration.queues import clear_queue, queue_name
from tests.integration.sales_data import add_order, add_product

PW = "correct horse battery"
BASE = "https://shop.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler keeping every delivered message."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    @property
    def messages(self) -> list[MimeMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]  # type: ignore[misc]

    def by_subject(self, prefix: str) -> list[MimeMessage]:
        return [m for m in self.messages if str(m["Subject"]).startswith(prefix)]


class Smtp:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


def mail_settings(database_url: str, tmp_path: Path, smtp: Smtp, **extra: str) -> Any:
    return test_settings(
        DATABASE_URL=database_url,
        VAR_DIR=str(tmp_path / "var"),
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        PUBLIC_BASE_URL=BASE,
        MAIL_FROM="Marketplace <no-reply@shop.example>",
        **extra,
    )


@pytest.fixture
async def mail_container(sqlite_url: str, tmp_path: Path, smtp: Smtp) -> AsyncIterator[Container]:
    container = Container(mail_settings(sqlite_url, tmp_path, smtp))
    yield container
    await container.shutdown()


def parts(message: MimeMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return str(plain.get_content()), str(html.get_content())


async def outbox_rows(container: Container) -> list[Any]:
    from sqlalchemy import select

    from adapters.sql.tables import OutboxRow, table_of

    table = table_of(OutboxRow)
    async with container.adapters.requests.db.engine.connect() as conn:
        return list((await conn.execute(select(table).order_by(table.c.created_at))).all())


async def test_registration_and_password_reset_emails(mail_container: Container, smtp: Smtp) -> None:
    c = mail_container
    user = await c.use_cases.auth.register.execute(username="alice", email="Alice@Example.com", password=PW)
    await c.adapters.queue.drain()  # type: ignore[attr-defined]
    assert len(smtp.inbox.envelopes) == 2
    assert {e.rcpt_tos[0] for e in smtp.inbox.envelopes} == {"Alice@Example.com"}
    assert {e.mail_from for e in smtp.inbox.envelopes} == {"no-reply@shop.example"}

    (welcome,) = smtp.inbox.by_subject("Welcome")
    (verify,) = smtp.inbox.by_subject("Confirm your email")
    rows = {row.kind: row for row in await outbox_rows(c)}
    assert verify["Message-ID"] == f"<{rows['send_verification_email'].id}@shop.example>"
    assert welcome["Message-ID"] == f"<{rows['send_welcome_email'].id}@shop.example>"
    assert verify["From"] == "Marketplace <no-reply@shop.example>" and verify["To"] == "Alice@Example.com"
    assert verify.get_content_type() == "multipart/alternative"
    text, html = parts(verify)
    link = next(word for word in text.split() if word.startswith(f"{BASE}/verify-email?token="))
    token = link.split("token=", 1)[1]
    assert token in text and f'href="{link}"' in html
    await c.use_cases.auth.verify_email.execute(token=token)
    assert (await c.use_cases.users.get_me.execute(_principal(user))).email_verified

    await c.use_cases.auth.request_password_reset.execute(email="alice@example.com")
    await c.adapters.queue.drain()  # type: ignore[attr-defined]
    (reset,) = smtp.inbox.by_subject("Reset your password")
    text, html = parts(reset)
    link = next(word for word in text.split() if word.startswith(f"{BASE}/reset-password?token="))
    assert f'href="{link}"' in html
    await c.use_cases.auth.confirm_password_reset.execute(
        token=link.split("token=", 1)[1], new_password="a brand new password"
    )

    # Every row is processed; running each job again (a retry after completion) sends nothing.
    rows = await outbox_rows(c)
    assert len(rows) == 3 and all(row.processed_at is not None for row in rows)
    assert all("token" not in row.payload for row in rows)  # the raw email tokens are not kept
    for row in rows:
        result = await c.jobs.run(row.kind, {"outbox_id": str(row.id), **row.payload})
        assert result["outcome"] == "already processed"
    assert len(smtp.inbox.envelopes) == 3


def _principal(user: Any) -> Any:
    from application.identity import Principal

    return Principal(id=user.id, role=user.role)


async def test_order_confirmation_and_sale_notices(mail_container: Container, smtp: Smtp) -> None:
    c = mail_container
    reg = c.use_cases.auth.register
    buyer = await reg.execute(username="buyer", email="buyer@example.com", password=PW)
    ann = await reg.execute(username="ann", email="ann@example.com", password=PW)
    bob = await reg.execute(username="bob", email="bob@example.com", password=PW)
    await c.adapters.queue.drain()  # type: ignore[attr-defined]
    smtp.inbox.envelopes.clear()
    lamp = await add_product(c.adapters.requests.db, ann.id, "Lamp <deluxe>", Decimal("19.99"))
    rug = await add_product(c.adapters.requests.db, bob.id, "Rug", Decimal("100.00"))
    order_id = await add_order(
        c.adapters.requests.db,
        buyer.id,
        [(lamp, ann.id, "Lamp <deluxe>", Decimal("19.99"), 2), (rug, bob.id, "Rug", Decimal("100.00"), 1)],
        at=datetime.now(UTC),
    )
    async with c.adapters.requests.uow() as uow:  # what checkout records (the cart engineer's use case does the same)
        jobs = [(SEND_ORDER_CONFIRMATION, {"order_id": str(order_id)})]
        jobs += [(SEND_SALE_NOTICE, {"order_id": str(order_id), "seller_id": str(s.id)}) for s in (ann, bob)]
        ids = [await uow.outbox.add(kind, payload) for kind, payload in jobs]
        await uow.commit()
    for outbox_id, (kind, payload) in zip(ids, jobs, strict=True):
        assert (await c.jobs.run(kind, {"outbox_id": str(outbox_id), **payload}))["outcome"] == "sent"

    by_rcpt = {
        e.rcpt_tos[0]: email.message_from_bytes(e.content, policy=email.policy.default) for e in smtp.inbox.envelopes
    }
    confirmation = by_rcpt["buyer@example.com"]
    assert str(order_id) in confirmation["Subject"]
    text, html = parts(confirmation)  # type: ignore[arg-type]
    assert "2 x Lamp <deluxe> @ 19.99 = 39.98" in text and "1 x Rug @ 100.00 = 100.00" in text
    assert "Total: 139.98" in text and "Lamp &lt;deluxe&gt;" in html and "<deluxe>" not in html
    ann_text, _ = parts(by_rcpt["ann@example.com"])  # type: ignore[arg-type]
    bob_text, _ = parts(by_rcpt["bob@example.com"])  # type: ignore[arg-type]
    assert "Lamp" in ann_text and "Rug" not in ann_text and "Total: 39.98" in ann_text
    assert "Rug" in bob_text and "Lamp" not in bob_text and "Total: 100.00" in bob_text


async def test_smtp_failure_is_recorded_and_retried(sqlite_url: str, tmp_path: Path, smtp: Smtp) -> None:
    smtp.stop()
    c = Container(mail_settings(sqlite_url, tmp_path, smtp))
    try:
        async with c.adapters.requests.uow() as uow:
            from domain.ids import new_id
            from domain.users import Role, User

            now = datetime.now(UTC)
            user = User(new_id(), "carol", "carol@example.com", "!", Role.USER, now, now)
            await uow.users.add(user)
            outbox_id = await uow.outbox.add(SEND_WELCOME, {"user_id": str(user.id)})
            await uow.commit()
        payload = {"outbox_id": str(outbox_id), "user_id": str(user.id)}
        with pytest.raises(Unavailable):  # the mail server refused the connection
            await c.jobs.run(SEND_WELCOME, payload)
        (row,) = await outbox_rows(c)
        assert row.processed_at is None and row.attempts == 1 and row.last_error
        smtp.start()
        assert (await c.jobs.run(SEND_WELCOME, payload))["outcome"] == "sent"
        assert len(smtp.inbox.envelopes) == 1
    finally:
        await c.shutdown()


async def _until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_saq_worker_runs_jobs_once_and_retries_with_backoff(sqlite_url: str, tmp_path: Path, smtp: Smtp) -> None:
    name = queue_name()
    settings = mail_settings(sqlite_url, tmp_path, smtp, REDIS_URL=REDIS_URL, JOB_QUEUE_NAME=name)
    container = Container(settings)
    assert isinstance(container.adapters.queue, SaqJobQueue) and container.adapters.queue.name == name
    alive = tmp_path / "worker-alive"
    worker = build_worker(settings, concurrency=4, alive_file=alive, shutdown_grace_seconds=2)
    await worker.queue.connect()
    running = asyncio.create_task(worker.start())
    try:
        user = await container.use_cases.auth.register.execute(username="dora", email="dora@example.com", password=PW)

        async def two_delivered() -> bool:
            return len(smtp.inbox.envelopes) == 2

        await _until(two_delivered)
        assert alive.exists()
        rows = await outbox_rows(container)
        assert all(row.processed_at is not None and row.dispatched_at is not None for row in rows)
        saq = container.adapters.queue.queue
        welcome = next(row for row in rows if row.kind == SEND_WELCOME)
        key = f"outbox:{welcome.id}"
        job = await saq.job(key)
        assert job is not None and job.status == "complete" and job.result["outcome"] == "sent"
        assert (job.timeout, job.retries) == (30, 6)

        # The same job handed over again after it completed: it runs, finds the row processed, sends nothing.
        await container.adapters.queue.enqueue(
            SEND_WELCOME, {"outbox_id": str(welcome.id), "user_id": str(user.id)}, key=key
        )

        async def rerun_complete() -> bool:
            job = await saq.job(key)
            return job is not None and job.status == "complete" and job.result["outcome"] == "already processed"

        await _until(rerun_complete)
        assert len(smtp.inbox.envelopes) == 2

        # A job failing while SMTP is down is retried with backoff and delivered once SMTP is back.
        smtp.stop()
        async with container.adapters.requests.uow() as uow:
            retry_id = await uow.outbox.add(SEND_WELCOME, {"user_id": str(user.id)})
            await uow.commit()
        fast = SaqJobQueue(
            saq,
            policy=lambda kind: JobPolicy(
                timeout_seconds=10, attempts=8, retry_delay_seconds=0.2, max_retry_delay_seconds=0.5
            ),
        )
        await fast.enqueue(
            SEND_WELCOME, {"outbox_id": str(retry_id), "user_id": str(user.id)}, key=f"outbox:{retry_id}"
        )

        async def failed_once() -> bool:
            return any(row.id == retry_id and row.attempts >= 1 for row in await outbox_rows(container))

        await _until(failed_once)
        smtp.start()

        async def three_delivered() -> bool:
            return len(smtp.inbox.envelopes) == 3

        await _until(three_delivered)
        job = await saq.job(f"outbox:{retry_id}")
        assert job is not None and job.attempts >= 2
    finally:
        worker.event.set()  # what SIGTERM does
        await asyncio.wait_for(running, timeout=10)
        await worker.queue.disconnect()
        await container.shutdown()
        await clear_queue(name)
    assert not alive.exists()
