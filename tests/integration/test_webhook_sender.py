"""The httpx sender against real sockets on 127.0.0.1: vetted address, no redirects, hard timeout."""

from __future__ import annotations

import asyncio
import time

import pytest

from adapters.webhooks.http import DnsResolver, HttpxWebhookSender
from application.ports.webhooks import ConnectFailed, DeliveryFailed


async def _server(answer: bytes | None) -> tuple[asyncio.Server, int, list[bytes]]:
    """A raw HTTP server: records each request, answers ``answer`` (or never answers)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
        )
        seen.append(head + await reader.readexactly(length))
        if answer is None:
            await asyncio.sleep(30)
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


async def test_connects_to_the_vetted_address_with_the_original_host() -> None:
    server, port, seen = await _server(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    sender = HttpxWebhookSender()
    try:
        # the name does not resolve anywhere: only the given address can have been used
        status = await sender.post(
            f"http://hooks.invalid:{port}/in?x=1", "127.0.0.1", b'{"a":1}', {"X-Test": "1"}, timeout=5
        )
    finally:
        await sender.close()
        server.close()
    assert status == 204
    [request] = seen
    assert request.startswith(b"POST /in?x=1 HTTP/1.1\r\n")
    assert f"host: hooks.invalid:{port}".encode() in request.lower() and request.endswith(b'{"a":1}')


async def test_a_redirect_is_answered_not_followed() -> None:
    server, port, seen = await _server(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
    sender = HttpxWebhookSender()
    try:
        assert await sender.post(f"http://127.0.0.1:{port}/in", "127.0.0.1", b"{}", {}, timeout=5) == 307
    finally:
        await sender.close()
        server.close()
    assert len(seen) == 1


async def test_a_silent_receiver_times_out_and_a_closed_port_fails() -> None:
    server, port, _ = await _server(None)
    sender = HttpxWebhookSender()
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryFailed, match="no answer"):
            await sender.post(f"http://127.0.0.1:{port}/in", "127.0.0.1", b"{}", {}, timeout=0.5)
        assert time.monotonic() - started < 2
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectFailed):  # refused: the caller may try the host's next address
            await sender.post(f"http://127.0.0.1:{port}/in", "127.0.0.1", b"{}", {}, timeout=2)
    finally:
        await sender.close()


async def test_the_resolver_returns_every_address() -> None:
    assert await DnsResolver().resolve("127.0.0.1", 80) == ["127.0.0.1"]
    assert "127.0.0.1" in await DnsResolver().resolve("localhost", 80)
    with pytest.raises(OSError):
        await DnsResolver().resolve("hooks.invalid", 80)
