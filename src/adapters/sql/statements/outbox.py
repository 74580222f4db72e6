"""The transactional outbox: jobs written with the change that needs them, then relayed and run."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update

from adapters.sql.statements.common import any_of, columns
from adapters.sql.tables import OUTBOX

OUTBOX_COLUMNS = columns(OUTBOX, "id", "kind", "payload", "created_at", "dispatched_at", "processed_at", "attempts")
INSERT_JOB = insert(OUTBOX)
JOB_BY_ID = select(*OUTBOX_COLUMNS).where(OUTBOX.c.id == bindparam("outbox_id"))
MARK_PROCESSED = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("outbox_id"), OUTBOX.c.processed_at.is_(None))
    .values(processed_at=bindparam("now"), payload=bindparam("payload"), last_error=None, updated_at=bindparam("now"))
)
RECORD_FAILURE = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("outbox_id"))
    .values(
        attempts=OUTBOX.c.attempts + bindparam("failures"), last_error=bindparam("error"), updated_at=bindparam("now")
    )
)
DUE_FOR_RELAY = (
    select(*OUTBOX_COLUMNS)
    .where(
        OUTBOX.c.processed_at.is_(None),
        OUTBOX.c.attempts < bindparam("max_attempts"),
        or_(
            and_(OUTBOX.c.dispatched_at.is_(None), OUTBOX.c.created_at < bindparam("created_before")),
            OUTBOX.c.dispatched_at < bindparam("dispatched_before"),
        ),
    )
    .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
    .limit(bindparam("limit"))
)
# Guarded: of several relays racing for a row, exactly one changes it (and gets its id back).
CLAIM = (
    update(OUTBOX)
    .where(
        any_of(OUTBOX.c.id, "ids", by_key=True),
        OUTBOX.c.processed_at.is_(None),
        or_(OUTBOX.c.dispatched_at.is_(None), OUTBOX.c.dispatched_at < bindparam("dispatched_before")),
    )
    .values(dispatched_at=bindparam("now"), updated_at=bindparam("now"))
    .returning(OUTBOX.c.id)
)
UNCLAIM = update(OUTBOX).where(any_of(OUTBOX.c.id, "ids", by_key=True)).values(dispatched_at=None)
OLDEST_PENDING = select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.processed_at.is_(None))  # ix_outbox_pending
_OUTCOME = case(
    (OUTBOX.c.processed_at.is_not(None), "done"),
    (OUTBOX.c.attempts > 0, "failing"),
    else_="pending",
).label("outcome")
OUTCOME_COUNTS = select(OUTBOX.c.kind, _OUTCOME, func.count().label("jobs")).group_by(OUTBOX.c.kind, _OUTCOME)
