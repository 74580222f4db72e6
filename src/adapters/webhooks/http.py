"""Resolving webhook hosts and POSTing deliveries to a vetted address (httpx).

The sender connects to the address the application vetted, never to whatever the host name
resolves to by the time the socket opens (DNS rebinding): the request goes to that IP with the
original ``Host`` header, and for https the TLS handshake names (SNI) and verifies the original
host. No redirect is followed, proxies from the environment are ignored, connections are not
kept (two hosts on one address must never share one), and the answer's body is never read.
httpx and its client (a TLS context) are loaded on the first delivery: API processes in the
production shape never send one and do not pay for them at start-up.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from application.ports.webhooks import ConnectFailed, DeliveryFailed

if TYPE_CHECKING:
    import httpx

USER_AGENT = "Marketplace-Webhooks/1"


class DnsResolver:
    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return [str(info[4][0]) for info in infos]


class HttpxWebhookSender:
    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    async def post(self, url: str, address: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> int:
        import httpx

        try:
            target = httpx.URL(url)
            request = self.client.build_request(
                "POST",
                target.copy_with(host=address),
                content=body,
                headers={**headers, "Host": target.netloc.decode("ascii")},
                extensions={"sni_hostname": target.host} if target.scheme == "https" else None,
                timeout=timeout,
            )
        except (httpx.InvalidURL, ValueError) as error:
            raise DeliveryFailed(f"unusable URL: {error}"[:300]) from None
        try:
            async with asyncio.timeout(timeout):  # the whole exchange, not each phase
                response = await self.client.send(request, stream=True)
                await response.aclose()
        except TimeoutError:
            raise DeliveryFailed(f"no answer within {timeout:.0f} s") from None
        except httpx.ConnectError as error:
            raise ConnectFailed(f"cannot connect to {address}: {error}"[:300]) from None
        except (httpx.HTTPError, OSError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}"[:300]) from None
        return response.status_code

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
