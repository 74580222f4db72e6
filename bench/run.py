"""``make bench``: how fast is the project next to what the framework and database allow?

One run: (1) recreate and seed a dedicated Postgres database (``marketplace migrate`` + ``seed
--size bench``), (2) start the production server (granian, 2 workers) and three reference apps
with no project code (``bench/reference``: bare Litestar + asyncpg, the same detail as bytes from
Redis, a constant JSON body; FastAPI + SQLAlchemy ORM), one at a time, (3) drive every endpoint
with wrk from a second process (64 connections, rotating over many keys), (4) count the SQL each
request sends (a counting proxy, see ``wirecount.py``), and (5) print and save the table, the
ratios to the twins and which targets hold (``docs/scaling.md``).

    uv run python bench/run.py                       # everything, ~10 minutes
    uv run python bench/run.py --reuse --only detail,list --duration 5

Every server it starts is stopped on the way out (``servers.py``), also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import itertools
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import fixtures
import httpx
import machine
import pgbench_limit
import redis
import report
from drive import Req, bearer, run_wrk, write_requests
from servers import BIN, Server, free_port, stop_all
from wirecount import WireCounter

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = Path(__file__).resolve().parent / "reference"
RESULTS = Path(__file__).resolve().parent / "results"
JWT_SECRET = "bench-only-secret-loopback-" + "x" * 24  # the bench database only; never a real one
SERVERS = ("project", "raw", "fastapi", "pgbench")
ENDPOINTS = (
    "health",
    "detail",
    "detail_cached",
    "categories",
    "list",
    "list_deep",
    "search",
    "feed",
    "feed_cold",
    "cart_add",
    "cart",
    "checkout",
)
HOT_SET = 1_000  # ids of the cached-detail run
DEEP_PAGES = 50  # the deep list page: 50 pages of 20 in (item 1,000 of a category of ~2,000)
WARMUP_USERS = 1_000  # checkout warms up on these users' carts and measures on the others
# The feed is measured on users of its own: the write endpoints' checkouts give their users orders
# that no worker turns into fresh rankings here (none runs), which would make later rounds' feeds
# a measure of that, not of serving.
FEED_USERS = 3_000
PRODUCT = ("GET", "/api/products/{}")
PRODUCTS = ("GET", "/api/products")
FEED = "/api/recommendations"


@dataclass
class Endpoint:
    """One measured endpoint of one server: the requests wrk rotates over and what to do first."""

    name: str
    requests: Callable[[str], list[Req]]  # given the server's base URL (deep cursors are walked live)
    route: tuple[str, str] | None = None  # (method, OpenAPI path) that must exist (project only)
    warmup: Callable[[str], list[Req]] | None = None
    before: Callable[[], None] | None = None  # put caches/carts in the state the run assumes
    count_mode: str = "fresh"  # counting pass: "fresh" = a new key, "repeat" = the same request again
    first_pass: bool = False  # send every request once (64 at a time) before the timed warm-up


@dataclass
class Context:
    options: dict[str, Any]
    run_dir: Path
    dsn: str
    redis_db: int
    reference_redis_db: int
    fx: fixtures.Fixtures
    tokens: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    deep_pages: dict[str, list[str]] = field(default_factory=dict)  # per server: walked once, reused
    neighbours: machine.Neighbours | None = None
    batches: itertools.count[int] = field(default_factory=itertools.count)

    def redis_url(self, db: int, port: int = 6379) -> str:
        return f"redis://127.0.0.1:{port}/{db}"

    def flush(self, db: int) -> None:
        redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()

    def carts(self, users: list[str], lines: int) -> None:
        asyncio.run(fixtures.fill_carts(self.dsn, users, self.fx.cart_products, lines))


# ---------------------------------------------------------------------------- servers


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "GRANIAN_"))}
    env.update(extra)
    return env


def project_env(ctx: Context, dsn: str, redis_url: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=dsn,
        REDIS_URL=redis_url,
        APP_ENV="production",
        JWT_SECRET=JWT_SECRET,
        AUTH_RATE_LIMIT_PER_MINUTE="100000000",
        LOGIN_FAILURE_LIMIT="100000000",
        LOG_LEVEL="WARNING",
        ACCESS_TOKEN_TTL_SECONDS="14400",
        VAR_DIR=str(ctx.run_dir / "var"),
        # Every seeded user has one hash made with these (see seed_env): logins stay cheap.
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST_KIB="1024",
        # No job worker runs beside the benchmarked API: /ready must not wait for its heartbeat.
        WORKER_HEARTBEAT_MAX_AGE_SECONDS="0",
    )


def start_server(ctx: Context, kind: str, workers: int, *, dsn: str | None = None, redis_port: int = 6379) -> Server:
    port = free_port()
    dsn = dsn or ctx.dsn
    log = ctx.run_dir / "logs" / f"{kind}-{workers}w-{port}.log"
    if kind == "project":
        argv = [
            str(BIN / "marketplace"),
            "serve",
            "--no-migrate",
            "--no-seed",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        env = project_env(ctx, dsn, ctx.redis_url(ctx.redis_db, redis_port))
        if ctx.options.get("project_src"):  # A/B a patched copy of src/ (it shadows the editable install)
            env["PYTHONPATH"] = ctx.options["project_src"]
        return Server(kind, argv, env=env, port=port, log_path=log, cwd=ROOT).start()
    target = {"raw": "raw_app:app", "fastapi": "fastapi_orm:app"}[kind]
    argv = [
        str(BIN / "granian"),
        "--interface",
        "asgi",
        "--workers",
        str(workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "--no-access-log",
        "--working-dir",
        str(REFERENCE),
        target,
    ]
    env = base_env(DATABASE_URL=dsn, REFERENCE_REDIS_URL=ctx.redis_url(ctx.reference_redis_db), JWT_SECRET=JWT_SECRET)
    return Server(kind, argv, env=env, port=port, log_path=log, cwd=REFERENCE).start()


# ---------------------------------------------------------------------------- endpoints


def walk_cursors(base_url: str, first_pages: list[str], depth: int) -> list[str]:
    """Follow ``next_cursor`` ``depth`` pages from each first page; the URLs of the deep pages."""

    async def walk(client: httpx.AsyncClient, url: str) -> str | None:
        for _ in range(depth):
            response = await client.get(url)
            if response.status_code != 200:
                return None
            cursor = response.json().get("next_cursor")
            if not cursor:
                return None
            url = url.split("&cursor=")[0] + "&cursor=" + urllib.parse.quote(cursor, safe="")
        return url

    async def walk_all() -> list[str]:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            return [u for u in await asyncio.gather(*(walk(client, u) for u in first_pages)) if u]

    return asyncio.run(walk_all())


def endpoints(ctx: Context, kind: str) -> list[Endpoint]:
    fx, tokens = ctx.fx, ctx.tokens
    prefix = {"project": "/api", "raw": "/raw", "fastapi": ""}[kind]
    cold, hot = fx.product_ids[:90_000], fx.product_ids[:HOT_SET]
    cold_warmup = fx.product_ids[90_000:95_000] or cold
    signed_in = [u for u, _ in fx.users if u in tokens]
    users, feed_users = (
        (signed_in[:-FEED_USERS], signed_in[-FEED_USERS:]) if len(signed_in) > FEED_USERS else (signed_in, signed_in)
    )
    sellers = dict(fx.cart_products)

    def get(paths: list[str], auth_users: list[str] | None = None) -> Callable[[str], list[Req]]:
        if auth_users is None:
            return lambda _base: [Req("GET", p) for p in paths]
        return lambda _base: [Req("GET", paths[0], bearer(tokens[u])) for u in auth_users]

    def detail(ids: list[str], from_redis: bool = False) -> Callable[[str], list[Req]]:
        return get([("/redis/products/" if from_redis else f"{prefix}/products/") + i for i in ids])

    def first_pages() -> list[str]:
        return [f"{prefix}/products?category_id={c}" for c in fx.leaf_categories]

    products = [p for p, _ in fx.cart_products]

    def product_for(i: int, user: str) -> str:
        """A cart product this user does not sell (adding one's own product is a 403)."""
        candidates = (products[(i * 31 + k) % len(products)] for k in range(len(products)))
        return next(p for p in candidates if sellers[p] != user)

    def add_requests(_base: str) -> list[Req]:
        body = '{{"product_id": "{}", "quantity": 1}}'
        return [
            Req("POST", f"{prefix}/cart/items", bearer(tokens[u]), body.format(product_for(i, u)))
            for i, u in enumerate(users)
        ]

    def deep_pages(base: str) -> list[Req]:
        if kind not in ctx.deep_pages:
            ctx.deep_pages[kind] = walk_cursors(base, first_pages(), DEEP_PAGES)
        return [Req("GET", url) for url in ctx.deep_pages[kind]]

    def checkout_requests(chosen: list[str]) -> Callable[[str], list[Req]]:
        def build(_base: str) -> list[Req]:
            # A fresh key per build (load run, counting pass) and server: a reused key would measure
            # the idempotent replay instead of a checkout.
            batch = f"bench-{ctx.run_dir.name}-{kind}-{next(ctx.batches)}"
            return [
                Req("POST", f"{prefix}/cart/checkout", {**bearer(tokens[u]), "Idempotency-Key": f"{batch}-{u}"})
                for u in chosen
            ]

        return build

    search = [f"{prefix}/products?q={urllib.parse.quote(term)}" for term in fx.search_terms]
    flush_project = (lambda: ctx.flush(ctx.redis_db)) if kind == "project" else None
    all_endpoints = [
        Endpoint(
            "health", get(["/health" if kind == "project" else "/const"]), ("GET", "/health"), count_mode="repeat"
        ),
        Endpoint("detail", detail(cold), PRODUCT, warmup=detail(cold_warmup), before=flush_project),
        Endpoint("detail_cached", detail(hot, from_redis=kind == "raw"), PRODUCT, count_mode="repeat"),
        Endpoint("categories", get([f"{prefix}/categories"]), ("GET", "/api/categories"), count_mode="repeat"),
        Endpoint("list", get(first_pages()), PRODUCTS),
        Endpoint("list_deep", deep_pages, PRODUCTS),
        Endpoint("search", get(search), PRODUCTS),
        # The feed as users see it between model refreshes: every user's feed viewed once since
        # the server started (the flush before it threw away what the refresh had primed in
        # Redis), then measured. feed_cold: the first view of each feed after a Redis flush
        # (the ranking read from Postgres' stored rankings, rendered and cached).
        Endpoint("feed", get([FEED], feed_users), ("GET", FEED), first_pass=True, count_mode="repeat"),
        Endpoint(
            "feed_cold",
            get([FEED], feed_users[WARMUP_USERS:] or feed_users),
            ("GET", FEED),
            warmup=get([FEED], feed_users[:WARMUP_USERS]),
            before=flush_project,
        ),
        Endpoint("cart_add", add_requests, ("POST", "/api/cart/items"), before=lambda: ctx.carts(users, 0)),
        Endpoint("cart", get([f"{prefix}/cart"], users), ("GET", "/api/cart"), before=lambda: ctx.carts(users, 3)),
        Endpoint(
            "checkout",
            checkout_requests(users[WARMUP_USERS:] or users),
            ("POST", "/api/cart/checkout"),
            warmup=checkout_requests(users[:WARMUP_USERS]),
            before=lambda: ctx.carts(users, 2),
        ),
    ]
    served = {
        "project": ENDPOINTS,
        "raw": ("health", "detail", "detail_cached", "categories", "list", "list_deep", "search"),
        "fastapi": ("detail", "categories", "list", "list_deep", "search", "cart_add", "cart", "checkout"),
    }[kind]
    needs_users = {"feed", "feed_cold", "cart_add", "cart", "checkout"}
    by_name = {e.name: e for e in all_endpoints}
    chosen = [by_name[n] for n in served if selected(ctx, n) and (n not in needs_users or users)]
    for endpoint in chosen:
        if kind != "project":
            endpoint.route = None
        if kind == "raw" and endpoint.name == "detail_cached":
            endpoint.before = lambda: prefill_reference_redis(ctx, hot)
    return chosen


def selected(ctx: Context, name: str) -> bool:
    only = ctx.options["only"]
    return not only or any(name == o or name.startswith(o + "_") for o in only)


def result_key(kind: str, name: str) -> str:
    if kind == "raw":
        name = {"health": "const", "detail_cached": "redis"}.get(name, name)
    return f"{kind}:{name}"


def prefill_reference_redis(ctx: Context, ids: list[str]) -> None:
    ctx.flush(ctx.reference_redis_db)
    ids_file = ctx.run_dir / "requests" / "hot-ids.txt"
    ids_file.parent.mkdir(parents=True, exist_ok=True)
    ids_file.write_text("\n".join(ids) + "\n")
    env = base_env(DATABASE_URL=ctx.dsn, REFERENCE_REDIS_URL=ctx.redis_url(ctx.reference_redis_db))
    subprocess.run([sys.executable, str(REFERENCE / "raw_app.py"), "prefill", str(ids_file)], env=env, check=True)


# ---------------------------------------------------------------------------- measuring


def available_routes(server: Server) -> set[tuple[str, str]]:
    """(METHOD, path with every {param} as {}) of each operation the OpenAPI document lists."""
    document = httpx.get(server.base_url + "/schema/openapi.json", timeout=30).json()
    routes = set()
    for path, operations in document.get("paths", {}).items():
        normalized = "/".join("{}" if part.startswith("{") else part for part in path.split("/"))
        routes.update((method.upper(), normalized.rstrip("/") or "/") for method in operations)
    return routes


def probe(server: Server, request: Req) -> int:
    body = request.body.encode() if request.body else None
    headers = {**request.headers, **({"Content-Type": "application/json"} if body else {})}
    return httpx.request(
        request.method, server.base_url + request.path, headers=headers, content=body, timeout=30
    ).status_code


def visit_each(base_url: str, requests: list[Req], connections: int) -> None:
    """Send each request once, ``connections`` at a time (a first pass that fills the caches)."""

    async def visit() -> None:
        limiter = asyncio.Semaphore(connections)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def one(request: Req) -> None:
                async with limiter:
                    await client.request(request.method, request.path, headers=request.headers)

            await asyncio.gather(*(one(request) for request in requests))

    asyncio.run(visit())


def measure(ctx: Context, server: Server, kind: str, endpoint: Endpoint, routes: set[tuple[str, str]] | None) -> None:
    key = result_key(kind, endpoint.name)
    opts = ctx.options
    row: dict[str, Any] = {"server": kind, "endpoint": endpoint.name}
    ctx.results[key] = row
    if endpoint.route and routes is not None and endpoint.route not in routes:
        row["status"] = "not available"
        print(f"  {key}: not available (no {endpoint.route[0]} {endpoint.route[1]} in the OpenAPI document)")
        return
    time.sleep(1)  # wrk has stopped, but the server may still be finishing the last run's requests
    if endpoint.before:
        endpoint.before()
    requests = endpoint.requests(server.base_url)
    if not requests:
        row["status"] = "not available (no requests: nothing to rotate over)"
        return
    status = probe(server, requests[0])
    row["probe_status"] = status
    if status in (404, 405) and kind == "project":
        row["status"] = "not available"
        print(f"  {key}: not available ({status})")
        return
    files = ctx.run_dir / "requests"
    measured = write_requests(files / f"{key.replace(':', '-')}.tsv", requests)
    warm = write_requests(
        files / f"{key.replace(':', '-')}-warmup.tsv", endpoint.warmup(server.base_url) if endpoint.warmup else requests
    )
    if endpoint.before and endpoint.name == "checkout":
        endpoint.before()  # the probe spent one cart
    if endpoint.first_pass:
        visit_each(server.base_url, requests, opts["connections"])
    if opts["warmup"] > 0:
        run_wrk(server.base_url, warm, duration=opts["warmup"], connections=opts["connections"])
    neighbours = ctx.neighbours or machine.Neighbours(ctx.dsn.rsplit("/", 1)[1])
    if opts["quiet_wait"] > 0:
        neighbours.wait_quiet(opts["quiet_wait"])
    neighbours.start(server.process.pid if server.process else None)
    stats = run_wrk(server.base_url, measured, duration=opts["duration"], connections=opts["connections"])
    row.update(stats, **neighbours.stop(), status="ok")
    row["cpu_ms_per_request"] = per_request(row.pop("own_cpu_seconds"), stats["requests"])
    if row["foreign_cores"] >= 0.2:
        ctx.notes.append(f"{key}: other processes used {row['foreign_cores']} cores meanwhile {row['foreign_top']}")
    if stats["requests"] > stats["lines"] and endpoint.name in ("detail", "checkout", "feed_cold"):
        share = (stats["requests"] - stats["lines"]) / stats["requests"]
        ctx.notes.append(
            f"{key}: {stats['requests']:,} requests over {stats['lines']:,} keys: {share:.0%} were "
            "repeats (warm), so the 'cold' figure is flattered by that share."
        )
    print(
        f"  {key:28} {stats['rps']:9,.0f} req/s  p50 {stats['p50_ms']:6.1f} ms  p99 {stats['p99_ms']:6.1f} ms  "
        f"errors {stats['errors']}  (probe {status})  CPU ms/request {row['cpu_ms_per_request']}"
    )
    if kind == "project" and endpoint.name in opts["profile"]:
        # The measured run spent the checkout carts (and used up its idempotency keys): profile a
        # fresh set, or the profile would show replays of an empty cart.
        if endpoint.before:
            endpoint.before()
        fresh = write_requests(files / f"{key.replace(':', '-')}-profile.tsv", endpoint.requests(server.base_url))
        profile(ctx, server, key, fresh)


def per_request(cpu_seconds: dict[str, float], requests: int) -> dict[str, float]:
    """CPU milliseconds each request cost, by part (server, postgres, redis, harness): unlike req/s,
    this hardly moves when a neighbour takes a core, so it compares two versions of the code."""
    return {part: round(seconds * 1000 / max(requests, 1), 3) for part, seconds in cpu_seconds.items()}


def profile(ctx: Context, server: Server, key: str, requests_file: Path) -> None:
    """py-spy (if installed in the venv) on both workers during one more run; top frames to a file."""
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None or server.process is None:
        ctx.notes.append("profiling skipped: py-spy is not installed (uv pip install py-spy)")
        return
    out = ctx.run_dir / f"profile-{key.replace(':', '-')}.txt"
    seconds = ctx.options["duration"]
    # py-spy's own complaints (no permission, a native-mode failure) go to logs/py-spy.log.
    with (ctx.run_dir / "logs" / "py-spy.log").open("wb") as spy_log:
        spy_run = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(server.process.pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(int(seconds)),
                "--output",
                str(out),
                *(["--native"] if os.environ.get("BENCH_PROFILE_NATIVE") else ["--nonblocking"]),
            ],
            stdout=subprocess.DEVNULL,
            stderr=spy_log,
        )
    time.sleep(1)
    run_wrk(server.base_url, requests_file, duration=seconds - 1, connections=ctx.options["connections"])
    spy_run.wait(60)
    summary = summarize_profile(out)
    (ctx.run_dir / f"profile-{key.replace(':', '-')}-top.txt").write_text(summary)
    print(summary)


BOILERPLATE = (
    "(core.py)",
    "(mp.py)",
    "(common.py)",
    "(process.py)",
    "(popen_fork.py)",
    "(context.py)",
    "(base_events.py)",
    "(events.py)",
    "(marketplace)",
    "(cli.py)",
    "(threading.py)",
    "(_futures.py)",
)


def summarize_profile(collapsed: Path, top: int = 25) -> str:
    """Self and inclusive share of the busiest functions in py-spy's collapsed stacks.

    Frames are shortened to "function (file)"; process roots and the server's start-up frames
    (click, granian, the event loop) are dropped from the inclusive list, where they are always 100%.
    """
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.rsplit(" (", 1)[-1].split(":")[0].split("/")[-1] + ")"
            for f in stack.split(";")
            if not f.startswith("process ")
        ]
        if not frames:
            continue
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            if not frame.endswith(BOILERPLATE):
                inclusive[frame] = inclusive.get(frame, 0) + count
    lines = [f"{collapsed.name}: {total} samples (both workers)", "", "self %  function"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in sorted(own.items(), key=lambda x: -x[1])[:top]]
    lines += ["", "incl %  function"]
    lines += [f"{n / total:6.1%}  {f}" for f, n in sorted(inclusive.items(), key=lambda x: -x[1])[: top * 2]]
    return "\n".join(lines) + "\n"


def count_statements(ctx: Context, kind: str, chosen: list[Endpoint]) -> None:
    """One worker behind the counting proxies; each endpoint's request alone, after two warm-ups."""
    measured = [e for e in chosen if ctx.results.get(result_key(kind, e.name), {}).get("status") == "ok"]
    if not measured:
        return
    with WireCounter(("127.0.0.1", 5432), ("127.0.0.1", 6379)) as counter:
        dsn = ctx.dsn.replace("127.0.0.1:5432", f"127.0.0.1:{counter.ports['postgres']}")
        server = start_server(ctx, kind, 1, dsn=dsn, redis_port=counter.ports["redis"])
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                for endpoint in measured:
                    if endpoint.before:
                        endpoint.before()
                    requests = endpoint.requests(server.base_url)
                    if endpoint.count_mode == "repeat":
                        sequence = [requests[0]] * 3
                    else:
                        sequence = (requests * 3)[:3] if len(requests) < 3 else requests[:3]
                    for i, request in enumerate(sequence):
                        if i == len(sequence) - 1:
                            time.sleep(0.3)  # let background work of the warm-ups finish
                            counter.tally.reset()
                        body = request.body.encode() if request.body else None
                        headers = {**request.headers, **({"Content-Type": "application/json"} if body else {})}
                        client.request(request.method, request.path, headers=headers, content=body)
                    during = counter.tally.summary()
                    time.sleep(0.5)
                    after = counter.tally.summary()
                    during["background_sql"] = int(after["sql"]) - int(during["sql"])  # type: ignore[call-overload]
                    ctx.results[result_key(kind, endpoint.name)]["count"] = during
        finally:
            server.stop()


def run_pgbench(ctx: Context) -> None:
    """The database's own limit for the write endpoints: pgbench running the statements the service
    sends (``pgbench_limit``), over the same users, products and carts, on as many connections."""
    users = [u for u, _ in ctx.fx.users]
    users = users[:-FEED_USERS] if len(users) > FEED_USERS else users  # the feed's users never write
    products = [p for p, _ in ctx.fx.cart_products]
    chosen = [name for name in ("cart_add", "checkout") if selected(ctx, name) and users]
    if not chosen:
        return
    print("\n== pgbench: the service's write statements, no HTTP and no Python")
    for name in chosen:
        key = result_key("pgbench", name)
        ctx.carts(users if name == "checkout" else [], 2 if name == "checkout" else 0)
        try:
            rows = asyncio.run(pgbench_limit.prepare(ctx.dsn, name, users, products))
            neighbours = ctx.neighbours or machine.Neighbours(ctx.dsn.rsplit("/", 1)[1])
            if ctx.options["quiet_wait"] > 0:
                neighbours.wait_quiet(ctx.options["quiet_wait"])
            neighbours.start()
            stats = pgbench_limit.run(
                ctx.dsn, name, rows, connections=ctx.options["connections"], duration=ctx.options["duration"]
            )
            row = {"server": "pgbench", "endpoint": name, **stats, **neighbours.stop(), "status": "ok"}
            row["cpu_ms_per_request"] = per_request(row.pop("own_cpu_seconds"), stats["requests"])
            ctx.results[key] = row
            print(
                f"  {key:28} {stats['rps']:9,.0f} tx/s   p50 {stats['p50_ms']:6.1f} ms  p99 {stats['p99_ms']:6.1f} ms  "
                f"errors {stats['errors']}  CPU ms/transaction {row['cpu_ms_per_request']}"
            )
        except Exception as error:  # one broken measurement must not cost the whole run
            ctx.results[key] = {"server": "pgbench", "endpoint": name, "status": f"failed: {error}"[:300]}
            print(f"  {key}: FAILED {error}")


def run_server(ctx: Context, kind: str) -> None:
    if kind == "pgbench":
        run_pgbench(ctx)
        return
    chosen = endpoints(ctx, kind)
    if not chosen:
        return
    print(f"\n== {kind}: granian, {ctx.options['workers']} workers")
    if kind == "project":
        ctx.flush(ctx.redis_db)
    server = start_server(ctx, kind, ctx.options["workers"])
    if ctx.neighbours and server.process:
        ctx.neighbours.own_groups.add(server.process.pid)
    try:
        routes = available_routes(server) if kind == "project" else None
        for endpoint in chosen:
            try:
                measure(ctx, server, kind, endpoint, routes)
            except Exception as error:  # one broken endpoint must not cost the whole run
                ctx.results[result_key(kind, endpoint.name)] = {
                    "server": kind,
                    "endpoint": endpoint.name,
                    "status": f"failed: {error}"[:300],
                }
                print(f"  {result_key(kind, endpoint.name)}: FAILED {error}")
    finally:
        server.stop()
    if ctx.options["count"]:
        count_statements(ctx, kind, chosen)


# ---------------------------------------------------------------------------- setup


def ensure_tools(notes: list[str]) -> None:
    if shutil.which("wrk") is None:
        print("wrk is missing; installing it with apt-get")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        if shutil.which("wrk") is None:
            raise click.ClickException("wrk is required: apt-get install wrk (or brew install wrk)")
    if importlib.util.find_spec("fastapi") is None:
        print("the bench dependency group is missing; installing it (uv sync --inexact --group bench)")
        # uv as the Makefile finds it: on PATH, or the module in the Python that made the venv.
        on_path = shutil.which("uv")
        uv = [on_path] if on_path else [sys._base_executable, "-m", "uv"]
        subprocess.run([*uv, "sync", "--frozen", "--inexact", "--group", "bench"], cwd=ROOT, check=True)
        notes.append("installed the `bench` dependency group (fastapi) into the venv")


def seed_env(dsn: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=dsn,
        APP_ENV="production",
        JWT_SECRET=JWT_SECRET,
        LOG_LEVEL="WARNING",
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_COST_KIB="1024",
    )


def build_feed_model(ctx: Context) -> None:
    """Run the scheduled model refreshes once (the feed would otherwise serve cold-start results)."""
    code = (
        "import asyncio, json\n"
        "from entrypoints.settings import Settings\nfrom entrypoints.wiring import Container\n"
        "async def main():\n"
        "    c = Container(Settings.from_env())\n"
        "    refreshes = c.use_cases.recommendations\n"
        "    try:\n"
        "        out = {'refresh_popular_items': await refreshes.refresh_popular_items.execute(),\n"
        "               'refresh_recommendations': await refreshes.refresh_recommendations.execute()}\n"
        "    finally:\n        await c.shutdown()\n"
        "    print(json.dumps(out, default=str)[:500])\n"
        "asyncio.run(main())\n"
    )
    started = time.perf_counter()
    env = project_env(ctx, ctx.dsn, ctx.redis_url(ctx.redis_db))
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    ctx.timings["feed_model_s"] = time.perf_counter() - started
    outcome = (
        done.stdout.strip().splitlines()[-1] if done.returncode == 0 and done.stdout.strip() else done.stderr[-300:]
    )
    ctx.notes.append(f"feed model refresh ({ctx.timings['feed_model_s']:.1f} s): {outcome}")


def setup_database(ctx: Context, reuse: bool, seed: int) -> None:
    env = seed_env(ctx.dsn)
    if reuse and asyncio.run(fixtures.database_exists(ctx.dsn)):
        print(f"reusing {ctx.dsn}")
    else:
        print(f"recreating {ctx.dsn}")
        asyncio.run(fixtures.recreate_database(ctx.dsn))
        ctx.timings["migrate_s"] = fixtures.run_cli(["migrate"], env)
        ctx.timings["seed_s"] = fixtures.run_cli(["seed", "--size", "bench", "--seed", str(seed)], env)
        print(f"seeded in {ctx.timings['seed_s']:.1f} s")
        if ctx.timings["seed_s"] > 180:
            ctx.notes.append(f"seeding took {ctx.timings['seed_s']:.0f} s (> 3 min)")


def describe(ctx: Context) -> str:
    o = ctx.options
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, Postgres at 127.0.0.1:5432 "
        f"(database `{ctx.dsn.rsplit('/', 1)[1]}`), Redis db {ctx.redis_db}. Each server: granian, {o['workers']} "
        f"workers; wrk 2 threads, {o['connections']} connections, {o['warmup']:.0f} s warm-up + {o['duration']:.0f} s "
        f"per endpoint, closed loop, loopback. Data: `marketplace seed --size bench --seed {o['seed']}`. "
        "other CPU = cores used meanwhile by processes that are not part of the bench (the machine is shared)."
    )


def git_state() -> dict[str, str]:
    def out(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": out("rev-parse", "--short", "HEAD"),
        "changed_files": str(len(out("status", "--porcelain").splitlines())),
    }


def median_rows(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per server and endpoint, the row of the round with the median req/s (with every round's
    req/s in ``rounds_rps``); statement counts come from the first round, where they were taken.

    The machine's speed drifts by tens of percent over minutes (other tenants of the host), and the
    servers run one after the other, so a ratio from one pass can be off by that much; rounds
    alternate the servers over time and the median keeps one slow or fast pass out.
    """
    merged: dict[str, dict[str, Any]] = {}
    for key, first in rounds[0].items():
        rows = [r[key] for r in rounds if r.get(key, {}).get("status") == "ok"]
        if len(rows) < 2:
            merged[key] = first
            continue
        ordered = sorted(rows, key=lambda row: row["rps"])
        median = ordered[(len(ordered) - 1) // 2]
        merged[key] = {**first, **median, "rounds_rps": [round(row["rps"]) for row in rows]}
        if "count" in first:
            merged[key]["count"] = first["count"]
    return merged


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--duration", type=float, default=10, show_default=True, help="Seconds measured per endpoint.")
@click.option("--warmup", type=float, default=2, show_default=True, help="Seconds of warm-up per endpoint.")
@click.option("--connections", type=int, default=64, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="granian workers per server.")
@click.option("--reuse", "--skip-seed", "reuse", is_flag=True, help="Keep the bench database if it exists.")
@click.option(
    "--only", default="", help=f"Comma-separated endpoints (prefixes match: detail, list, cart): {ENDPOINTS}."
)
@click.option("--servers", "server_list", default=",".join(SERVERS), show_default=True)
@click.option("--database", default="mkt_bench", show_default=True)
@click.option("--redis-db", type=int, default=9, show_default=True, help="Spare Redis db for the project.")
@click.option("--users", type=int, default=5_000, show_default=True, help="Users logged in for the cart/feed runs.")
@click.option(
    "--quiet-wait",
    type=float,
    default=5,
    show_default=True,
    help="Seconds each run may wait for other processes to go quiet (this machine is shared).",
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--count/--no-count", default=True, show_default=True, help="Count SQL per request (proxy pass).")
@click.option("--profile", default="", help="Project endpoints to profile with py-spy (an extra run each).")
@click.option(
    "--project-src",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Serve the project from this copy of src/ (to measure a change before it lands).",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 9),
    default=1,
    show_default=True,
    help="Measure every server this many times, alternating; report the median round (machine drift).",
)
def main(
    duration: float,
    warmup: float,
    connections: int,
    workers: int,
    reuse: bool,
    only: str,
    server_list: str,
    database: str,
    redis_db: int,
    users: int,
    quiet_wait: float,
    seed: int,
    count: bool,
    profile: str,
    project_src: str | None,
    rounds: int,
) -> None:
    """Benchmark the project against reference apps; print and save the results."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(UTC)
    run_dir = RESULTS / started.strftime("%Y%m%d-%H%M%S")
    dsn = f"postgresql://postgres@127.0.0.1:5432/{database}"
    options = {
        "duration": duration,
        "warmup": warmup,
        "connections": connections,
        "workers": workers,
        "only": [o.strip() for o in only.split(",") if o.strip()],
        "seed": seed,
        "count": count,
        "quiet_wait": quiet_wait,
        "profile": [p.strip() for p in profile.split(",") if p.strip()],
        "project_src": str(Path(project_src).resolve()) if project_src else None,
    }
    notes: list[str] = []
    ensure_tools(notes)
    kinds = [k.strip() for k in server_list.split(",") if k.strip() in SERVERS]
    try:
        ctx = Context(options, run_dir, dsn, redis_db, redis_db + 1, fixtures.Fixtures([], [], [], []), notes=notes)
        ctx.neighbours = machine.Neighbours(database)
        setup_database(ctx, reuse, seed)
        ctx.fx, ctx.timings["vacuum_analyze_s"] = asyncio.run(fixtures.prepare(dsn, seed, users + FEED_USERS))
        auth_needed = any(selected(ctx, n) for n in ("feed", "feed_cold", "cart_add", "cart", "checkout"))
        if "project" in kinds and selected(ctx, "feed"):
            build_feed_model(ctx)
        if auth_needed:
            print(f"logging in {len(ctx.fx.users):,} users")
            fingerprint = hashlib.sha256(
                f"{dsn}|{ctx.fx.users[0][0]}|{len(ctx.fx.users)}|{JWT_SECRET}".encode()
            ).hexdigest()
            server = start_server(ctx, "project", workers)
            try:
                ctx.tokens, ctx.timings["login_s"] = fixtures.login(
                    server.base_url, ctx.fx.users, RESULTS / ".tokens.json", fingerprint
                )
            finally:
                server.stop()
        rounds_results: list[dict[str, dict[str, Any]]] = []
        for round_number in range(1, rounds + 1):
            if rounds > 1:
                print(f"\n##### round {round_number} of {rounds}")
            ctx.results = {}
            for kind in kinds:
                run_server(ctx, kind)
            rounds_results.append(ctx.results)
            # Statements are counted and profiles taken once: they do not drift with the machine.
            ctx.options = {**ctx.options, "count": False, "profile": []}
        ctx.results = median_rows(rounds_results)
        ctx.options = options
    finally:
        stop_all()
    report.add_ratios(ctx.results)
    run = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": describe(ctx),
        "options": options,
        "git": git_state(),
        "timings": {k: round(v, 1) for k, v in ctx.timings.items()},
        "results": ctx.results,
        "targets": report.check_targets(ctx.results),
        "notes": [*ctx.notes, *(f"{k}: {v:.1f} s" for k, v in ctx.timings.items())],
    }
    json_path, md_path = report.save(run_dir, run)
    print("\n" + report.table(ctx.results) + "\n\n" + report.targets_table(run["targets"]) + "\n")
    for note in run["notes"]:
        print(f"- {note}")
    print(f"\nsaved {md_path}\n      {json_path}")


if __name__ == "__main__":
    main()
