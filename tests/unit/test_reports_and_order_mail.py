"""Sales reports and order emails on in-memory adapters."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.memory.reports import MemoryOrderMailQueries, MemoryReportStorage, MemorySalesLineSource
from application.identity import Principal
from application.jobs import BUILD_SALES_REPORT
from application.use_cases import notifications, reports
from domain.errors import Conflict, NotFound, RuleViolation, TooManyAttempts
from domain.ids import new_id
from domain.orders import Order, OrderLine, OrderStatus
from domain.reports import ReportStatus, validate_period
from domain.users import Role, User
from tests.unit.fakes import World, make_world
from tests.unit.test_outbox_jobs import RecordingMailer


def add_user(w: World, name: str) -> Principal:
    user = User(new_id(), name, f"{name}@example.com", "!", Role.USER, w.clock.now(), w.clock.now())
    w.uow.store.table("users")[user.id] = user
    return Principal(id=user.id, role=Role.USER)


def add_order(
    w: World,
    buyer: Principal,
    lines: list[tuple[Principal, str, str, int]],
    *,
    at: datetime,
    status: OrderStatus = OrderStatus.PLACED,
) -> Order:
    order_id = new_id()
    order_lines = [
        OrderLine(new_id(), order_id, new_id(), seller.id, name, Decimal(price), qty)
        for seller, name, price, qty in lines
    ]
    total = sum((line.line_total for line in order_lines), Decimal("0"))
    order = Order(order_id, buyer.id, status, total, at, at, order_lines)
    w.uow.store.table("orders")[order.id] = order
    return order


def report_deps(w: World, storage: MemoryReportStorage | None = None) -> reports.ReportDeps:
    return reports.ReportDeps(
        uow=w.uow,
        clock=w.clock,
        jobs=w.deps.jobs,
        sales=MemorySalesLineSource(w.uow.store),
        storage=storage or MemoryReportStorage(),
    )


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        (date(2025, 1, 1), date(2025, 1, 1), True),
        (date(2024, 1, 1), date(2024, 12, 31), True),
        (date(2025, 1, 1), date(2026, 1, 2), True),  # 366 days apart
        (date(2025, 1, 1), date(2026, 1, 3), False),
        (date(2025, 1, 2), date(2025, 1, 1), False),
    ],
)
def test_period_rules(start: date, end: date, ok: bool) -> None:
    if ok:
        validate_period(start, end)
    else:
        with pytest.raises(RuleViolation):
            validate_period(start, end)


async def test_request_queues_a_report_and_a_job_and_caps_unfinished_ones() -> None:
    w = make_world()
    seller = add_user(w, "seller")
    request = reports.RequestReport(report_deps(w))
    report = await request.execute(seller, kind="sales", period_from=date(2025, 1, 1), period_to=date(2025, 1, 31))
    assert report.status is ReportStatus.QUEUED
    kind, payload, key = w.queue.jobs[0]
    assert kind == BUILD_SALES_REPORT and payload["report_id"] == str(report.id) and key.startswith("outbox:")
    with pytest.raises(RuleViolation):
        await request.execute(seller, kind="refunds", period_from=date(2025, 1, 1), period_to=date(2025, 1, 2))
    for _ in range(reports.MAX_UNFINISHED_PER_USER - 1):
        await request.execute(seller, kind="sales", period_from=date(2025, 1, 1), period_to=date(2025, 1, 2))
    with pytest.raises(TooManyAttempts):
        await request.execute(seller, kind="sales", period_from=date(2025, 1, 1), period_to=date(2025, 1, 2))


async def test_build_lists_the_sellers_lines_in_the_period_with_totals() -> None:
    w = make_world()
    seller, other, buyer = add_user(w, "seller"), add_user(w, "other"), add_user(w, "buyer")
    jan = datetime(2025, 1, 10, 12, tzinfo=UTC)
    add_order(w, buyer, [(seller, "Lamp", "19.99", 2), (other, "Not mine", "5.00", 1)], at=jan)
    add_order(w, buyer, [(seller, '=HYPERLINK("x")', "0.10", 3)], at=jan + timedelta(days=1))
    add_order(
        w, buyer, [(seller, "Cancelled chair", "50.00", 1)], at=jan + timedelta(days=2), status=OrderStatus.CANCELLED
    )
    add_order(w, buyer, [(seller, "Too late", "1.00", 1)], at=datetime(2025, 2, 1, tzinfo=UTC))
    add_order(w, buyer, [(seller, "Last second", "1.00", 1)], at=datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC))
    storage = MemoryReportStorage()
    deps = report_deps(w, storage)
    report = await reports.RequestReport(deps).execute(
        seller, kind="sales", period_from=date(2025, 1, 1), period_to=date(2025, 1, 31)
    )
    assert await reports.BuildSalesReport(deps).execute(report_id=report.id) == "done: 4 lines"
    rows = list(csv.reader(io.StringIO(storage.files[f"{report.id}.csv"].decode())))
    assert rows[0] == reports.CSV_COLUMNS
    body, totals = rows[1:-1], rows[-1]
    assert [r[3] for r in body] == ["Lamp", '\'=HYPERLINK("x")', "Cancelled chair", "Last second"]
    assert body[0][1] == "2025-01-10T12:00:00Z" and body[0][4:8] == ["19.99", "2", "39.98", "placed"]
    assert body[2][7] == "cancelled"
    assert totals == ["TOTAL", "", "", "", "", "6", "41.28", "placed"]  # 39.98 + 0.30 + 1.00; cancelled excluded

    stored = w.uow.store.table("reports")[report.id]
    assert stored.status is ReportStatus.DONE and stored.finished_at is not None
    # A retried job finds the report finished and does nothing.
    assert await reports.BuildSalesReport(deps).execute(report_id=report.id) == "skipped: already done"
    assert storage.saves == 1


async def test_a_crashed_attempt_is_rebuilt_into_the_same_file() -> None:
    w = make_world()
    seller = add_user(w, "seller")
    storage = MemoryReportStorage()
    deps = report_deps(w, storage)
    report = await reports.RequestReport(deps).execute(
        seller, kind="sales", period_from=date(2025, 1, 1), period_to=date(2025, 1, 31)
    )
    w.uow.store.table("reports")[report.id].status = ReportStatus.RUNNING  # the worker died mid-build
    storage.files[f"{report.id}.csv"] = b"half a file"
    assert (await reports.BuildSalesReport(deps).execute(report_id=report.id)).startswith("done")
    assert list(storage.files) == [f"{report.id}.csv"]
    assert storage.files[f"{report.id}.csv"].decode().splitlines() == [
        ",".join(reports.CSV_COLUMNS),
        "TOTAL,,,,,0,0.00,placed",
    ]
    assert len(w.uow.store.table("reports")) == 1


async def test_storage_failure_marks_the_report_failed_with_the_reason() -> None:
    w = make_world()
    seller = add_user(w, "seller")

    class BrokenStorage(MemoryReportStorage):
        async def save(self, name: str, content: bytes) -> None:
            raise OSError("disk full")

    deps = report_deps(w, BrokenStorage())
    report = await reports.RequestReport(deps).execute(
        seller, kind="sales", period_from=date(2025, 1, 1), period_to=date(2025, 1, 1)
    )
    assert await reports.BuildSalesReport(deps).execute(report_id=report.id) == "failed"
    failed = await reports.GetReport(deps).execute(seller, report.id)
    assert failed.status is ReportStatus.FAILED and failed.error == "OSError: disk full"
    with pytest.raises(Conflict):
        await reports.OpenReportDownload(deps).execute(seller, report.id)


async def test_only_the_owner_sees_a_report_and_only_when_done() -> None:
    w = make_world()
    seller, stranger = add_user(w, "seller"), add_user(w, "stranger")
    deps = report_deps(w)
    report = await reports.RequestReport(deps).execute(
        seller, kind="sales", period_from=date(2025, 1, 1), period_to=date(2025, 1, 1)
    )
    with pytest.raises(NotFound):
        await reports.GetReport(deps).execute(stranger, report.id)
    with pytest.raises(NotFound):
        await reports.OpenReportDownload(deps).execute(stranger, report.id)
    with pytest.raises(Conflict):
        await reports.OpenReportDownload(deps).execute(seller, report.id)
    await reports.BuildSalesReport(deps).execute(report_id=report.id)
    _, chunks = await reports.OpenReportDownload(deps).execute(seller, report.id)
    assert b"".join([c async for c in chunks]).startswith(b"order_id,")
    with pytest.raises(NotFound):
        await reports.GetReport(deps).execute(seller, uuid.uuid4())


def mail_deps(w: World, mailer: RecordingMailer) -> notifications.MailDeps:
    return notifications.MailDeps(
        uow=w.uow, mailer=mailer, orders=MemoryOrderMailQueries(w.uow.store), public_base_url="https://shop.test"
    )


async def test_order_confirmation_and_sale_notices() -> None:
    w = make_world()
    ann, bob, buyer = add_user(w, "ann"), add_user(w, "bob"), add_user(w, "buyer")
    order = add_order(
        w,
        buyer,
        [(ann, "<b>Lamp</b>", "19.99", 2), (bob, "Rug", "100.00", 1), (ann, "Bulb", "0.05", 3)],
        at=w.clock.now(),
    )
    mailer = RecordingMailer()
    deps = mail_deps(w, mailer)
    assert await notifications.SendOrderConfirmation(deps).execute(order_id=order.id, message_id="m1") == "sent"
    (confirmation,) = mailer.sent
    assert confirmation.to == "buyer@example.com" and str(order.id) in confirmation.subject
    assert "Total: 140.13" in confirmation.text and "2 x <b>Lamp</b> @ 19.99 = 39.98" in confirmation.text
    assert "&lt;b&gt;Lamp&lt;/b&gt;" in confirmation.html and "<b>Lamp</b>" not in confirmation.html

    await notifications.SendSaleNotice(deps).execute(order_id=order.id, seller_id=ann.id, message_id="m2")
    notice = mailer.sent[-1]
    assert notice.to == "ann@example.com" and "Rug" not in notice.text
    assert "Total: 40.13" in notice.text and notice.subject.startswith("You sold 5 item(s)")

    w.uow.store.table("orders")[order.id].status = OrderStatus.CANCELLED
    note = await notifications.SendSaleNotice(deps).execute(order_id=order.id, seller_id=bob.id, message_id="m3")
    assert note == "skipped: order cancelled" and len(mailer.sent) == 2
    w.uow.store.table("users")[buyer.id].deleted_at = w.clock.now()
    note = await notifications.SendOrderConfirmation(deps).execute(order_id=order.id, message_id="m4")
    assert note == "skipped: buyer account gone"
    assert await notifications.SendOrderConfirmation(deps).execute(order_id=uuid.uuid4(), message_id="m5") == (
        "skipped: order gone"
    )
