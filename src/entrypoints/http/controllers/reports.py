"""Sales reports: request (202), poll the status, download the CSV."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.response import Stream
from litestar.status_codes import HTTP_202_ACCEPTED

from domain.ids import parse_id
from domain.reports import MAX_SPAN_DAYS, Report, ReportStatus
from entrypoints.http.dependencies import Caller, Reports


class ReportRequest(msgspec.Struct):
    kind: Annotated[Literal["sales"], msgspec.Meta(description="The only kind so far: the caller's sales.")]
    period_from: Annotated[date, msgspec.Meta(description="First day (UTC), inclusive.")] = msgspec.field(name="from")
    to: Annotated[date, msgspec.Meta(description=f"Last day (UTC), inclusive; at most {MAX_SPAN_DAYS} days later.")]


class ReportOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    status: Annotated[str, msgspec.Meta(description="queued, running, done or failed.")]
    created_at: datetime
    finished_at: datetime | None
    download_url: Annotated[str | None, msgspec.Meta(description="Set once the report is done.")]
    period_from: date = msgspec.field(name="from")
    period_to: date = msgspec.field(name="to")
    error: Annotated[str | None, msgspec.Meta(description="Why the report failed.")] = None


def _out(report: Report) -> ReportOut:
    done = report.status is ReportStatus.DONE
    return ReportOut(
        id=report.id,
        kind=report.kind.value,
        status=report.status.value,
        created_at=report.created_at,
        finished_at=report.finished_at,
        download_url=f"/api/reports/{report.id}/download" if done else None,
        period_from=report.period_from,
        period_to=report.period_to,
        error=report.error,
    )


class ReportsController(Controller):
    path = "/api/reports"
    tags = ["reports"]

    @post(
        "/",
        operation_id="requestReport",
        summary="Request a sales report",
        status_code=HTTP_202_ACCEPTED,
        description=(
            "A background job builds a CSV of your sales in [from, to] (UTC days, inclusive, at most "
            f"{MAX_SPAN_DAYS} days apart): one row per order line sold, then a totals row over the "
            "placed (not cancelled) lines. Poll `GET /api/reports/{id}` until `status` is `done`. "
            "At most 5 reports may be queued or running per user (429 beyond)."
        ),
        response_headers=[
            ResponseHeader(name="Location", description="The report's status URL.", documentation_only=True)
        ],
        responses={429: ResponseSpec(None, description="Too many unfinished reports.")},
    )
    async def request_report(
        self, request: Caller, data: JSONBody[ReportRequest], reports: Reports
    ) -> Response[ReportOut]:
        report = await reports.request_report.execute(
            request.user, kind=data.kind, period_from=data.period_from, period_to=data.to
        )
        return Response(_out(report), status_code=HTTP_202_ACCEPTED, headers={"Location": f"/api/reports/{report.id}"})

    @get("/{report_id:str}", operation_id="getReport", summary="A report's status")
    async def get_report(self, request: Caller, report_id: FromPath[str], reports: Reports) -> ReportOut:
        """Only the owner sees it; anyone else (or an unknown id) gets 404."""
        return _out(await reports.get_report.execute(request.user, parse_id(report_id, field="report_id")))

    @get(
        "/{report_id:str}/download",
        operation_id="downloadReport",
        summary="Download a finished report (CSV)",
        media_type="text/csv",
        response_description="CSV: one row per order line sold in the period, then a totals row.",
        responses={409: ResponseSpec(None, description="Not done yet, or failed.")},
    )
    async def download_report(self, request: Caller, report_id: FromPath[str], reports: Reports) -> Stream:
        """409 while the report is queued or running, or when it failed."""
        report, chunks = await reports.open_report_download.execute(
            request.user, parse_id(report_id, field="report_id")
        )
        filename = f"sales-{report.period_from.isoformat()}-to-{report.period_to.isoformat()}.csv"
        return Stream(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "private, no-store",
            },
        )
