"""Count the SQL statements and Redis commands a server sends, per request, with two tiny TCP proxies.

Why a proxy: ``pg_stat_statements`` is installed but not in ``shared_preload_libraries``, and
loading it means restarting the Postgres that other engineers' test runs share; ``log_statement``
would flood that shared server log. A proxy in front of Postgres (and one in front of Redis) is
exact, sees every round trip, and touches nothing outside this process. It is only used in the
counting pass (one request at a time), never in the timed runs.

Postgres: the proxy refuses TLS (answers ``N`` to SSLRequest, so the client continues in plain
text), then reads the client's messages: ``Q`` (simple query: asyncpg's BEGIN/COMMIT), ``P``
(parse: remembers the statement text by name), ``B``/``E`` (bind/execute: one statement run) and
``S``/``H`` (sync/flush: the client waits for the server, i.e. a round trip).
Redis: RESP arrays (and inline commands) are parsed for their command names.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
TRANSACTION_WORDS = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START")
CONNECTION_COMMANDS = {"SELECT", "HELLO", "CLIENT", "PING", "AUTH", "INFO"}


@dataclass
class Tally:
    """What crossed the wire since the last ``reset``."""

    statements: list[str] = field(default_factory=list)
    round_trips: int = 0
    redis_commands: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.statements.clear()
        self.round_trips = 0
        self.redis_commands.clear()

    def summary(self) -> dict[str, object]:
        kinds = [classify(sql) for sql in self.statements]
        data = [sql for sql, kind in zip(self.statements, kinds, strict=True) if kind == "sql"]
        redis_data = [name for name in self.redis_commands if name not in CONNECTION_COMMANDS]
        return {
            "sql": len(data),
            "transaction": kinds.count("transaction"),
            "ping": kinds.count("ping"),
            "meta": kinds.count("meta"),
            "round_trips": self.round_trips,
            "redis": len(redis_data),
            "statements": [" ".join(sql.split())[:160] for sql in data],
            "redis_commands": redis_data,
        }


def classify(sql: str) -> str:
    """transaction control, pool pings, driver introspection, or a data statement."""
    text = sql.strip().rstrip(";").strip()
    head = text.split(None, 1)[0].upper() if text else ""
    if not text or text.upper() in {"SELECT 1", "SELECT 1 AS ONE"}:
        return "ping"
    if head in TRANSACTION_WORDS:
        return "transaction"
    if "pg_catalog" in text or head in {"SHOW", "SET", "RESET", "DISCARD"} or "pg_advisory" in text:
        return "meta"
    return "sql"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _cstring(payload: bytes, start: int) -> tuple[str, int]:
    end = payload.index(b"\x00", start)
    return payload[start:end].decode("utf-8", "replace"), end + 1


async def _postgres_client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: tuple[str, int], tally: Tally
) -> None:
    """Relay one client connection to Postgres, noting every statement the client runs."""
    up_reader, up_writer = await asyncio.open_connection(*upstream)
    try:
        while True:  # startup phase: length-prefixed messages without a type byte
            length = struct.unpack("!I", await reader.readexactly(4))[0]
            body = await reader.readexactly(length - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code in (SSL_REQUEST, GSS_REQUEST):
                writer.write(b"N")
                await writer.drain()
                continue
            up_writer.write(struct.pack("!I", length) + body)
            await up_writer.drain()
            break
        back = asyncio.ensure_future(_pump(up_reader, writer))
        prepared: dict[str, str] = {}
        bound = ""
        while True:
            header = await reader.readexactly(5)
            kind, length = header[:1], struct.unpack("!I", header[1:])[0]
            payload = await reader.readexactly(length - 4)
            up_writer.write(header + payload)
            await up_writer.drain()
            if kind == b"Q":
                tally.statements.append(_cstring(payload, 0)[0])
                tally.round_trips += 1
            elif kind == b"P":
                name, offset = _cstring(payload, 0)
                prepared[name] = _cstring(payload, offset)[0]
            elif kind == b"B":
                _portal, offset = _cstring(payload, 0)
                bound = prepared.get(_cstring(payload, offset)[0], "?")
            elif kind == b"E":
                tally.statements.append(bound)
            elif kind in (b"S", b"H"):
                tally.round_trips += 1
            elif kind == b"X":
                break
        await back
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        up_writer.close()
        writer.close()


def _resp_commands(buffer: bytearray) -> list[str]:
    """Pop every complete command off ``buffer`` and return their names (upper case)."""
    names: list[str] = []
    while buffer:
        end = buffer.find(b"\r\n")
        if end < 0:
            break
        if buffer[:1] != b"*":  # inline command
            line = bytes(buffer[:end]).split()
            del buffer[: end + 2]
            if line:
                names.append(line[0].decode("latin-1").upper())
            continue
        count, pos, args = int(buffer[1:end]), end + 2, []
        complete = True
        for _ in range(count):
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                complete = False
                break
            size = int(buffer[pos + 1 : line_end])
            start = line_end + 2
            if len(buffer) < start + size + 2:
                complete = False
                break
            args.append(bytes(buffer[start : start + size]))
            pos = start + size + 2
        if not complete:
            break
        del buffer[:pos]
        if args:
            names.append(args[0].decode("latin-1").upper())
    return names


async def _redis_client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: tuple[str, int], tally: Tally
) -> None:
    up_reader, up_writer = await asyncio.open_connection(*upstream)
    back = asyncio.ensure_future(_pump(up_reader, writer))
    buffer = bytearray()
    try:
        while data := await reader.read(65536):
            up_writer.write(data)
            await up_writer.drain()
            buffer.extend(data)
            tally.redis_commands.extend(_resp_commands(buffer))
    except ConnectionError:
        pass
    finally:
        up_writer.close()
        await back


class WireCounter:
    """Both proxies on one background event loop; ``postgres_port``/``redis_port`` to point a server at."""

    def __init__(self, postgres: tuple[str, int], redis: tuple[str, int]) -> None:
        self.tally = Tally()
        self._upstreams = {"postgres": postgres, "redis": redis}
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="wirecount", daemon=True)
        self._servers: list[asyncio.Server] = []

    def __enter__(self) -> WireCounter:
        self._thread.start()
        for name, handler in (("postgres", _postgres_client), ("redis", _redis_client)):
            self.ports[name] = asyncio.run_coroutine_threadsafe(self._listen(name, handler), self._loop).result(10)
        return self

    async def _listen(self, name: str, handler: Callable[..., object]) -> int:
        upstream = self._upstreams[name]

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await handler(reader, writer, upstream, self.tally)  # type: ignore[misc]

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def __exit__(self, *_exc: object) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
