"""Report rows on SQL."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.sql.tables import ReportRow, table_of
from domain.reports import Report, ReportKind, ReportStatus

RP = table_of(ReportRow)
_UNFINISHED = (ReportStatus.QUEUED.value, ReportStatus.RUNNING.value)


def _report(row: Any) -> Report:
    return Report(
        id=row.id,
        owner_id=row.owner_id,
        kind=ReportKind(row.kind),
        status=ReportStatus(row.status),
        period_from=row.period_from,
        period_to=row.period_to,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        file_name=row.file_path,
        error=row.error,
    )


class SqlReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session

    async def add(self, report: Report) -> None:
        await self.s.execute(
            insert(RP).values(
                id=report.id,
                owner_id=report.owner_id,
                kind=report.kind.value,
                status=report.status.value,
                period_from=report.period_from,
                period_to=report.period_to,
                created_at=report.created_at,
                updated_at=report.updated_at,
            )
        )

    async def get(self, report_id: uuid.UUID) -> Report | None:
        row = (await self.s.execute(select(RP).where(RP.c.id == report_id))).first()
        return _report(row) if row else None

    async def update(self, report: Report) -> None:
        await self.s.execute(
            update(RP)
            .where(RP.c.id == report.id)
            .values(
                status=report.status.value,
                file_path=report.file_name,
                error=report.error,
                finished_at=report.finished_at,
                updated_at=report.updated_at,
            )
        )

    async def count_unfinished(self, owner_id: uuid.UUID) -> int:
        query = select(func.count()).select_from(RP).where(RP.c.owner_id == owner_id, RP.c.status.in_(_UNFINISHED))
        return int((await self.s.execute(query)).scalar_one())
