"""Sales reports: request one (202), watch its status, download the CSV a background job built."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import polars as pl

from application.identity import Principal
from application.jobs import BUILD_SALES_REPORT, JobDispatcher, record
from application.ports.clock import Clock
from application.ports.persistence import UnitOfWorkFactory
from application.ports.reports import ReportStorage, SalesLine, SalesLineSource
from application.use_cases.base import UseCase
from domain.errors import Conflict, NotFound, TooManyAttempts
from domain.ids import new_id
from domain.reports import Report, ReportStatus, parse_kind, validate_period

log = logging.getLogger(__name__)

MAX_UNFINISHED_PER_USER = 5
CSV_COLUMNS = ["order_id", "created_at", "product_id", "name", "unit_price", "quantity", "line_total", "status"]
_SCHEMA = pl.Schema(
    [
        ("order_id", pl.String()),
        ("created_at", pl.Datetime("us", "UTC")),
        ("product_id", pl.String()),
        ("name", pl.String()),
        ("unit_price", pl.Decimal(12, 2)),
        ("quantity", pl.Int64()),
        ("line_total", pl.Decimal(14, 2)),
        ("status", pl.String()),
    ]
)
# Spreadsheets run cells starting with these as formulas (CSV injection); a leading quote defuses them.
_FORMULA_START = r"^[=+\-@\t\r]"


@dataclass(frozen=True, slots=True)
class ReportDeps:
    uow: UnitOfWorkFactory
    clock: Clock
    jobs: JobDispatcher
    sales: SalesLineSource
    storage: ReportStorage


def file_name(report: Report) -> str:
    return f"{report.id}.csv"


async def _own_report(deps: ReportDeps, principal: Principal, report_id: uuid.UUID) -> Report:
    async with deps.uow() as uow:
        report = await uow.reports.get(report_id)
    if report is None or report.owner_id != principal.id:
        raise NotFound("No such report.", field="id")
    return report


class RequestReport(UseCase[ReportDeps]):
    """Queue a report of the caller's sales in [from, to] (dates inclusive, UTC); a job builds it.

    At most ``MAX_UNFINISHED_PER_USER`` reports per user wait or run at once (429 beyond), so one
    client cannot flood the workers.
    """

    async def execute(self, principal: Principal, *, kind: str, period_from: date, period_to: date) -> Report:
        report_kind = parse_kind(kind)
        validate_period(period_from, period_to)
        now = self.deps.clock.now()
        report = Report(
            id=new_id(),
            owner_id=principal.id,
            kind=report_kind,
            status=ReportStatus.QUEUED,
            period_from=period_from,
            period_to=period_to,
            created_at=now,
            updated_at=now,
        )
        async with self.deps.uow() as uow:
            if await uow.reports.count_unfinished(principal.id) >= MAX_UNFINISHED_PER_USER:
                raise TooManyAttempts(
                    f"At most {MAX_UNFINISHED_PER_USER} reports may be queued or running at once.", retry_after=30
                )
            await uow.reports.add(report)
            jobs = await record(uow, [(BUILD_SALES_REPORT, {"report_id": str(report.id)})])
            await uow.commit()
        await self.deps.jobs.dispatch(jobs)
        return report


class GetReport(UseCase[ReportDeps]):
    """The caller's own report; anyone else's (or a made-up id) is 404."""

    async def execute(self, principal: Principal, report_id: uuid.UUID) -> Report:
        return await _own_report(self.deps, principal, report_id)


class OpenReportDownload(UseCase[ReportDeps]):
    """The finished CSV as a stream of chunks; 409 while it is not done (or when it failed)."""

    async def execute(self, principal: Principal, report_id: uuid.UUID) -> tuple[Report, AsyncIterator[bytes]]:
        report = await _own_report(self.deps, principal, report_id)
        if report.status is ReportStatus.FAILED:
            raise Conflict(f"The report failed: {report.error or 'unknown error'}", field="status")
        if report.status is not ReportStatus.DONE or report.file_name is None:
            raise Conflict(f"The report is not ready yet (status: {report.status.value}).", field="status")
        if not await self.deps.storage.exists(report.file_name):
            raise NotFound("The report file is no longer available; request a new report.", field="id")
        return report, self.deps.storage.read(report.file_name)


class BuildSalesReport(UseCase[ReportDeps]):
    """The job: read the seller's order lines in the period, write the CSV, mark the report.

    Idempotent: a finished report returns at once; a retry after a crash overwrites the same file
    (``{report id}.csv``) and updates the same report row. A build error marks the report failed
    with the reason; errors while recording the outcome propagate so the job is retried.
    """

    async def execute(self, *, report_id: uuid.UUID) -> str:
        async with self.deps.uow() as uow:
            report = await uow.reports.get(report_id)
            if report is None:
                return "skipped: report gone"
            if report.is_finished:
                return f"skipped: already {report.status.value}"
            report.start(self.deps.clock.now())
            await uow.reports.update(report)
            await uow.commit()
        try:
            content, lines = await self._build(report)
            name = file_name(report)
            await self.deps.storage.save(name, content)
        except Exception as error:
            log.exception("sales report %s failed", report.id)
            await self._record(report.id, failure=f"{type(error).__name__}: {error}")
            return "failed"
        await self._record(report.id, done=name)
        return f"done: {lines} lines"

    async def _record(self, report_id: uuid.UUID, *, done: str | None = None, failure: str | None = None) -> None:
        async with self.deps.uow() as uow:
            report = await uow.reports.get(report_id)
            if report is None:
                return
            now = self.deps.clock.now()
            if done is not None:
                report.finish(now, done)
            else:
                report.fail(now, failure or "unknown error")
            await uow.reports.update(report)
            await uow.commit()

    async def _build(self, report: Report) -> tuple[bytes, int]:
        start = datetime.combine(report.period_from, time.min, tzinfo=UTC)
        end = datetime.combine(report.period_to + timedelta(days=1), time.min, tzinfo=UTC)
        frames: list[pl.DataFrame] = []
        # Polars work (frames, sums, CSV writing) runs in threads: the event loop keeps serving.
        async for batch in self.deps.sales.sales_lines(report.owner_id, start, end):
            frames.append(await asyncio.to_thread(_frame, batch))
        return await asyncio.to_thread(sales_csv, frames)


def _frame(batch: list[SalesLine]) -> pl.DataFrame:
    rows = [
        (str(r.order_id), r.created_at, str(r.product_id), r.name, r.unit_price, r.quantity, r.line_total, r.status)
        for r in batch
    ]
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row")


def sales_csv(frames: list[pl.DataFrame]) -> tuple[bytes, int]:
    """One row per order line, then a totals row over the placed (not cancelled) lines.

    Totals: ``order_id`` = ``TOTAL``, the summed ``quantity`` and ``line_total``, ``status`` =
    ``placed``. Returns the UTF-8 CSV and the number of lines.
    """
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=_SCHEMA)
    frame = frame.with_columns(
        pl.when(pl.col("name").str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col("name"))
        .otherwise(pl.col("name"))
        .alias("name")
    )
    placed = frame.filter(pl.col("status") == "placed")
    quantity = int(placed["quantity"].sum() or 0)
    total = placed["line_total"].sum()
    total_text = f"{Decimal(total if total is not None else 0):.2f}"
    out = io.StringIO()
    out.write(frame.select(CSV_COLUMNS).write_csv(datetime_format="%Y-%m-%dT%H:%M:%SZ"))
    csv.writer(out, lineterminator="\n").writerow(["TOTAL", "", "", "", "", quantity, total_text, "placed"])
    return out.getvalue().encode("utf-8"), frame.height
