"""A real checkout over HTTP mails the buyer a confirmation and each seller their lines (.eml files)."""

from __future__ import annotations

import email
import email.policy
import uuid
from typing import Any

from tests.helpers import admin_headers, drain_jobs, user_headers


async def _product(client: Any, headers: dict[str, str], category_id: str, name: str, price: str) -> str:
    body = {"name": name, "description": "", "price": price, "image_url": None, "category_id": category_id, "stock": 5}
    r = await client.post("/api/products", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_checkout_sends_confirmation_and_sale_notices(client: Any, container: Any) -> None:
    _, admin = await admin_headers(client, container)
    r = await client.post("/api/categories", json={"name": f"Lamps {uuid.uuid4().hex[:6]}"}, headers=admin)
    assert r.status_code == 201, r.text
    category = r.json()["id"]
    ann, ann_h = await user_headers(client)
    bob, bob_h = await user_headers(client)
    buyer, buyer_h = await user_headers(client)
    lamp = await _product(client, ann_h, category, "Desk lamp", "19.99")
    rug = await _product(client, bob_h, category, "Rug", "100.00")
    for product, quantity in ((lamp, 2), (rug, 1)):
        r = await client.post("/api/cart/items", json={"product_id": product, "quantity": quantity}, headers=buyer_h)
        assert r.status_code in (200, 201), r.text
    r = await client.post("/api/cart/checkout", headers=buyer_h)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]
    await drain_jobs(client, container)

    mails = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in container.settings.outbox_dir.glob("*.eml")
    ]
    about_order = {str(m["To"]): m for m in mails if order_id in str(m["Subject"])}
    assert set(about_order) == {buyer["email"], ann["email"], bob["email"]}

    def text(to: str) -> str:
        body = about_order[to].get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())

    assert "Total: 139.98" in text(buyer["email"])
    assert "Desk lamp" in text(ann["email"]) and "Rug" not in text(ann["email"])
    assert "Rug" in text(bob["email"]) and "Desk lamp" not in text(bob["email"])
