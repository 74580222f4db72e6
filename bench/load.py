"""``make load``: the production shape under a bounded mixed workload, with nothing lost.

1. creates a throw-away Postgres database (dropped at the end) and picks a spare Redis db index
   with a unique key prefix and queue name (its keys are deleted at the end);
2. ``marketplace migrate``, ``marketplace seed --size small``, then starts ``marketplace worker``
   and ``marketplace serve --no-migrate --workers 2`` on a free loopback port, each in its own
   process group (always stopped at the end, and nothing else is);
3. from this process, ``--clients`` concurrent shoppers (httpx, async) each run ``--iterations``
   steps of a seeded mix: browse lists (following cursors), search, product detail (with ETag
   revalidation), add to cart, check out with an Idempotency-Key (some retried, some retried
   concurrently), cancel a few orders, look at orders and the cart. A few "hot" products get a
   small stock, so buyers race for the last units;
4. checks afterwards, straight from the database: no 5xx and no transport error; every 201
   checkout id exists exactly once and every order of the run's buyers was answered 201; retries
   with the same key got the same order; cancelled orders are cancelled; the stock books balance
   for every product (stock before − units in the run's placed orders = stock after, never
   negative); every outbox job of the run was delivered by the worker; no unhandled error in the
   server's log.

Prints a summary and exits 1 on any violation (2 when the set-up itself failed).
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
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import asyncpg
import httpx
from redis.asyncio import Redis

BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "load-test-password"
WORDS = ["lamp", "coffee", "wireless", "keyboard", "backpack", "speaker", "bamboo", "teapot", "yoga", "jacket"]
SORTS = ["newest", "price_asc", "price_desc", "rating"]


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_url(database: str) -> str:
    parsed = urlparse(ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    return urlunparse(parsed._replace(path=f"/{database}"))


class Processes:
    """Processes this script started, each in its own process group; ``stop_all`` ends exactly those."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> None:
        with (self.logs / f"{name}.log").open("ab") as out:
            done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed ({done.returncode}); see {self.logs / f'{name}.log'}")

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.running.append((name, process))
        return process

    def stop_all(self, grace: float = 20) -> None:
        for name, process in reversed(self.running):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    log(f"{name} did not stop on SIGTERM; killing its process group")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
        self.running.clear()


@dataclass
class Stats:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    transport_errors: list[str] = field(default_factory=list)
    # Idempotency-Key -> order ids of its 201 answers; buyer id -> keys
    checkouts: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    created: dict[str, str] = field(default_factory=dict)  # order id -> buyer id
    cancelled: set[str] = field(default_factory=set)
    buyers: set[str] = field(default_factory=set)
    retries: int = 0
    concurrent_retries: int = 0
    requests: int = 0
    jobs_delivered: int = 0

    def record(self, action: str, status: int, took: float) -> None:
        self.statuses[(action, status)] += 1
        self.latencies[action].append(took)
        self.requests += 1


def cart_line(rng: random.Random, hot: list[str], pool: list[str], *, hot_share: float) -> dict[str, Any]:
    """An add-to-cart body: a hot (low-stock, contended) product ``hot_share`` of the time."""
    product = rng.choice(hot) if rng.random() < hot_share else rng.choice(pool)
    return {"product_id": product, "quantity": rng.randint(1, 2)}


class Shopper:
    def __init__(self, index: int, client: httpx.AsyncClient, stats: Stats, pool: list[str], hot: list[str]) -> None:
        self.index = index
        self.client = client
        self.stats = stats
        self.pool = pool
        self.hot = hot
        self.rng = random.Random(1000 + index)
        self.headers: dict[str, str] = {}
        self.user_id = ""
        self.orders: list[str] = []
        self.etags: dict[str, str] = {}
        self.categories: list[str] = []
        self.checkouts = 0
        self.cart_filled = False

    async def call(self, action: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.stats.transport_errors.append(f"{action} {method} {url}: {type(error).__name__}: {error}")
            return None
        self.stats.record(action, response.status_code, time.perf_counter() - started)
        return response

    async def sign_up(self) -> None:
        name = f"load{self.index:03d}_{uuid.uuid4().hex[:6]}"
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        r = await self.call("register", "POST", "/api/auth/register", json=body)
        if r is None or r.status_code != 201:
            raise RuntimeError(f"registration failed: {r.status_code if r else 'no answer'} {r.text if r else ''}")
        self.user_id = r.json()["id"]
        self.stats.buyers.add(self.user_id)
        r = await self.call("login", "POST", "/api/auth/login", json={"email": name, "password": PASSWORD})
        if r is None or r.status_code != 200:
            raise RuntimeError(f"login failed: {r.status_code if r else 'no answer'}")
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await self.call("categories", "GET", "/api/categories")
        if r is not None and r.status_code == 200:
            self.categories = [c["id"] for c in r.json()]

    async def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.22:
            await self.browse()
        elif roll < 0.35:
            await self.search()
        elif roll < 0.53:
            await self.detail()
        elif roll < 0.75:
            await self.add_to_cart()
        elif roll < 0.92:
            if self.cart_filled or self.rng.random() < 0.1:  # now and then an empty cart (422)
                await self.checkout()
            else:
                await self.add_to_cart()
        elif roll < 0.95:
            await self.cancel()
        else:
            await self.call("orders", "GET", "/api/orders", headers=self.headers)
            await self.call("cart", "GET", "/api/cart", headers=self.headers)

    async def browse(self) -> None:
        params: dict[str, Any] = {"sort": self.rng.choice(SORTS), "limit": 20}
        if self.categories and self.rng.random() < 0.4:
            params["category_id"] = self.rng.choice(self.categories)
        if self.rng.random() < 0.3:
            params["in_stock"] = "true"
        r = await self.call("browse", "GET", "/api/products", params=params)
        if r is not None and r.status_code == 200 and r.json()["next_cursor"] and self.rng.random() < 0.4:
            await self.call("browse", "GET", "/api/products", params={**params, "cursor": r.json()["next_cursor"]})

    async def search(self) -> None:
        await self.call("search", "GET", "/api/products", params={"q": self.rng.choice(WORDS), "limit": 10})

    async def detail(self) -> None:
        product = self.rng.choice(self.pool[:40] if self.rng.random() < 0.5 else self.pool)  # some are popular
        headers = {"If-None-Match": self.etags[product]} if product in self.etags and self.rng.random() < 0.5 else {}
        r = await self.call("detail", "GET", f"/api/products/{product}", headers=headers)
        if r is not None and "etag" in r.headers:
            self.etags[product] = r.headers["etag"]

    async def add_to_cart(self) -> None:
        body = cart_line(self.rng, self.hot, self.pool, hot_share=0.25)
        r = await self.call("add_to_cart", "POST", "/api/cart/items", json=body, headers=self.headers)
        if r is not None and r.status_code in (200, 201):
            self.cart_filled = True

    async def checkout(self) -> None:
        self.checkouts += 1
        key = f"load-{self.index}-{self.checkouts}"
        headers = {**self.headers, "Idempotency-Key": key}
        r = await self.call("checkout", "POST", "/api/cart/checkout", headers=headers)
        if r is None:
            return
        if r.status_code == 201:
            self.cart_filled = False
            self._placed(key, r.json()["id"])
            roll = self.rng.random()
            if roll < 0.2:  # the client did not see the answer and retries
                self.stats.retries += 1
                again = await self.call("checkout_retry", "POST", "/api/cart/checkout", headers=headers)
                if again is not None and again.status_code == 201:
                    self.stats.checkouts[key].append(again.json()["id"])
            elif roll < 0.3:  # two retries at once
                self.stats.concurrent_retries += 1
                both = await asyncio.gather(
                    *(self.call("checkout_retry", "POST", "/api/cart/checkout", headers=headers) for _ in range(2))
                )
                for again in both:
                    if again is not None and again.status_code == 201:
                        self.stats.checkouts[key].append(again.json()["id"])
        elif r.status_code == 409:  # a hot product ran out: start over with an empty cart
            await self.call("clear_cart", "DELETE", "/api/cart", headers=self.headers)
            self.cart_filled = False

    def _placed(self, key: str, order_id: str) -> None:
        self.stats.checkouts[key].append(order_id)
        self.stats.created[order_id] = self.user_id
        self.orders.append(order_id)

    async def cancel(self) -> None:
        if not self.orders or self.rng.random() < 0.5:  # a few orders are cancelled, most are kept
            await self.call("orders", "GET", "/api/orders", headers=self.headers)
            return
        order = self.orders.pop(self.rng.randrange(len(self.orders)))
        r = await self.call("cancel", "POST", f"/api/orders/{order}/cancel", headers=self.headers)
        if r is not None and r.status_code == 200:
            self.stats.cancelled.add(order)


async def wait_ready(base_url: str, processes: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a process exited during start-up ({process.returncode})")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.25)
    raise RuntimeError("the server did not become ready")


async def drive(base_url: str, clients: int, iterations: int, pool: list[str], hot: list[str]) -> tuple[Stats, float]:
    stats = Stats()
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        shoppers = [Shopper(i, client, stats, pool, hot) for i in range(clients)]
        await asyncio.gather(*(s.sign_up() for s in shoppers))
        started = time.perf_counter()

        async def run(shopper: Shopper) -> None:
            for _ in range(iterations):
                await shopper.step()

        await asyncio.gather(*(run(s) for s in shoppers))
        return stats, time.perf_counter() - started


async def snapshot_stock(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {str(r["id"]): int(r["stock"]) for r in await conn.fetch("SELECT id, stock FROM products")}
    finally:
        await conn.close()


async def check(url: str, stats: Stats, stock_before: dict[str, int], run_started: Any) -> list[str]:
    violations: list[str] = []
    five_xx = {k: n for k, n in stats.statuses.items() if k[1] >= 500}
    if five_xx:
        violations.append(f"5xx answers: {five_xx}")
    if stats.transport_errors:
        violations.append(f"{len(stats.transport_errors)} transport errors, e.g. {stats.transport_errors[:3]}")
    for key, ids in stats.checkouts.items():
        if len(set(ids)) != 1:
            violations.append(f"Idempotency-Key {key} answered with different orders: {ids}")
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, buyer_id, status, idempotency_key FROM orders WHERE buyer_id = ANY($1::uuid[])",
            [uuid.UUID(b) for b in stats.buyers],
        )
        stored = Counter(str(r["id"]) for r in rows)
        by_id = {str(r["id"]): r for r in rows}
        lost = set(stats.created) - set(stored)
        unanswered = set(stored) - set(stats.created)
        duplicated = [i for i, n in stored.items() if n > 1]
        if lost:
            violations.append(f"{len(lost)} orders answered 201 but not stored: {sorted(lost)[:5]}")
        if unanswered:
            violations.append(f"{len(unanswered)} stored orders no client was told about: {sorted(unanswered)[:5]}")
        if duplicated:
            violations.append(f"duplicated orders: {duplicated[:5]}")
        per_key = Counter((str(r["buyer_id"]), r["idempotency_key"]) for r in rows)
        if any(n > 1 for n in per_key.values()):
            violations.append("two orders for one (buyer, Idempotency-Key)")
        for order_id, buyer in stats.created.items():
            row = by_id.get(order_id)
            if row is not None and str(row["buyer_id"]) != buyer:
                violations.append(f"order {order_id} belongs to another buyer")
        wrong_status = [
            i for i in stats.created if i in by_id and (by_id[i]["status"] == "cancelled") != (i in stats.cancelled)
        ]
        if wrong_status:
            violations.append(f"orders with the wrong status: {wrong_status[:5]}")

        taken = {
            str(r["product_id"]): int(r["units"])
            for r in await conn.fetch(
                "SELECT l.product_id, SUM(l.quantity) AS units FROM order_lines l JOIN orders o ON o.id = l.order_id "
                "WHERE o.buyer_id = ANY($1::uuid[]) AND o.status = 'placed' GROUP BY l.product_id",
                [uuid.UUID(b) for b in stats.buyers],
            )
        }
        stock_after = {str(r["id"]): int(r["stock"]) for r in await conn.fetch("SELECT id, stock FROM products")}
        unbalanced = [
            (pid, before, taken.get(pid, 0), stock_after.get(pid))
            for pid, before in stock_before.items()
            if before - taken.get(pid, 0) != stock_after.get(pid)
        ]
        if unbalanced:
            violations.append(f"stock books do not balance for {len(unbalanced)} products, e.g. {unbalanced[:3]}")
        if any(s < 0 for s in stock_after.values()):
            violations.append("negative stock")

        pending = None
        for _ in range(120):  # the worker delivers the run's jobs (emails) within a minute
            pending = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE created_at >= $1 AND processed_at IS NULL", run_started
            )
            if pending == 0:
                break
            await asyncio.sleep(0.5)
        if pending:
            violations.append(f"{pending} outbox jobs of the run were not delivered by the worker")
        delivered = await conn.fetchval("SELECT count(*) FROM outbox WHERE created_at >= $1", run_started)
        stats.jobs_delivered = int(delivered or 0)
    finally:
        await conn.close()
    return violations


def summary(stats: Stats, seconds: float, clients: int, iterations: int) -> None:
    print()
    print(
        f"clients {clients} x {iterations} steps: {stats.requests} requests in {seconds:.1f} s "
        f"({stats.requests / seconds:.0f} req/s)"
    )
    print(f"{'action':<16}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  statuses")
    for action in sorted(stats.latencies):
        values = sorted(stats.latencies[action])
        q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        codes = ", ".join(f"{s}:{n}" for (a, s), n in sorted(stats.statuses.items()) if a == action)
        print(
            f"{action:<16}{len(values):>7}{q[49] * 1000:>9.1f}{q[94] * 1000:>9.1f}{q[98] * 1000:>9.1f}"
            f"{values[-1] * 1000:>9.1f}  {codes}"
        )
    all_codes: Counter[int] = Counter()
    for (_action, status), n in stats.statuses.items():
        all_codes[status] += n
    print("status codes:", dict(sorted(all_codes.items())))
    print(
        f"orders placed {len(stats.created)}, cancelled {len(stats.cancelled)}, "
        f"retried checkouts {stats.retries} (+{stats.concurrent_retries} with two concurrent retries), "
        f"outbox jobs delivered {stats.jobs_delivered}"
    )


async def prepare_hot_products(
    url: str, rng: random.Random, *, size: int = 400, hot_count: int = 12, hot_stock: int = 4
) -> tuple[list[str], list[str]]:
    """A sample of buyable products, and a few of them with little stock so buyers race for it."""
    conn = await asyncpg.connect(url)
    try:
        ids = [
            str(r["id"])
            for r in await conn.fetch("SELECT id FROM products WHERE withdrawn_at IS NULL AND stock > 0 ORDER BY id")
        ]
        pool = rng.sample(ids, min(size, len(ids)))
        hot = pool[:hot_count]
        await conn.execute(
            "UPDATE products SET stock = $2 WHERE id = ANY($1::uuid[])", [uuid.UUID(h) for h in hot], hot_stock
        )
    finally:
        await conn.close()
    return pool, hot


async def cleanup_redis(url: str, prefix: str, queue: str) -> None:
    client = Redis.from_url(url)
    try:
        for pattern in (f"{prefix}*", f"saq:{queue}:*", f"saq:job:{queue}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(keys), 500):
                await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


async def admin_sql(sql: str) -> None:
    conn = await asyncpg.connect(pg_url(urlparse(ADMIN_URL).path.lstrip("/") or "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=90, help="steps per client")
    parser.add_argument("--redis-db", type=int, default=13, help="the spare Redis db index to use")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server and worker logs")
    args = parser.parse_args()

    run_id = f"{os.getpid()}_{secrets.token_hex(3)}"
    database = f"mkt_load_{run_id}"
    url = pg_url(database)
    redis = urlunparse(urlparse(REDIS_BASE)._replace(path=f"/{args.redis_db}"))
    prefix, queue = f"mkt-load-{run_id}:", f"load-{run_id}"
    var_dir = Path(tempfile.mkdtemp(prefix="mkt-load-"))
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": url,
        "REDIS_URL": redis,
        "REDIS_KEY_PREFIX": prefix,
        "JOB_QUEUE_NAME": queue,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        "LOG_JSON": "false",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # The shoppers all come from 127.0.0.1 and sign up at once: the per-address auth limit
        # (60/min by default) would answer most of them 429. Cheaper argon2 keeps the sign-up
        # burst from dominating a 2-core machine; neither changes what this run checks.
        "AUTH_RATE_LIMIT_PER_MINUTE": "100000",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST_KIB": "8192",
        "DB_POOL_SIZE": "10",
    }
    processes = Processes(var_dir)
    marketplace = str(BIN / "marketplace")
    created_db = False
    violations: list[str] = []
    return_code = 2  # until the run gets through its set-up
    try:
        log(f"database {database}, redis db {args.redis_db} (prefix {prefix}), logs in {var_dir}")
        asyncio.run(admin_sql(f'CREATE DATABASE "{database}"'))
        created_db = True
        processes.run("migrate", [marketplace, "migrate"], env, timeout=120)
        log("migrated; seeding the small catalog")
        processes.run("seed", [marketplace, "seed", "--size", "small"], env, timeout=600)
        worker = processes.start("worker", [marketplace, "worker", "--alive-file", str(var_dir / "alive")], env)
        server = processes.start(
            "server", [marketplace, "serve", "--no-migrate", "--workers", "2", "--port", str(port)], env
        )
        base_url = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base_url, [worker, server]))
        pool, hot = asyncio.run(prepare_hot_products(url, random.Random(7)))
        stock_before = asyncio.run(snapshot_stock(url))
        run_started = asyncio.run(_now(url))
        log(f"serving on {base_url}; {args.clients} shoppers x {args.iterations} steps")
        stats, seconds = asyncio.run(drive(base_url, args.clients, args.iterations, pool, hot))
        log("workload done; checking the books")
        violations = asyncio.run(check(url, stats, stock_before, run_started))
        if worker.poll() is not None or server.poll() is not None:
            violations.append("the server or the worker exited during the run")
        summary(stats, seconds, args.clients, args.iterations)
        return_code = 0
    except Exception as error:  # set-up failed: say so, clean up, exit 2
        log(f"set-up failed: {type(error).__name__}: {error}")
    finally:
        processes.stop_all()
        server_log = var_dir / "server.log"
        if server_log.exists():
            unhandled = server_log.read_text(errors="replace").count("unhandled error")
            if unhandled:
                violations.append(f"{unhandled} unhandled errors in the server log ({server_log})")
        with contextlib.suppress(Exception):
            asyncio.run(cleanup_redis(redis, prefix, queue))
        if created_db:
            with contextlib.suppress(Exception):
                asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    if violations and return_code == 0:
        return_code = 1
    if return_code == 0 and not args.keep_logs:
        shutil.rmtree(var_dir, ignore_errors=True)
    else:
        log(f"logs kept in {var_dir}")
    if violations:
        print("\nVIOLATIONS:")
        for violation in violations:
            print(f"  - {violation}")
    elif return_code == 0:
        print("\nOK: no 5xx, no lost or duplicated orders, retries consistent, stock books balance, jobs delivered")
    return return_code


async def _now(url: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT now()")
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
