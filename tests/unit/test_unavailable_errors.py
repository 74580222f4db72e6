"""Which database errors mean "the database is not there right now" (Unavailable, a 503), and which
are bugs (500)."""

from __future__ import annotations

import asyncpg
import pytest

from adapters.sql.errors import unavailable_from
from application.ports.errors import Unavailable


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (asyncpg.exceptions.InternalClientError("cannot switch to state 12"), True),
        (ConnectionRefusedError(), True),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
        (asyncpg.exceptions.DataError("invalid input for query argument $1"), False),
        (ValueError("a bug"), False),
    ],
)
def test_outage_type_errors_are_unavailable_and_bugs_are_not(error: BaseException, unavailable: bool) -> None:
    assert isinstance(unavailable_from(error), Unavailable) is unavailable
    wrapped = RuntimeError("while serving")
    wrapped.__cause__ = error
    assert isinstance(unavailable_from(wrapped), Unavailable) is unavailable


def test_an_error_already_unavailable_is_not_translated_again() -> None:
    assert unavailable_from(Unavailable("database", "connection lost")) is None
