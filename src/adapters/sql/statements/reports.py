"""Sales-report requests."""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, or_, select, update

from adapters.sql.statements.common import bound
from adapters.sql.tables import REPORTS
from domain.reports import ReportStatus

REPORT_COLUMNS = (
    REPORTS.c.id,
    REPORTS.c.owner_id,
    REPORTS.c.kind,
    REPORTS.c.status,
    REPORTS.c.period_from,
    REPORTS.c.period_to,
    REPORTS.c.created_at,
    REPORTS.c.updated_at,
    REPORTS.c.finished_at,
    REPORTS.c.file_path.label("file_name"),
    REPORTS.c.error,
)
INSERT_REPORT = insert(REPORTS)
REPORT_BY_ID = select(*REPORT_COLUMNS).where(REPORTS.c.id == bindparam("report_id"))
UPDATE_REPORT = (
    update(REPORTS)
    .where(REPORTS.c.id == bindparam("report_id"))
    .values({**bound("status", "error", "finished_at", "updated_at"), "file_path": bindparam("file_name")})
)
COUNT_UNFINISHED = (
    select(func.count())
    .select_from(REPORTS)
    .where(
        REPORTS.c.owner_id == bindparam("owner_id"),
        or_(REPORTS.c.status == ReportStatus.QUEUED.value, REPORTS.c.status == ReportStatus.RUNNING.value),
    )
)
