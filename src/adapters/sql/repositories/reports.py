"""Report rows on SQL."""

from __future__ import annotations

import uuid

from adapters.sql.executor import SqlAdapter
from adapters.sql.mapping import params_of, row_mapper
from adapters.sql.statements import reports as sql
from domain.reports import Report

_report = row_mapper(Report)


class SqlReportRepository(SqlAdapter):
    async def add(self, report: Report) -> None:
        params = params_of(report, file_path=report.file_name)
        del params["file_name"]
        await self.sql.run(sql.INSERT_REPORT, **params)

    async def get(self, report_id: uuid.UUID) -> Report | None:
        row = await self.sql.row(sql.REPORT_BY_ID, report_id=report_id)
        return _report(row) if row else None

    async def update(self, report: Report) -> None:
        await self.sql.run(
            sql.UPDATE_REPORT,
            report_id=report.id,
            status=report.status.value,
            file_name=report.file_name,
            error=report.error,
            finished_at=report.finished_at,
            updated_at=report.updated_at,
        )

    async def count_unfinished(self, owner_id: uuid.UUID) -> int:
        return int(await self.sql.value(sql.COUNT_UNFINISHED, owner_id=owner_id))
