"""Finish the generated OpenAPI document: problem-details errors on every operation.

Litestar documents success responses from the handlers' types; the errors come from one place
(problems.py), so they are documented from one place too: each operation gets the error
responses it can actually produce, all as ``application/problem+json`` with one ``Problem``
schema, so client generators and schema-driven fuzzers see the real contract.
"""

from __future__ import annotations

from litestar.openapi.spec import OpenAPI, OpenAPIMediaType, OpenAPIResponse, Operation, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

from entrypoints.http.problems import PROBLEM_JSON
from entrypoints.http.ratelimit import THROTTLED_PATHS

PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="Problem",
    description="RFC 9457 problem details.",
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "field": Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)]),
                    "message": Schema(type=OpenAPIType.STRING),
                    "source": Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)]),
                },
            ),
        ),
    },
    examples=[
        {
            "type": "https://httpstatuses.io/422",
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "price: Price may have at most two decimal places.",
            "errors": [{"field": "price", "message": "Price may have at most two decimal places."}],
        }
    ],
)
DESCRIPTIONS = {
    "400": "Malformed JSON, a body that is not UTF-8, wrong types, unknown query values or a cursor "
    "the service did not issue for this list.",
    "401": "Missing, expired, tampered or revoked credentials.",
    "403": "Authenticated, but not allowed to act on this resource.",
    "404": "No such resource (or it is private to someone else).",
    "409": "Conflicts with current state: a duplicate, a spent token, not enough stock.",
    "413": "Request body larger than 1 MiB.",
    "422": "Well-formed input that breaks a rule, or a NUL character in any string (body, form, query, "
    "path or header); `errors` names the fields.",
    "429": "Too many requests; see the Retry-After header.",
    "503": "A backing service is unavailable, or the request did not finish within the request deadline "
    "(REQUEST_DEADLINE_SECONDS); retry after Retry-After. For /ready: `errors` names each check that is down "
    "or stalled.",
}
_GUEST_CART_THROTTLED = "/api/cart/guest"


def _codes(path: str, method: str, op: Operation) -> set[str]:
    codes = {"503", "422"} if path.startswith("/api") else set()  # 422: NUL anywhere in the request
    if path == "/ready":
        codes.add("503")
    secured = op.security != [{}]
    if secured:
        codes |= {"401"}
    params = op.parameters or []
    if params or op.request_body is not None:
        codes.add("400")
    if any(getattr(p, "param_in", None) == "path" for p in params) or "{" in path:
        codes.add("404")
    if op.request_body is not None:
        codes |= {"413", "422"}
    if method in {"post", "put", "patch", "delete"} and path.startswith("/api"):
        codes |= {"409", "422"}
        if secured:
            codes.add("403")
    if path in THROTTLED_PATHS or path == _GUEST_CART_THROTTLED:
        codes.add("429")
    if path in {"/api/auth/login", "/api/auth/token", "/api/auth/refresh"}:
        codes |= {"401", "429"}
    return codes


_ID = "01936f0e-5a1c-7c3e-9a55-3f1d2b4c5d6e"
_WHEN = "2026-11-26T09:30:00Z"
_USER_REF = {"id": "01936f0e-1111-7c3e-9a55-3f1d2b4c5d6e", "username": "alice"}
_CATEGORY_REF = {"id": "01936f0e-2222-7c3e-9a55-3f1d2b4c5d6e", "name": "Kitchen", "slug": "kitchen"}
_SUMMARY = {
    "id": _ID,
    "seller": _USER_REF,
    "name": "Burr coffee grinder",
    "price": "89.00",
    "image_url": None,
    "category": _CATEGORY_REF,
    "stock": 6,
    "rating_avg": 4.5,
    "review_count": 2,
    "favorite_count": 7,
    "created_at": _WHEN,
    "updated_at": _WHEN,
}
# Examples for schemas whose fields carry none, so generated docs and clients show real shapes.
EXAMPLES: dict[str, object] = {
    "UserOut": {
        "id": _USER_REF["id"],
        "username": "alice",
        "email": "alice@example.com",
        "email_verified": True,
        "role": "user",
        "created_at": _WHEN,
        "updated_at": _WHEN,
    },
    "UserRefOut": _USER_REF,
    "CartSellerView": _USER_REF,
    "CategoryRefOut": _CATEGORY_REF,
    "TokenPairOut": {
        "access_token": "eyJhbGciOiJIUzI1NiJ9...",
        "refresh_token": "q3Vb0n...",
        "token_type": "bearer",
        "expires_in": 900,
    },
    "RefreshBody": {"refresh_token": "q3Vb0n..."},
    "TokenBody": {"token": "mZ1x9k..."},
    "PasswordResetBody": {"email": "alice@example.com"},
    "OAuth2PasswordForm": {
        "username": "alice@example.com",
        "password": "correct horse battery",
        "grant_type": "password",
    },
    "ProductSummaryOut": _SUMMARY,
    "ProductOut": {**_SUMMARY, "description": "Conical burrs, 40 grind settings."},
    "CategoryOut": {**_CATEGORY_REF, "parent_id": "01936f0e-3333-7c3e-9a55-3f1d2b4c5d6e", "product_count": 42},
    "ReviewIn": {"rating": 5, "comment": "Grinds evenly and quietly."},
    "ReviewPatch": {"rating": 4},
    "ReviewOut": {
        "id": _ID,
        "product_id": _SUMMARY["id"],
        "author": _USER_REF,
        "rating": 5,
        "comment": "Grinds evenly and quietly.",
        "verified_purchase": True,
        "created_at": _WHEN,
        "updated_at": _WHEN,
    },
    "FavoriteOut": {"product": _SUMMARY, "created_at": _WHEN},
    "PublicProfileOut": {
        "id": _USER_REF["id"],
        "username": "alice",
        "created_at": _WHEN,
        "product_count": 12,
        "rating_avg": 4.62,
    },
    "ReportRequest": {"kind": "sales", "from": "2026-10-01", "to": "2026-10-31"},
    "ReportOut": {
        "id": _ID,
        "kind": "sales",
        "status": "done",
        "created_at": _WHEN,
        "finished_at": _WHEN,
        "download_url": f"/api/reports/{_ID}/download",
        "from": "2026-10-01",
        "to": "2026-10-31",
        "error": None,
    },
    "RecommendationsOut": {
        "items": [{"product": _SUMMARY, "score": 0.82, "reason": "because you favorited Pour-over kettle"}]
    },
    "SimilarProductsOut": {"items": [{"product": _SUMMARY, "score": 0.64}]},
}


def document_errors(doc: OpenAPI) -> OpenAPI:
    components = doc.components
    if not isinstance(components, list):
        components.schemas = {**(components.schemas or {}), "Problem": PROBLEM_SCHEMA}
        for name, example in EXAMPLES.items():
            schema = components.schemas.get(name)
            if isinstance(schema, Schema) and not schema.examples:
                schema.examples = [example]
    problem = OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))
    for path, item in (doc.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            op: Operation | None = getattr(item, method, None)
            if op is None:
                continue
            responses = dict(op.responses or {})
            for code in sorted(_codes(path, method, op) | {c for c in responses if c[0] in "45"}):
                responses[code] = OpenAPIResponse(
                    description=DESCRIPTIONS.get(code, "Error."), content={PROBLEM_JSON: problem}
                )
            op.responses = responses
    return doc
