"""Reports a user asks for and a background job builds: kinds, periods and the status life cycle."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from domain.errors import Conflict, RuleViolation

MAX_SPAN_DAYS = 366
ERROR_MAX_LENGTH = 1000


class ReportKind(enum.StrEnum):
    SALES = "sales"


class ReportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FINISHED = frozenset({ReportStatus.DONE, ReportStatus.FAILED})


def parse_kind(value: str) -> ReportKind:
    try:
        return ReportKind(value)
    except ValueError:
        kinds = ", ".join(kind.value for kind in ReportKind)
        raise RuleViolation(f"Unknown report kind; expected one of: {kinds}.", field="kind") from None


def validate_period(period_from: date, period_to: date) -> None:
    """``from`` ≤ ``to`` (both inclusive), at most a year apart, so one job stays bounded."""
    if period_from > period_to:
        raise RuleViolation("'from' must be on or before 'to'.", field="to")
    if (period_to - period_from).days > MAX_SPAN_DAYS:
        raise RuleViolation(f"A report covers at most {MAX_SPAN_DAYS} days.", field="to")


@dataclass(slots=True)
class Report:
    id: uuid.UUID
    owner_id: uuid.UUID
    kind: ReportKind
    status: ReportStatus
    period_from: date
    period_to: date
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    file_name: str | None = None
    error: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def start(self, now: datetime) -> None:
        """Queued (or running again after a crashed attempt) → running."""
        if self.is_finished:
            raise Conflict("The report is already finished.", field="status")
        self.status = ReportStatus.RUNNING
        self.updated_at = now

    def finish(self, now: datetime, file_name: str) -> None:
        self.status = ReportStatus.DONE
        self.file_name = file_name
        self.error = None
        self.finished_at = now
        self.updated_at = now

    def fail(self, now: datetime, reason: str) -> None:
        self.status = ReportStatus.FAILED
        self.error = reason[:ERROR_MAX_LENGTH]
        self.finished_at = now
        self.updated_at = now
