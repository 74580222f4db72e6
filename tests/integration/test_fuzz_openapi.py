"""Schema-driven fuzzing: every operation of the OpenAPI document, in-process, authenticated.

No 5xx, and every answer matches its documented status codes, content types and schemas.
Bounded for CI (FUZZ_MAX_EXAMPLES, default 8 per operation); `make fuzz` runs it longer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.python import asgi

from adapters.sql.database import migrate
from entrypoints.http.app import create_app
from tests.conftest import test_settings

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "8"))
PASSWORD = "correct horse battery"
_FOLDER = Path(tempfile.mkdtemp(prefix="mkt-fuzz-"))
_DB_URL = f"sqlite+aiosqlite:///{_FOLDER / 'fuzz.db'}"
migrate(_DB_URL)
APP = create_app(test_settings(DATABASE_URL=_DB_URL, VAR_DIR=str(_FOLDER / "var"), LOGIN_FAILURE_LIMIT="1000000"))
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", APP)


@pytest.fixture(scope="module")
def auth_headers() -> dict[str, str]:
    with asgi.get_client(APP) as client:
        client.post(
            "/api/auth/register", json={"username": "fuzzer", "email": "fuzzer@example.com", "password": PASSWORD}
        )
        token = client.post("/api/auth/login", json={"email": "fuzzer", "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_operation_conforms(case, auth_headers) -> None:
    if case.path == "/api/users/me" and case.method == "DELETE":
        pytest.skip("deleting the fuzzing account would end the run's authentication")
    if case.path == "/api/auth/logout":
        pytest.skip("logging out would revoke the fuzzing token")
    case.call_and_validate(
        headers=auth_headers,
        checks=[
            st_checks.not_a_server_error,
            st_checks.status_code_conformance,
            st_checks.content_type_conformance,
            st_checks.response_schema_conformance,
        ],
    )
