"""Webhook rules: which addresses a webhook may reach, signatures, URL and event checks, backoff."""

from __future__ import annotations

import ipaddress
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import RuleViolation
from domain.webhook_signature import sign, verify_signature
from domain.webhooks import (
    EVENT_TYPES,
    RETRY_CAP,
    RETRY_WINDOW,
    check_addresses,
    is_public_address,
    next_attempt_at,
    retry_delay,
    url_host_port,
    validate_events,
    validate_url,
)

BLOCKED_V4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "192.88.99.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
BLOCKED_V6 = ["::/128", "::1/128", "fe80::/10", "fc00::/7", "ff00::/8", "2001:db8::/32", "fec0::/10", "100::/64"]
BLOCKED = [ipaddress.ip_network(n) for n in BLOCKED_V4 + BLOCKED_V6]
# Public unicast ranges with no special-purpose block inside them.
PUBLIC_V4 = [ipaddress.ip_network(n) for n in ("8.0.0.0/8", "51.0.0.0/8", "93.184.0.0/16", "185.0.0.0/8")]
PUBLIC_V6 = [ipaddress.ip_network(n) for n in ("2a00::/16", "2606:4700::/32", "2c0f::/16")]


def in_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> st.SearchStrategy[str]:
    first = int(network.network_address)
    return st.integers(first, first + network.num_addresses - 1).map(
        lambda n: str(ipaddress.ip_address(n) if network.version == 4 else ipaddress.IPv6Address(n))
    )


blocked_addresses = st.sampled_from(BLOCKED).flatmap(in_network)
public_v4 = st.sampled_from(PUBLIC_V4).flatmap(in_network)
public_addresses = st.one_of(public_v4, st.sampled_from(PUBLIC_V6).flatmap(in_network))
blocked_v4 = st.sampled_from([n for n in BLOCKED if n.version == 4]).flatmap(in_network)


@given(blocked_addresses)
def test_special_purpose_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


@given(public_addresses)
def test_global_unicast_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)


@given(st.one_of(blocked_v4, public_v4))
def test_ipv6_forms_embedding_ipv4_are_judged_by_the_ipv4_address(address: str) -> None:
    v4 = ipaddress.IPv4Address(address)
    expected = is_public_address(v4)
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    six_to_four = ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80))
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    assert is_public_address(mapped) is expected
    assert is_public_address(six_to_four) is expected
    assert is_public_address(nat64) is expected


def test_scoped_ipv6_is_refused() -> None:
    assert not is_public_address("fe80::1%eth0")


def test_every_resolved_address_must_pass() -> None:
    assert check_addresses(["93.184.216.34", "2606:4700::1"], allow_private=False) == ["93.184.216.34", "2606:4700::1"]
    with pytest.raises(RuleViolation) as caught:
        check_addresses(["93.184.216.34", "10.0.0.7"], allow_private=False)
    assert caught.value.field == "url"
    with pytest.raises(RuleViolation):
        check_addresses([], allow_private=True)
    assert check_addresses(["127.0.0.1", "127.0.0.1"], allow_private=True) == ["127.0.0.1"]


secrets_ = st.text(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
times = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


@given(secrets_, bodies, times)
def test_a_signature_verifies(secret: str, body: bytes, t: int) -> None:
    assert verify_signature(secret, sign(secret, t, body), body, now=t)


@given(secrets_, bodies, times, st.binary(min_size=1, max_size=16), st.integers(min_value=0, max_value=2047))
def test_a_tampered_body_fails(secret: str, body: bytes, t: int, junk: bytes, at: int) -> None:
    at = min(at, len(body))
    tampered = body[:at] + junk + body[at:]
    assert not verify_signature(secret, sign(secret, t, body), tampered, now=t)


@given(secrets_, secrets_, bodies, times)
def test_another_secret_fails(secret: str, other: str, body: bytes, t: int) -> None:
    if secret != other:
        assert not verify_signature(other, sign(secret, t, body), body, now=t)


@given(secrets_, bodies, times, st.integers(min_value=-10_000, max_value=10_000))
def test_the_timestamp_must_be_within_tolerance(secret: str, body: bytes, t: int, skew: int) -> None:
    header = sign(secret, t, body)
    assert verify_signature(secret, header, body, now=t + skew, tolerance=300) is (abs(skew) <= 300)
    # the timestamp is signed too: moving it breaks the signature
    forged = header.replace(f"t={t}", f"t={t + 1}")
    assert not verify_signature(secret, forged, body, now=t)


@pytest.mark.parametrize(
    "header", ["", "v1=abc", "t=1700000000", "t=abc,v1=00", "t=1700000000,v1=zz", "t=١٧,v1=00", "garbage"]
)
def test_malformed_headers_fail(header: str) -> None:
    assert not verify_signature("s", header, b"{}", now=1_700_000_000)


def test_any_v1_entry_may_match_and_unknown_entries_are_ignored() -> None:
    good = sign("s", 1_700_000_000, b"{}").split("v1=")[1]
    assert verify_signature("s", f"t=1700000000,v0=x,v1=deadbeef,v1={good}", b"{}", now=1_700_000_000)


def test_urls() -> None:
    assert validate_url("https://example.com/hook?x=1") == "https://example.com/hook?x=1"
    assert url_host_port("https://example.com/h") == ("example.com", 443)
    assert url_host_port("http://[::1]:8080/h") == ("::1", 8080)
    for bad in (
        "ftp://example.com/",
        "example.com/h",
        "https:///h",
        "https://u:p@example.com/",
        "https://u@example.com/",
        "https://example.com:99999/",
        "https://example.com:0/",
        "https://exa mple.com/",
        "https://example.com/\n",
        "https://example.com/" + "a" * 2048,
    ):
        with pytest.raises(RuleViolation) as caught:
            validate_url(bad)
        assert caught.value.field == "url", bad


@given(st.lists(st.sampled_from(EVENT_TYPES), min_size=1))
def test_events_fold_to_the_canonical_order(events: list[str]) -> None:
    chosen = validate_events(events)
    assert set(chosen) == set(events) and list(chosen) == [e for e in EVENT_TYPES if e in events]


@pytest.mark.parametrize("events", [[], ["order.placed", "order.shipped"], ["ORDER.PLACED"]])
def test_bad_events(events: list[str]) -> None:
    with pytest.raises(RuleViolation) as caught:
        validate_events(events)
    assert caught.value.field == "events"


def test_backoff_starts_small_doubles_and_is_capped() -> None:
    delays = [retry_delay(n) for n in range(1, 14)]
    assert delays[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert all(b == min(a * 2, RETRY_CAP) for a, b in itertools.pairwise(delays))
    assert delays[-1] == RETRY_CAP
    assert retry_delay(10_000) == RETRY_CAP


@given(st.integers(min_value=1, max_value=200))
def test_retries_stop_after_the_window(failures: int) -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    # simulate the schedule: each attempt happens when it is due
    now, due = first, first
    for n in range(1, failures + 1):
        now = due
        nxt = next_attempt_at(first, now, n)
        if nxt is None:
            assert now + retry_delay(n) > first + RETRY_WINDOW
            return
        assert nxt <= first + RETRY_WINDOW and nxt - now == retry_delay(n)
        due = nxt
    assert due <= first + RETRY_WINDOW


def test_the_whole_schedule_spans_a_day() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    now, attempts = first, 0
    while (nxt := next_attempt_at(first, now, attempts + 1)) is not None:
        attempts += 1
        now = nxt
    assert first + RETRY_WINDOW - RETRY_CAP <= now <= first + RETRY_WINDOW
    assert 25 <= attempts + 1 <= 40  # attempts made, the last one failing for good
