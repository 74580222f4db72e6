"""Outbox jobs on in-memory adapters: run once to completion, record failures, relay the lost ones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from adapters.cache.memory_cache import MemoryCache
from adapters.memory.catalog import MemoryCatalogQueries
from adapters.memory.outbox import MemoryOutboxJobStore
from adapters.memory.recommendations import MemoryInteractionSource, MemoryNeighbourStore
from adapters.memory.reports import MemoryOrderMailQueries, MemoryReportStorage, MemorySalesLineSource
from application.jobs import (
    SEND_PASSWORD_RESET,
    SEND_VERIFICATION,
    SEND_WELCOME,
    Job,
    JobDispatcher,
    OutboxJob,
    record,
)
from application.ports.jobs import QueuedJob
from application.ports.mail import EmailMessage
from application.use_cases import auth, notifications, recommendations, reports
from application.use_cases.outbox import RelayOutbox, RunOutboxJob, UnknownJobKind
from entrypoints.bundles import NotificationUseCases
from entrypoints.jobs import outbox_handlers
from tests.unit.fakes import RecordingQueue, World, make_world

PW = "correct horse battery"


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.down = False

    async def send(self, message: EmailMessage) -> None:
        if self.down:
            raise ConnectionRefusedError("smtp down")
        self.sent.append(message)


def wire(w: World) -> tuple[RunOutboxJob, RecordingMailer, MemoryOutboxJobStore]:
    mailer = RecordingMailer()
    store = MemoryOutboxJobStore(w.uow.store)
    mail = notifications.MailDeps(
        uow=w.uow, mailer=mailer, orders=MemoryOrderMailQueries(w.uow.store), public_base_url="https://shop.test"
    )
    emails = NotificationUseCases(
        send_welcome_email=notifications.SendWelcomeEmail(mail),
        send_verification_email=notifications.SendVerificationEmail(mail),
        send_password_reset_email=notifications.SendPasswordResetEmail(mail),
        send_email_changed_notice=notifications.SendEmailChangedNotice(mail),
        send_order_confirmation=notifications.SendOrderConfirmation(mail),
        send_sale_notice=notifications.SendSaleNotice(mail),
    )
    report_deps = reports.ReportDeps(
        uow=w.uow,
        clock=w.clock,
        jobs=w.deps.jobs,
        sales=MemorySalesLineSource(w.uow.store),
        storage=MemoryReportStorage(),
    )
    update_feed = recommendations.UpdateFeed(
        recommendations.RecommendationDeps(
            source=MemoryInteractionSource(w.uow.store),
            store=MemoryNeighbourStore(w.uow.store),
            queries=MemoryCatalogQueries(w.uow.store),
            cache=MemoryCache(),
            clock=w.clock,
        )
    )
    handlers = outbox_handlers(emails, reports.BuildSalesReport(report_deps), update_feed)
    return RunOutboxJob(store, handlers, w.clock), mailer, store


async def run_all(runner: RunOutboxJob, queue: RecordingQueue) -> list[dict[str, str]]:
    return [await runner.execute(kind, payload) for kind, payload, _ in queue.jobs]


async def test_registration_mails_welcome_and_verification_once() -> None:
    w = make_world()
    runner, mailer, store = wire(w)
    await auth.Register(w.deps).execute(username="alice", email="alice@example.com", password=PW)
    results = await run_all(runner, w.queue)
    assert [r["outcome"] for r in results] == ["sent", "sent"]
    subjects = sorted(m.subject for m in mailer.sent)
    assert subjects == ["Confirm your email address", "Welcome to Marketplace"]
    verify = next(m for m in mailer.sent if m.subject.startswith("Confirm"))
    outbox_ids = {str(row_id) for row_id in w.uow.store.table("outbox")}
    assert {m.message_id for m in mailer.sent} == outbox_ids
    assert (
        "https://shop.test/verify-email?token=" in verify.text
        and "https://shop.test/verify-email?token=" in verify.html
    )
    token = verify.text.split("token=")[1].split()[0]
    await auth.VerifyEmail(w.deps).execute(token=token)  # the mailed token works

    # A retry of a job that already completed sends nothing.
    again = await run_all(runner, w.queue)
    assert {r["outcome"] for r in again} == {"already processed"}
    assert len(mailer.sent) == 2
    rows = w.uow.store.table("outbox").values()
    assert all(row["processed_at"] is not None for row in rows)
    assert all("token" not in row["payload"] and "user_id" in row["payload"] for row in rows)  # no secret at rest


async def test_password_reset_mail_has_link_and_token() -> None:
    w = make_world()
    runner, mailer, _ = wire(w)
    await auth.Register(w.deps).execute(username="bob", email="bob@example.com", password=PW)
    w.queue.jobs.clear()
    await auth.RequestPasswordReset(w.deps).execute(email="BOB@example.com")
    assert [kind for kind, _, _ in w.queue.jobs] == [SEND_PASSWORD_RESET]
    await run_all(runner, w.queue)
    (message,) = mailer.sent
    assert message.to == "bob@example.com" and message.subject == "Reset your password"
    token = message.text.split("reset-password?token=")[1].split()[0]
    await auth.ConfirmPasswordReset(w.deps).execute(token=token, new_password="another long password")


async def test_failure_is_recorded_and_the_job_raises_for_a_retry() -> None:
    w = make_world()
    runner, mailer, store = wire(w)
    await auth.Register(w.deps).execute(username="carol", email="carol@example.com", password=PW)
    kind, payload, _ = next(j for j in w.queue.jobs if j[0] == SEND_WELCOME)
    mailer.down = True
    with pytest.raises(ConnectionRefusedError):
        await runner.execute(kind, payload)
    entry = await store.get(uuid.UUID(payload["outbox_id"]))
    assert entry is not None and entry.attempts == 1 and entry.processed_at is None
    assert "ConnectionRefusedError" in w.uow.store.table("outbox")[entry.id]["last_error"]
    mailer.down = False
    assert (await runner.execute(kind, payload))["outcome"] == "sent"


async def test_verification_skipped_once_verified_and_for_deleted_accounts() -> None:
    w = make_world()
    runner, mailer, _ = wire(w)
    user = await auth.Register(w.deps).execute(username="dave", email="dave@example.com", password=PW)
    w.uow.store.table("users")[user.id].email_verified = True
    results = {r["kind"]: r["outcome"] for r in await run_all(runner, w.queue)}
    assert results[SEND_VERIFICATION] == "skipped: already verified"
    assert [m.subject for m in mailer.sent] == ["Welcome to Marketplace"]


async def test_unknown_kind_missing_row_and_bad_payload() -> None:
    w = make_world()
    runner, _, store = wire(w)
    async with w.uow() as uow:
        odd = await uow.outbox.add("no_such_job", {})
        await uow.commit()
    with pytest.raises(UnknownJobKind):
        await runner.execute("no_such_job", {"outbox_id": str(odd)})
    assert (await store.get(odd)).attempts == 1  # type: ignore[union-attr]
    assert (await runner.execute(SEND_WELCOME, {"outbox_id": str(uuid.uuid4())}))["outcome"] == "missing"
    assert (await runner.execute(SEND_WELCOME, {"outbox_id": "nope"}))["outcome"] == "invalid payload"


async def _recorded(w: World, jobs: list[Job]) -> list[OutboxJob]:
    """Jobs written by a unit of work, born claimed by it, at the fake clock's time."""
    async with w.uow() as uow:
        recorded = await record(uow, jobs)
        await uow.commit()
    for outbox_id, _, _ in recorded:  # the memory outbox stamps wall-clock time; align it with the fake clock
        w.uow.store.table("outbox")[outbox_id].update(created_at=w.clock.now(), dispatched_at=w.clock.now())
    return recorded


async def _rows(w: World, n: int) -> list[uuid.UUID]:
    """Rows their writer released (the queue refused them): the relay's to send."""
    recorded = await _recorded(w, [(SEND_WELCOME, {"user_id": str(uuid.uuid4())}) for _ in range(n)])
    for outbox_id, _, _ in recorded:
        w.uow.store.table("outbox")[outbox_id]["dispatched_at"] = None
    return [outbox_id for outbox_id, _, _ in recorded]


def _relay(w: World, store: MemoryOutboxJobStore, **kw: Any) -> RelayOutbox:
    return RelayOutbox(store, w.queue, w.clock, stale_after=timedelta(minutes=5), grace=timedelta(seconds=30), **kw)


async def test_relay_picks_undispatched_and_stale_rows_only() -> None:
    w = make_world()
    store = MemoryOutboxJobStore(w.uow.store)
    rows = w.uow.store.table("outbox")
    fresh, lost, stale, recent, done, dead = await _rows(w, 6)
    for row_id in (lost, stale, recent, done, dead):
        rows[row_id]["created_at"] = w.clock.now() - timedelta(hours=1)
    rows[stale]["dispatched_at"] = w.clock.now() - timedelta(minutes=6)
    rows[recent]["dispatched_at"] = w.clock.now() - timedelta(minutes=1)
    rows[done]["processed_at"] = w.clock.now()
    rows[dead]["attempts"] = 30  # the default cap

    assert await _relay(w, store).execute() == 2
    assert sorted(key for _, _, key in w.queue.jobs) == sorted([f"outbox:{lost}", f"outbox:{stale}"])
    kind, payload, _ = w.queue.jobs[0]
    assert kind == SEND_WELCOME and "user_id" in payload and "outbox_id" in payload
    assert rows[lost]["dispatched_at"] == w.clock.now()
    assert await _relay(w, store).execute() == 0  # just claimed: not due again for 5 minutes
    assert rows[fresh]["dispatched_at"] is None  # its own request will dispatch it


async def test_relay_leaves_rows_for_next_run_when_queue_is_down() -> None:
    w = make_world()
    store = MemoryOutboxJobStore(w.uow.store)
    ids = await _rows(w, 3)
    w.clock.advance(minutes=1)
    w.queue.down = True
    assert await _relay(w, store).execute() == 0
    assert all(w.uow.store.table("outbox")[i]["dispatched_at"] is None for i in ids)
    w.queue.down = False
    assert await _relay(w, store).execute() == 3


async def test_concurrent_relays_enqueue_each_row_once() -> None:
    w = make_world()
    store = MemoryOutboxJobStore(w.uow.store)
    await _rows(w, 50)
    w.clock.advance(minutes=1)
    counts = await asyncio.gather(*(_relay(w, store, batch_size=7).execute() for _ in range(4)))
    assert sum(counts) == 50 and len({key for _, _, key in w.queue.jobs}) == 50


async def test_dispatcher_and_relay_use_the_same_job_key() -> None:
    w = make_world()
    await auth.Register(w.deps).execute(username="erin", email="erin@example.com", password=PW)
    direct = {key for _, _, key in w.queue.jobs}
    store = MemoryOutboxJobStore(w.uow.store)
    for row in w.uow.store.table("outbox").values():
        row["dispatched_at"] = w.clock.now() - timedelta(minutes=10)
    w.queue.jobs.clear()
    await RelayOutbox(store, w.queue, w.clock).execute()
    assert {key for _, _, key in w.queue.jobs} == direct
    assert isinstance(w.deps.jobs, JobDispatcher)


async def test_dispatch_sends_one_batch_and_a_refused_batch_is_released_for_the_relay() -> None:
    class BatchQueue(RecordingQueue):
        """Takes batches whole; refuses any batch holding a "refused" job."""

        batches = 0

        async def enqueue_many(self, jobs: Sequence[QueuedJob]) -> None:
            self.batches += 1
            if any(kind == "refused" for kind, _, _ in jobs):
                raise ConnectionError("queue hiccup")
            self.jobs.extend(jobs)

    w = make_world()
    store, queue = MemoryOutboxJobStore(w.uow.store), BatchQueue()
    rows = w.uow.store.table("outbox")
    sent = await _recorded(w, [(kind, {"n": str(n)}) for n, kind in enumerate(["a", "b"])])
    assert await JobDispatcher(queue, store).dispatch(sent) == 2
    assert queue.batches == 1 and [kind for kind, _, _ in queue.jobs] == ["a", "b"]
    assert all(rows[outbox_id]["dispatched_at"] is not None for outbox_id, _, _ in sent)  # nothing written

    refused = await _recorded(w, [("c", {}), ("refused", {})])
    assert await JobDispatcher(queue, store).dispatch(refused) == 0
    assert all(rows[outbox_id]["dispatched_at"] is None for outbox_id, _, _ in refused)  # released whole
    w.clock.advance(minutes=1)
    relayed = RecordingQueue()
    assert await RelayOutbox(store, relayed, w.clock).execute() == 2  # the relay's next run sends them
    assert sorted(kind for kind, _, _ in relayed.jobs) == ["c", "refused"]


async def test_a_row_whose_writer_never_dispatched_it_is_relayed_once_its_claim_is_stale() -> None:
    w = make_world()
    [(outbox_id, _, _)] = await _recorded(w, [("mail", {})])  # then the process died before dispatching
    store, queue = MemoryOutboxJobStore(w.uow.store), RecordingQueue()
    w.clock.advance(minutes=1)
    assert await RelayOutbox(store, queue, w.clock).execute() == 0  # the writer may still be at it
    w.clock.advance(minutes=2)
    assert await RelayOutbox(store, queue, w.clock).execute() == 1
    assert queue.jobs[0][2] == f"outbox:{outbox_id}"


class FlakyStore(MemoryOutboxJobStore):
    """The memory outbox with a switch: while ``down``, every call fails like a database outage."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name in {"get", "mark_processed", "record_failure"} and super().__getattribute__("down"):

            async def failing(*_args: Any, **_kwargs: Any) -> Any:
                raise ConnectionRefusedError("database down")

            return failing
        return attribute


async def test_attempts_failed_by_a_database_outage_are_recorded_once_it_answers() -> None:
    w = make_world()
    runner, mailer, _ = wire(w)
    store = FlakyStore(w.uow.store)
    runner.outbox = store
    await auth.Register(w.deps).execute(username="erin", email="erin@example.com", password=PW)
    welcome = next(j for j in w.queue.jobs if j[0] == SEND_WELCOME)
    verification = next(j for j in w.queue.jobs if j[0] == SEND_VERIFICATION)

    def row() -> dict[str, Any]:
        return dict(w.uow.store.table("outbox")[uuid.UUID(welcome[1]["outbox_id"])])

    store.down = True
    for _ in range(2):  # the database fails before the work can start
        with pytest.raises(ConnectionRefusedError):
            await runner.execute(welcome[0], welcome[1])
    mailer.down = True  # the database is back; this time the work itself fails
    store.down = False
    with pytest.raises(ConnectionRefusedError):
        await runner.execute(welcome[0], welcome[1])
    assert row()["attempts"] == 3  # the two the database missed, written by this call first, and this one
    assert "smtp down" in row()["last_error"]

    store.down = True
    with pytest.raises(ConnectionRefusedError):
        await runner.execute(verification[0], verification[1])
    assert runner.unrecorded  # kept in the process while the database is down
    store.down = False
    assert await runner.flush_unrecorded() == 1  # the relay's tick writes it without any job running
    assert not runner.unrecorded and await runner.flush_unrecorded() == 0
    verification_row = w.uow.store.table("outbox")[uuid.UUID(verification[1]["outbox_id"])]
    assert verification_row["attempts"] == 1 and "database down" in verification_row["last_error"]

    mailer.down = False
    assert (await runner.execute(welcome[0], welcome[1]))["outcome"] == "sent"
    assert row()["attempts"] == 3 and row()["processed_at"] is not None and row()["last_error"] is None


async def test_unrecorded_failures_are_bounded() -> None:
    w = make_world()
    runner, _, _ = wire(w)
    store = FlakyStore(w.uow.store)
    store.down = True
    runner.outbox = store
    runner.max_unrecorded = 3
    for _ in range(5):
        with pytest.raises(ConnectionRefusedError):
            await runner.execute(SEND_WELCOME, {"outbox_id": str(uuid.uuid4())})
    assert len(runner.unrecorded) == 3


async def test_relay_with_no_grace_sends_rows_written_moments_ago() -> None:
    w = make_world()
    store = MemoryOutboxJobStore(w.uow.store)
    await _rows(w, 2)
    w.clock.advance(seconds=1)
    assert await _relay(w, store).execute() == 0  # within the grace: their requests dispatch them
    assert await _relay(w, store).execute(grace=timedelta(0)) == 2  # the queue just came back


async def test_concurrent_jobs_write_each_missed_failure_once() -> None:
    """Ten jobs start together right after an outage: the failures the database missed are written
    once, not once per job (each job flushes the ledger before its own work)."""
    w = make_world()
    runner, _, _ = wire(w)
    store = FlakyStore(w.uow.store)
    runner.outbox = store
    await auth.Register(w.deps).execute(username="finn", email="finn@example.com", password=PW)
    welcome = next(j for j in w.queue.jobs if j[0] == SEND_WELCOME)
    verification = next(j for j in w.queue.jobs if j[0] == SEND_VERIFICATION)
    store.down = True
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await runner.execute(welcome[0], welcome[1])
    store.down = False
    real_record = MemoryOutboxJobStore.record_failure

    async def slow_record(self: Any, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.01)  # the write yields: the other jobs' flushes run meanwhile
        await real_record(self, *args, **kwargs)

    store.record_failure = slow_record.__get__(store)  # type: ignore[method-assign]
    outcomes = await asyncio.gather(
        *(runner.execute(verification[0], verification[1]) for _ in range(10)), return_exceptions=True
    )
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert w.uow.store.table("outbox")[uuid.UUID(welcome[1]["outbox_id"])]["attempts"] == 3
    assert not runner.unrecorded
