"""Sales reports over HTTP (SQLite and Postgres): request, poll, download, and who may see what."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.reports import Report, ReportKind, ReportStatus
from tests.helpers import drain_jobs, in_app, user_headers
from tests.integration.sales_data import add_sales


async def wait_done(client: Any, container: Any, report_id: str, headers: dict[str, str]) -> dict[str, Any]:
    await drain_jobs(client, container, 60)
    r = await client.get(f"/api/reports/{report_id}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_request_poll_download(client: Any, container: Any) -> None:
    seller, headers = await user_headers(client)
    _, other_headers = await user_headers(client)
    r = await client.post(
        "/api/reports", json={"kind": "sales", "from": "2025-01-01", "to": "2025-01-31"}, headers=headers
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and uuid.UUID(body["id"]) and body["download_url"] is None
    assert r.headers["location"] == f"/api/reports/{body['id']}"

    report = await wait_done(client, container, body["id"], headers)
    assert report["status"] == "done" and report["kind"] == "sales"
    assert report["finished_at"] and report["created_at"]
    assert report["download_url"] == f"/api/reports/{body['id']}/download"
    assert report["from"] == "2025-01-01" and report["to"] == "2025-01-31"

    download = await client.get(report["download_url"], headers=headers)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == 'attachment; filename="sales-2025-01-01-to-2025-01-31.csv"'
    assert download.text.splitlines() == [
        "order_id,created_at,product_id,name,unit_price,quantity,line_total,status",
        "TOTAL,,,,,0,0.00,placed",
    ]

    for path in (f"/api/reports/{body['id']}", f"/api/reports/{body['id']}/download"):
        assert (await client.get(path, headers=other_headers)).status_code == 404
        assert (await client.get(path)).status_code == 401
    for bad in ("not-a-uuid", str(uuid.uuid4())):
        assert (await client.get(f"/api/reports/{bad}", headers=headers)).status_code == 404
        assert (await client.get(f"/api/reports/{bad}/download", headers=headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"kind": "sales", "from": "2025-02-01", "to": "2025-01-01"}, 422, "to"),
        ({"kind": "sales", "from": "2024-01-01", "to": "2025-12-31"}, 422, "to"),
        ({"kind": "refunds", "from": "2025-01-01", "to": "2025-01-31"}, 422, "kind"),
        ({"kind": "sales", "from": "2025-01-01"}, 400, "to"),
        ({"kind": "sales", "from": "yesterday", "to": "2025-01-31"}, 400, "from"),
    ],
)
async def test_invalid_requests(client: Any, body: dict[str, Any], status: int, field: str) -> None:
    _, headers = await user_headers(client)
    r = await client.post("/api/reports", json=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.text


async def test_not_done_is_409(client: Any, container: Any) -> None:
    user, headers = await user_headers(client)
    now = datetime.now(UTC)
    report = Report(
        id=uuid.uuid4(),
        owner_id=uuid.UUID(user["id"]),
        kind=ReportKind.SALES,
        status=ReportStatus.RUNNING,
        period_from=date(2025, 1, 1),
        period_to=date(2025, 1, 2),
        created_at=now,
        updated_at=now,
    )

    async def add() -> None:
        async with container.adapters.requests.uow() as uow:
            await uow.reports.add(report)
            await uow.commit()

    await in_app(client, add)
    r = await client.get(f"/api/reports/{report.id}", headers=headers)
    assert r.json()["status"] == "running" and r.json()["download_url"] is None
    r = await client.get(f"/api/reports/{report.id}/download", headers=headers)
    assert r.status_code == 409 and "not ready" in r.json()["detail"]


async def test_ten_thousand_lines(client: Any, container: Any) -> None:
    seller, headers = await user_headers(client)
    other, _ = await user_headers(client)
    buyer, _ = await user_headers(client)
    expected = await in_app(
        client,
        lambda: add_sales(
            container.adapters.requests.db,
            seller_id=uuid.UUID(seller["id"]),
            other_seller_id=uuid.UUID(other["id"]),
            buyer_id=uuid.UUID(buyer["id"]),
            count=10_000,
            start=datetime(2025, 3, 1, tzinfo=UTC),
            days=31,
        ),
    )
    started = time.perf_counter()
    r = await client.post(
        "/api/reports", json={"kind": "sales", "from": "2025-03-01", "to": "2025-03-31"}, headers=headers
    )
    report = await wait_done(client, container, r.json()["id"], headers)
    elapsed = time.perf_counter() - started
    assert report["status"] == "done", report
    download = await client.get(report["download_url"], headers=headers)
    rows = list(csv.DictReader(io.StringIO(download.text)))
    body, totals = rows[:-1], rows[-1]
    assert len(body) == expected.lines == 10_000
    assert {row["name"] for row in body} == {'Lamp, "deluxe"'}  # quoted properly, other sellers left out
    stamps = [row["created_at"] for row in body]
    assert stamps == sorted(stamps) and stamps[0] >= "2025-03-01" and stamps[-1] < "2025-04-01"
    assert sum(Decimal(row["line_total"]) for row in body if row["status"] == "placed") == expected.placed_total
    assert totals["order_id"] == "TOTAL"
    assert int(totals["quantity"]) == expected.placed_quantity
    assert Decimal(totals["line_total"]) == expected.placed_total
    assert all(Decimal(r["unit_price"]) * int(r["quantity"]) == Decimal(r["line_total"]) for r in body)
    print(f"10k-line sales report on {container.adapters.requests.db.dialect}: {elapsed:.2f}s end to end")
