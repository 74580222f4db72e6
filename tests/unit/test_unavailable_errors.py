"""Which errors mean "a backing service is not there right now" (503), and which are bugs (500)."""

from __future__ import annotations

import asyncpg
import pytest

from entrypoints.http.problems import is_unavailable


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
def test_outage_type_errors_are_503_and_bugs_are_not(error: BaseException, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable
    wrapped = RuntimeError("while serving")
    wrapped.__cause__ = error
    assert is_unavailable(wrapped) is unavailable
