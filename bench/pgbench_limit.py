"""The database's own limit for the write endpoints: pgbench running the statements the service sends.

The scripts are not written by hand: each statement is the project's Core expression
(``adapters.sql.statements``) compiled exactly as the service compiles it for asyncpg, with its
``$n`` parameters replaced by pgbench variables, in the order one request sends them:

* ``cart_add``: the access-token check, then BEGIN, the product read, the line upsert, the line
  read, COMMIT (``application.use_cases.cart.AddToCart`` for a signed-in user).
* ``checkout``: the token check, then BEGIN, the cart's lines taken out (deleted and returned), the
  order with its two lines (one statement), the stock take, the sellers' webhook subscriptions, the
  four outbox jobs (one batch, born claimed by the request, so nothing is written after the
  commit), COMMIT.

Each pgbench transaction adds one statement the service does not send: a primary-key look-up of
the ids it works on (pgbench variables are numbers; ids come from a prepared table), so the limit
is, if anything, a little low. pgbench runs prepared statements (``-M prepared``) on as many
connections as wrk uses, and its per-transaction log gives the same percentiles as wrk's.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from adapters.sql.pg_pool import STATEMENTS  # noqa: E402
from adapters.sql.statements import accounts, carts, orders, outbox, webhooks  # noqa: E402

Params = dict[str, str]  # parameter name -> pgbench expression (a :variable or SQL)


def command(statement: Any, params: Params, *, gset: str | None = None) -> str:
    """One statement as pgbench runs it: compiled like the service does, parameters substituted."""
    compiled = STATEMENTS(statement)
    expressions = []
    for name, _, default in compiled.parameters:
        if name in params:
            expressions.append(params[name])
        elif isinstance(default, int | float) and not isinstance(default, bool):
            expressions.append(repr(default))
        else:
            raise KeyError(f"no pgbench value for parameter {name!r} of {compiled.sql[:80]}")
    # An expression keeps its own precedence next to the statement's ``::TYPE`` casts.
    grouped = [e if re.fullmatch(r"[:\w']+(\(\))?", e) else f"({e})" for e in expressions]
    sql = re.sub(r"\$(\d+)", lambda m: grouped[int(m.group(1)) - 1], compiled.sql)
    sql = " ".join(sql.split())
    return f"{sql} \\gset {gset}" if gset is not None else f"{sql};"


def cart_add_script() -> str:
    return "\n".join(
        [
            "\\set n random(0, :picks - 1)",
            "SELECT uid, pid FROM pgb_cart_add WHERE n = :n \\gset",
            command(accounts.ACCOUNT_STATE, {"user_id": ":uid", "family_id": "gen_random_uuid()"}, gset="a_"),
            "BEGIN;",
            command(orders.PURCHASABLE, {"product_id": ":pid"}, gset="p_"),
            command(
                carts.ADD_LINE["user"],
                {
                    "id": "gen_random_uuid()",
                    "user_id": ":uid",
                    "guest_cart_id": "NULL",
                    "product_id": ":pid",
                    "quantity": "1",
                    "price_at_add": ":p_price",
                    "created_at": "now()",
                    "updated_at": "now()",
                },
                gset="l_",
            ),
            command(carts.LINE["user"], {"owner_id": ":uid", "line_id": ":l_id"}),
            "COMMIT;",
            "",
        ]
    )


def _job(kind: str, payload: str, job_id: str) -> Params:
    return {
        "id": job_id,
        "kind": f"'{kind}'",
        "payload": f"{payload}::jsonb",
        "dispatched_at": "now()",
        "processed_at": "NULL",
        "attempts": "0",
        "last_error": "NULL",
        "created_at": "now()",
        "updated_at": "now()",
    }


def checkout_script() -> str:
    jobs = [
        _job("send_order_confirmation", "json_build_object('order_id', :o::text)", ":j1"),
        _job("send_sale_notice", "json_build_object('order_id', :o::text, 'seller_id', :s1::text)", ":j2"),
        _job("send_sale_notice", "json_build_object('order_id', :o::text, 'seller_id', :s2::text)", ":j3"),
        _job(
            "update_feed",
            "json_build_object('user_id', :uid::text, 'product_ids', json_build_array(:p1::text, :p2::text))",
            ":j4",
        ),
    ]
    return "\n".join(
        [
            "\\set i :i + 1",
            "\\set n :client_id * :per_client + :i - 1",
            "SELECT * FROM pgb_checkout WHERE n = :n \\gset",
            command(accounts.ACCOUNT_STATE, {"user_id": ":uid", "family_id": "gen_random_uuid()"}, gset="a_"),
            "BEGIN;",
            command(carts.TAKE_FOR_CHECKOUT_POSTGRES["user"], {"owner_id": ":uid"}),
            command(
                orders.PLACE_ORDER_POSTGRES,
                {
                    "id": ":o",
                    "buyer_id": ":uid",
                    "status": "'placed'",
                    "total": ":total",
                    "idempotency_key": ":key",
                    "created_at": "now()",
                    "updated_at": "now()",
                    "each_id": "ARRAY[gen_random_uuid(), gen_random_uuid()]",
                    "each_product_id": "ARRAY[:p1::uuid, :p2::uuid]",
                    "each_seller_id": "ARRAY[:s1::uuid, :s2::uuid]",
                    "each_name": "ARRAY[:n1::text, :n2::text]",
                    "each_unit_price": "ARRAY[:u1::numeric, :u2::numeric]",
                    "each_quantity": "ARRAY[:q1::int, :q2::int]",
                    "each_line_total": "ARRAY[:u1::numeric * :q1::int, :u2::numeric * :q2::int]",
                },
            ),
            command(
                orders.TAKE_ALL_POSTGRES,
                {
                    "ids": "ARRAY[:p1::uuid, :p2::uuid]",
                    "quantities": "ARRAY[:q1::int, :q2::int]",
                    "n": "2",
                    "now": "now()",
                },
            ),
            command(webhooks.SUBSCRIPTIONS, {"user_ids": "ARRAY[:s1::uuid, :s2::uuid]"}),
            "\\startpipeline",
            *(command(outbox.INSERT_JOB, job) for job in jobs),
            "\\endpipeline",
            "COMMIT;",
            "",
        ]
    )


# What each script needs, prepared from the carts the harness just filled.
PICKS = {
    "cart_add": """
        DROP TABLE IF EXISTS pgb_cart_add;
        CREATE UNLOGGED TABLE pgb_cart_add AS
        SELECT (row_number() OVER (ORDER BY u.n, p.id) - 1)::int AS n, u.id AS uid, p.id AS pid
        FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
        CROSS JOIN LATERAL (
            SELECT id FROM products WHERE id = ANY($2::uuid[]) AND seller_id <> u.id ORDER BY id LIMIT 3
        ) p;
        ALTER TABLE pgb_cart_add ADD PRIMARY KEY (n);
    """,
    "checkout": """
        DROP TABLE IF EXISTS pgb_checkout;
        CREATE UNLOGGED TABLE pgb_checkout AS
        WITH lines AS (
            SELECT c.user_id, c.id AS line, c.product_id, c.quantity, p.price, p.seller_id, p.name,
                   row_number() OVER (PARTITION BY c.user_id ORDER BY c.product_id) AS k
            FROM cart_items c JOIN products p ON p.id = c.product_id
            WHERE c.user_id = ANY($1::uuid[])
        )
        SELECT (row_number() OVER (ORDER BY a.user_id) - 1)::int AS n, a.user_id AS uid,
               a.line AS l1, b.line AS l2, a.product_id AS p1, b.product_id AS p2,
               a.quantity AS q1, b.quantity AS q2, a.price AS u1, b.price AS u2,
               a.seller_id AS s1, b.seller_id AS s2, a.name AS n1, b.name AS n2,
               a.price * a.quantity + b.price * b.quantity AS total,
               gen_random_uuid() AS o, 'pgbench-' || gen_random_uuid() AS key,
               gen_random_uuid() AS j1, gen_random_uuid() AS j2, gen_random_uuid() AS j3, gen_random_uuid() AS j4
        FROM lines a JOIN lines b ON b.user_id = a.user_id AND a.k = 1 AND b.k = 2;
        ALTER TABLE pgb_checkout ADD PRIMARY KEY (n);
    """,
}
SCRIPTS: dict[str, Callable[[], str]] = {"cart_add": cart_add_script, "checkout": checkout_script}


async def prepare(dsn: str, name: str, users: list[str], products: list[str]) -> int:
    """The table of ids the script picks from; how many rows it has."""
    conn = await asyncpg.connect(dsn)
    try:
        args = (users, products) if name == "cart_add" else (users,)
        for statement in filter(str.strip, PICKS[name].split(";")):
            await conn.execute(statement, *(args if "$" in statement else ()))
        return int(await conn.fetchval(f"SELECT count(*) FROM pgb_{name}"))
    finally:
        await conn.close()


def run(dsn: str, name: str, rows: int, *, connections: int, duration: float, threads: int = 2) -> dict[str, Any]:
    """One pgbench run of a script: transactions per second and latency percentiles (ms).

    ``checkout`` runs each prepared cart once (a cart is spent by its checkout); ``cart_add`` runs
    for ``duration`` seconds over random picks."""
    with tempfile.TemporaryDirectory(prefix="pgbench-") as scratch:
        work = Path(scratch)
        script = work / f"{name}.sql"
        script.write_text(SCRIPTS[name]())
        argv = ["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", str(threads), "-f", str(script)]
        argv += ["-l", "--log-prefix", str(work / "log")]
        if name == "checkout":
            per_client = rows // connections
            argv += ["-t", str(per_client), "-D", "i=0", "-D", f"per_client={per_client}"]
        else:
            argv += ["-T", str(max(1, round(duration))), "-D", f"picks={rows}"]
        done = subprocess.run([*argv, dsn], capture_output=True, text=True, timeout=duration + 600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr[-1500:]}")
        tps = float(re.search(r"tps = ([\d.]+) \(without initial", done.stdout).group(1))  # type: ignore[union-attr]
        latencies = sorted(
            int(fields[2])
            for log in work.glob("log*")
            for fields in (ln.split() for ln in log.read_text().splitlines())
        )
    failed = int(m.group(1)) if (m := re.search(r"number of failed transactions: (\d+)", done.stdout)) else 0

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000 if latencies else 0.0

    return {
        "requests": len(latencies),
        "rps": tps,
        "p50_ms": percentile(0.50),
        "p90_ms": percentile(0.90),
        "p99_ms": percentile(0.99),
        "errors": failed,
    }
