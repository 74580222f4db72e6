"""``make faults``: the production shape under a mixed load while its dependencies fail, one at a time.

1. starts its own throw-away Postgres and Redis (``entrypoints.devservices``, on free loopback
   ports, removed at the end): it never touches a server it did not start;
2. ``marketplace migrate`` and ``seed``, then ``marketplace worker`` and ``marketplace serve
   --workers 2`` (granian), each in its own process group;
3. ``--clients`` shoppers (httpx, async, 127.0.0.1 only) browse, search, open products, favorite,
   add to cart and check out, retrying a checkout with the same ``Idempotency-Key`` after a 503 or a
   network error;
4. injects in turn (``--faults``): Redis down, a Postgres restart, Postgres down, ``kill -9`` of an
   API worker and of the job worker (restarted after the fault), and ``LOCK TABLE products IN
   ACCESS EXCLUSIVE MODE`` held from a connection of its own; each fault lasts ``--fault-seconds``
   (or its own default) and is followed by ``--after`` seconds of recovery;
5. prints one table: answers by class (2xx / 4xx / 5xx / network errors) that came during and
   after each fault (by when the answer came), the time to the first 2xx of a request begun after
   it ended, the slowest answer, and what ``/ready`` said
   during it; then the integrity checks: one order per idempotency key, no confirmed order
   missing, stock = stock before − units ordered for every product, the outbox drained.

Exit status 1 when any answer is a 500, any request outlived the request deadline by more than a
second, or an integrity check failed; 2 when the set-up itself failed. ``--short`` is a version
for the test suite and CI: four faults of a few seconds each, in well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx

from bench.load import BIN, PASSWORD, SORTS, WORDS, Processes, cart_line, log, prepare_hot_products, snapshot_stock

FAULTS = ("redis-down", "pg-restart", "pg-down", "api-kill", "worker-kill", "table-lock")
DEFAULT_SECONDS = {
    "redis-down": 30,
    "pg-restart": 0,
    "pg-down": 20,
    "api-kill": 10,
    "worker-kill": 15,
    "table-lock": 15,
}
SHORT_FAULTS = ("table-lock", "redis-down", "pg-restart", "api-kill")


# --------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class Outcome:
    action: str
    started: float
    ended: float
    status: int | None  # None: a network error (refused, reset, client timeout)

    @property
    def kind(self) -> str:
        if self.status is None:
            return "net"
        return f"{self.status // 100}xx"


@dataclass
class Window:
    name: str
    started: float
    healed: float = 0.0
    ended: float = 0.0
    ready: Counter[str] = field(default_factory=Counter)


@dataclass
class Books:
    outcomes: list[Outcome] = field(default_factory=list)
    keys: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # key -> order ids (201)
    confirmed: set[str] = field(default_factory=set)
    buyers: set[str] = field(default_factory=set)


# ----------------------------------------------------------------------------------------- load


class Shopper:
    def __init__(self, index: int, client: httpx.AsyncClient, books: Books, pool: list[str], hot: list[str]) -> None:
        self.index, self.client, self.books, self.pool, self.hot = index, client, books, pool, hot
        self.rng = random.Random(7000 + index)
        self.headers: dict[str, str] = {}
        self.cart_filled = False
        self.checkouts = 0

    async def call(self, action: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response: httpx.Response | None = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError:
            response = None
        self.books.outcomes.append(
            Outcome(action, started, time.monotonic(), response.status_code if response is not None else None)
        )
        return response

    async def sign_up(self) -> None:
        name = f"fault{self.index:03d}_{uuid.uuid4().hex[:6]}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        for _ in range(20):  # start-up: the first requests may race the workers' warm-up
            r = await self.call("register", "POST", "/api/auth/register", json=body)
            if r is not None and r.status_code in (201, 409):
                break
            await asyncio.sleep(0.5)
        r = await self.call("login", "POST", "/api/auth/login", json={"email": name, "password": PASSWORD})
        if r is None or r.status_code != 200:
            raise RuntimeError(f"shopper {self.index} could not log in")
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        me = await self.call("me", "GET", "/api/users/me", headers=self.headers)
        if me is None or me.status_code != 200:
            raise RuntimeError(f"shopper {self.index} could not read its profile")
        self.books.buyers.add(me.json()["id"])

    async def run(self, until: Callable[[], bool]) -> None:
        while not until():
            roll = self.rng.random()
            if roll < 0.22:
                await self.call("browse", "GET", "/api/products", params={"sort": self.rng.choice(SORTS), "limit": 20})
            elif roll < 0.36:
                await self.call("search", "GET", "/api/products", params={"q": self.rng.choice(WORDS), "limit": 10})
            elif roll < 0.56:
                await self.call("detail", "GET", f"/api/products/{self.rng.choice(self.pool)}")
            elif roll < 0.64:
                product = self.rng.choice(self.pool)
                if self.rng.random() < 0.7:
                    await self.call("favorite", "PUT", f"/api/favorites/{product}", headers=self.headers)
                else:
                    await self.call("favorites", "GET", "/api/favorites", headers=self.headers)
            elif roll < 0.84 or not self.cart_filled:
                await self.add_to_cart()
            else:
                await self.checkout()
            await asyncio.sleep(self.rng.uniform(0.0, 0.05))

    async def add_to_cart(self) -> None:
        body = cart_line(self.rng, self.hot, self.pool, hot_share=0.2)
        r = await self.call("add_to_cart", "POST", "/api/cart/items", json=body, headers=self.headers)
        if r is not None and r.status_code in (200, 201):
            self.cart_filled = True

    async def checkout(self) -> None:
        """One checkout, retried with the same key after a 503 or a network error (a client that did
        not hear the answer cannot tell whether the order was placed)."""
        self.checkouts += 1
        key = f"fault-{self.index}-{self.checkouts}"
        headers = {**self.headers, "Idempotency-Key": key}
        for attempt in range(30):
            r = await self.call(
                "checkout" if attempt == 0 else "checkout_retry", "POST", "/api/cart/checkout", headers=headers
            )
            if r is not None and r.status_code == 201:
                order = r.json()["id"]
                self.books.keys[key].add(order)
                self.books.confirmed.add(order)
                self.cart_filled = False
                return
            if r is not None and r.status_code != 503:
                if r.status_code == 409:  # a hot product ran out
                    await self.call("clear_cart", "DELETE", "/api/cart", headers=self.headers)
                self.cart_filled = r.status_code not in (409, 422)
                return
            retry_after = float(r.headers.get("retry-after", "1")) if r is not None else 0.5
            await asyncio.sleep(min(retry_after, 1.0))


# --------------------------------------------------------------------------------------- faults


class Stack:
    """The servers this run started and the processes it runs on them."""

    def __init__(self, postgres: Any, redis: Any, processes: Processes, env: dict[str, str], port: int) -> None:
        self.postgres, self.redis, self.processes, self.env, self.port = postgres, redis, processes, env, port
        self.database_url = env["DATABASE_URL"]
        self.worker: Any = None
        self.server: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_worker(self) -> None:
        argv = [str(BIN / "marketplace"), "worker", "--alive-file", str(self.processes.logs / "alive")]
        self.worker = self.processes.start("worker", argv, self.env)

    def start_server(self, *, prepare: bool = False) -> None:
        """``prepare``: the server migrates and loads the demo data itself (one process start fewer)."""
        argv = [
            str(BIN / "marketplace"),
            "serve",
            *(["--migrate", "--seed-if-empty"] if prepare else ["--no-migrate", "--no-seed"]),
            "--workers",
            "2",
            "--port",
            str(self.port),
        ]
        self.server = self.processes.start("server", argv, self.env)

    def api_workers(self) -> list[int]:
        """Pids of the granian worker processes (children of the server process, serving requests)."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.server.pid:
                    pid = int(stat.parent.name)
                    cmdline = (stat.parent / "cmdline").read_bytes()
                    if b"resource_tracker" not in cmdline:
                        children.append(pid)
        return sorted(children)


async def hold_table_lock(url: str, seconds: float) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
            await asyncio.sleep(seconds)
    finally:
        await conn.close()


async def inject(stack: Stack, fault: str, seconds: float) -> None:
    """Cause ``fault`` and heal it; returns when it is over."""
    if fault == "redis-down":
        await asyncio.to_thread(stack.redis.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(stack.redis.start)
    elif fault == "pg-restart" or fault == "pg-down":
        await asyncio.to_thread(stack.postgres.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(stack.postgres.start)
    elif fault == "api-kill":
        workers = stack.api_workers()
        if not workers:
            raise RuntimeError("no API worker process found")
        os.kill(workers[0], signal.SIGKILL)  # granian respawns it
        await asyncio.sleep(seconds)
    elif fault == "worker-kill":
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.worker.pid, signal.SIGKILL)
        stack.worker.wait()
        await asyncio.sleep(seconds)
        stack.start_worker()
    elif fault == "table-lock":
        await hold_table_lock(stack.database_url, seconds)
    else:
        raise ValueError(f"unknown fault {fault!r}")


async def watch_ready(base_url: str, window: Window, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=3) as client:
        while not stop.is_set():
            try:
                r = await client.get("/ready")
                if r.status_code == 200:
                    answer = "200"
                else:
                    fields = sorted({e["field"] for e in r.json().get("errors") or []})
                    answer = f"{r.status_code} {'+'.join(fields)}".strip()
            except (httpx.HTTPError, ValueError):
                answer = "no answer"
            window.ready[answer] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


# ----------------------------------------------------------------------------------------- checks


async def integrity(
    url: str, books: Books, stock_before: dict[str, int], drain_timeout: float
) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []
    doubled = {key: ids for key, ids in books.keys.items() if len(ids) > 1}
    conn = await asyncpg.connect(url)
    try:
        buyers = [uuid.UUID(b) for b in books.buyers]
        rows = await conn.fetch(
            "SELECT id, buyer_id, idempotency_key FROM orders WHERE buyer_id = ANY($1::uuid[])", buyers
        )
        per_key = Counter((r["buyer_id"], r["idempotency_key"]) for r in rows if r["idempotency_key"])
        stored_doubles = sum(1 for n in per_key.values() if n > 1)
        checks.append(
            (
                "one order per idempotency key",
                not doubled and not stored_doubles,
                f"{len(books.keys)} keys answered 201, {len(doubled)} with two orders, "
                f"{stored_doubles} doubled in the database",
            )
        )
        stored = {str(r["id"]) for r in rows}
        missing = books.confirmed - stored
        checks.append(
            (
                "no confirmed order missing",
                not missing,
                f"{len(books.confirmed)} confirmed, {len(missing)} missing, "
                f"{len(stored - books.confirmed)} placed but never confirmed to the client",
            )
        )
        taken = {
            str(r["product_id"]): int(r["units"])
            for r in await conn.fetch(
                "SELECT l.product_id, SUM(l.quantity) AS units FROM order_lines l JOIN orders o ON o.id = l.order_id "
                "WHERE o.buyer_id = ANY($1::uuid[]) AND o.status = 'placed' GROUP BY l.product_id",
                buyers,
            )
        }
        after = {str(r["id"]): int(r["stock"]) for r in await conn.fetch("SELECT id, stock FROM products")}
        unbalanced = [pid for pid, before in stock_before.items() if before - taken.get(pid, 0) != after.get(pid)]
        checks.append(
            (
                "stock = stock before - units ordered",
                not unbalanced and all(s >= 0 for s in after.values()),
                f"{len(stock_before)} products, {sum(taken.values())} units ordered, {len(unbalanced)} unbalanced",
            )
        )
        started, pending, total = time.monotonic(), -1, 0
        while True:
            pending = int(await conn.fetchval("SELECT count(*) FROM outbox WHERE processed_at IS NULL"))
            if pending == 0 or time.monotonic() - started > drain_timeout:
                break
            await asyncio.sleep(0.5)
        total = int(await conn.fetchval("SELECT count(*) FROM outbox"))
        failed = int(await conn.fetchval("SELECT count(*) FROM outbox WHERE attempts > 0"))
        checks.append(
            (
                "outbox drained",
                pending == 0,
                f"{total} jobs, {pending} pending after {time.monotonic() - started:.0f} s, "
                f"{failed} needed more than one attempt",
            )
        )
    finally:
        await conn.close()
    return checks


# ---------------------------------------------------------------------------------------- report


def in_range(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    """Requests whose answer (or error) came in [start, end): an answer is the fault's when it came
    while the fault lasted, whenever the request began."""
    return [o for o in outcomes if start <= o.ended < end]


def classes(outcomes: list[Outcome]) -> str:
    counts = Counter(o.kind for o in outcomes)
    return "/".join(str(counts.get(k, 0)) for k in ("2xx", "4xx", "5xx", "net"))


def report(windows: list[Window], books: Books, deadline: float) -> list[str]:
    """Print the table; returns the violations it found (500s, answers past the deadline)."""
    header = (
        f"{'fault':<12}{'secs':>6}  {'during 2xx/4xx/5xx/net':<24}{'after 2xx/4xx/5xx/net':<23}"
        f"{'first 2xx':>10}{'slowest':>9}  /ready during the fault"
    )
    print("\n" + header)
    print("-" * len(header))
    for w in windows:
        during, after = in_range(books.outcomes, w.started, w.healed), in_range(books.outcomes, w.healed, w.ended)
        first = min((o.ended for o in books.outcomes if o.started >= w.healed and o.kind == "2xx"), default=None)
        slowest = max((o.ended - o.started for o in during + after), default=0.0)
        ready = ", ".join(f"{answer} x{n}" for answer, n in w.ready.most_common(3)) or "-"
        first_text = f"{first - w.healed:.2f}s" if first is not None else "never"
        print(
            f"{w.name:<12}{w.healed - w.started:>6.1f}  {classes(during):<24}{classes(after):<23}"
            f"{first_text:>10}{slowest:>8.2f}s  {ready}"
        )
    total = Counter(o.kind for o in books.outcomes)
    statuses = Counter(o.status for o in books.outcomes if o.status is not None and o.status >= 500)
    print(f"\nall requests: {len(books.outcomes)} ({dict(sorted(total.items()))}); 5xx by status: {dict(statuses)}")
    violations = []
    if statuses.get(500):
        violations.append(f"{statuses[500]} answers were 500")
    late = [o for o in books.outcomes if o.ended - o.started > deadline + 1]
    if late:
        worst = max(late, key=lambda o: o.ended - o.started)
        violations.append(
            f"{len(late)} requests outlived the deadline ({deadline:g} s) by more than a second, the worst "
            f"{worst.action} {worst.ended - worst.started:.1f} s"
        )
    return violations


# ------------------------------------------------------------------------------------------ main


async def wait_ready(base_url: str, stack: Stack, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            for process in (stack.worker, stack.server):
                if process.poll() is not None:
                    raise RuntimeError(f"a process exited during start-up ({process.returncode})")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.25)
    raise RuntimeError("the API did not become ready")


async def run(stack: Stack, args: argparse.Namespace, faults: list[str]) -> tuple[list[Window], Books, dict[str, int]]:
    await wait_ready(stack.base_url, stack)
    log("ready; signing up the shoppers")
    pool, hot = await prepare_hot_products(stack.database_url, random.Random(11), size=300, hot_count=8, hot_stock=5)
    stock_before = await snapshot_stock(stack.database_url)
    books = Books()
    limits = httpx.Limits(max_connections=args.clients * 2, max_keepalive_connections=args.clients * 2)
    timeout = httpx.Timeout(args.deadline + 5, connect=2)
    windows: list[Window] = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=timeout, limits=limits) as client:
        shoppers = [Shopper(i, client, books, pool, hot) for i in range(args.clients)]
        await asyncio.gather(*(s.sign_up() for s in shoppers))
        done = asyncio.Event()
        load = [asyncio.create_task(s.run(done.is_set)) for s in shoppers]
        log(f"{args.clients} shoppers on {stack.base_url}; warming up {args.warmup:g} s")
        await asyncio.sleep(args.warmup)
        for fault in faults:
            seconds = args.fault_seconds if args.fault_seconds is not None else DEFAULT_SECONDS[fault]
            window = Window(fault, started=time.monotonic())
            stop = asyncio.Event()
            watcher = asyncio.create_task(watch_ready(stack.base_url, window, stop))
            log(f"fault {fault} for {seconds:g} s")
            await inject(stack, fault, seconds)
            window.healed = time.monotonic()
            stop.set()
            await watcher
            await asyncio.sleep(args.after)
            window.ended = time.monotonic()
            windows.append(window)
        done.set()
        await asyncio.gather(*load)
    return windows, books, stock_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"comma-separated, in order, of: {', '.join(FAULTS)}"
    )
    parser.add_argument("--fault-seconds", type=float, default=None, help="one duration for every fault")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of recovery watched after each fault")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--deadline", type=float, default=5.0, help="REQUEST_DEADLINE_SECONDS of the API")
    parser.add_argument(
        "--seed-size", default="small", choices=["demo", "small"], help="demo: the API's own demo data (quicker)"
    )
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for the outbox to drain")
    parser.add_argument("--short", action="store_true", help="a quick run: four faults of 3 s, 2 s deadline")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    if args.short:
        args.faults = args.faults if args.faults != ",".join(FAULTS) else ",".join(SHORT_FAULTS)
        args.fault_seconds = 3.0 if args.fault_seconds is None else args.fault_seconds
        args.after, args.warmup, args.deadline = 3.0, 2.0, 2.0
        # The drain wait outlasts the relay's 2-minute re-send of a job the queue gave up on during an
        # outage (a short run usually drains in seconds; 45 s let such a job fail the books in CI).
        args.seed_size, args.clients, args.drain_timeout = "demo", min(args.clients, 8), 150.0
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")

    from entrypoints.devservices import dev_services

    var_dir = Path(tempfile.mkdtemp(prefix="mkt-faults-"))
    processes = Processes(var_dir)
    violations: list[str] = []
    checks: list[tuple[str, bool, str]] = []
    return_code = 2
    try:
        with dev_services(var_dir / "services") as (postgres, redis):
            asyncio.run(_create_database(postgres.url))
            database_url = urlunparse(urlparse(postgres.url)._replace(path="/marketplace"))
            from bench.load import free_port

            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "GRANIAN_"))},
                "APP_ENV": "production",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis.url,
                "JWT_SECRET": secrets.token_urlsafe(48),
                "VAR_DIR": str(var_dir / "var"),
                "LOG_LEVEL": "WARNING",
                "LOG_JSON": "false",
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "REQUEST_DEADLINE_SECONDS": str(args.deadline),
                "AUTH_RATE_LIMIT_PER_MINUTE": "100000",
                "ARGON2_TIME_COST": "1",
                "ARGON2_MEMORY_COST_KIB": "8192",
                "DB_POOL_SIZE": "5",
            }
            log(f"Postgres on port {postgres.port}, Redis on port {redis.port}, logs in {var_dir}")
            marketplace = str(BIN / "marketplace")
            stack = Stack(postgres, redis, processes, env, port)
            if args.seed_size != "demo":
                processes.run("migrate", [marketplace, "migrate"], env, timeout=120)
                log(f"migrated; seeding ({args.seed_size})")
                processes.run("seed", [marketplace, "seed", "--size", args.seed_size], env, timeout=600)
            log("starting the job worker and the API (granian, 2 workers)")
            stack.start_server(prepare=args.seed_size == "demo")  # demo: it migrates and seeds itself
            stack.start_worker()
            try:
                windows, books, stock_before = asyncio.run(run(stack, args, faults))
                log("load stopped; checking the books")
                checks = asyncio.run(integrity(database_url, books, stock_before, args.drain_timeout))
            finally:
                processes.stop_all(grace=5)  # throw-away processes: no need to wait long
            violations = report(windows, books, args.deadline)
            return_code = 0
    except Exception as error:  # the set-up failed: say so, clean up, exit 2
        log(f"set-up failed: {type(error).__name__}: {error}")
    finally:
        processes.stop_all(grace=5)
    server_log = var_dir / "server.log"
    if server_log.exists():
        unhandled = server_log.read_text(errors="replace").count("unhandled error")
        if unhandled:
            violations.append(f"{unhandled} unhandled errors in the server log")
    if checks:
        print("\nintegrity")
        for name, ok, detail in checks:
            print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
            if not ok:
                violations.append(name)
    if violations and return_code == 0:
        return_code = 1
    for violation in violations:
        print(f"VIOLATION: {violation}")
    if return_code == 0:
        print("\nOK: no 500, nothing past the deadline, the books balance")
    if return_code == 0 and not args.keep_logs:
        shutil.rmtree(var_dir, ignore_errors=True)
    else:
        log(f"logs kept in {var_dir}")
    return return_code


async def _create_database(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute('CREATE DATABASE "marketplace"')
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
