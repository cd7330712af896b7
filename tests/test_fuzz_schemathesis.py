"""Property-based fuzzing of every operation in the app's own OpenAPI schema (schemathesis): with a valid key no
input yields a server error and every response conforms to the documented status codes, content types and
schemas; with a wrong key every operation answers a documented 401."""

from __future__ import annotations

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from api_support import make_settings, seed_demo_store  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from service.api.app import create_app  # noqa: E402
from service.api.security import create_api_key  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 10


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory):
    root: Path = seed_demo_store(tmp_path_factory.mktemp("fuzz"), tmp_path_factory)
    app = create_app(make_settings(root, rate_limit_per_minute=0), warm=False)
    _, key = create_api_key(app.state.service.store, "fuzzer", "schemathesis")
    app.state.fuzz_key = key
    app.state.service.warm()  # demo corpus and index, so recommendation routes run for real
    yield app
    app.state.service.close()




@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_valid_key_no_server_errors_and_responses_match_the_schema(case, fuzz_app):
    case.call_and_validate(headers={"X-API-Key": fuzz_app.state.fuzz_key}, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_wrong_key_is_always_a_documented_401(case, fuzz_app):
    response = case.call_and_validate(headers={"X-API-Key": "cmk_0123456789ab_" + "w" * 43}, checks=CHECKS)
    if case.path.startswith("/v1") and response.status_code != 405:  # 405: methods the path does not have
        assert response.status_code == 401, (case.method, case.path, response.status_code)
        assert response.json()["error"]["code"] in ("invalid_api_key", "missing_api_key")
