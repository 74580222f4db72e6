"""The circuit breaker: closed, open for a doubling backoff, half-open once it has passed."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.circuit import CircuitBreaker, OutageLog


def test_opens_on_failure_half_opens_after_backoff_and_closes_on_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker(min_backoff=1.0, max_backoff=4.0, clock=lambda: now[0])
    assert breaker.state == "closed" and breaker.allows_call()
    assert breaker.failed() is True  # opened: the caller warns once
    assert breaker.state == "open" and not breaker.allows_call()
    now[0] = 1.0
    assert breaker.state == "half-open" and breaker.allows_call()
    assert breaker.failed() is False  # already open: no second warning
    now[0] = 2.9
    assert not breaker.allows_call()  # the backoff doubled to 2 s
    now[0] = 3.0
    assert breaker.succeeded() is True and breaker.state == "closed"
    assert breaker.succeeded() is False  # a success while closed recovers nothing


@given(st.floats(0.01, 10), st.floats(1, 8), st.integers(1, 30))
def test_each_failed_retry_doubles_the_wait_up_to_the_cap(min_backoff: float, ratio: float, failures: int) -> None:
    max_backoff = min_backoff * ratio
    now = [0.0]
    breaker = CircuitBreaker(min_backoff=min_backoff, max_backoff=max_backoff, clock=lambda: now[0])
    for n in range(failures):
        assert breaker.allows_call()
        breaker.failed()
        expected = min(min_backoff * 2**n, max_backoff)
        assert breaker.backoff == expected
        now[0] += expected * 0.999
        assert not breaker.allows_call()
        now[0] += expected * 0.001 + 1e-9
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.backoff == min_backoff


def test_an_outage_log_gets_one_warning_when_the_circuit_opens_and_one_line_when_it_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tests.circuit")
    now = [0.0]
    outages = OutageLog(logging.getLogger("tests.circuit"), "store", "using a fallback")
    breaker = CircuitBreaker(min_backoff=1.0, max_backoff=4.0, clock=lambda: now[0], outages=outages)
    breaker.failed(ConnectionError("refused"))
    now[0] = 1.0
    breaker.failed(ConnectionError("refused again"))  # already open: nothing logged
    breaker.succeeded()
    breaker.succeeded()  # already closed: nothing logged
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "store unavailable (ConnectionError: refused); using a fallback until Redis answers again"),
        (logging.INFO, "store available again"),
    ]
