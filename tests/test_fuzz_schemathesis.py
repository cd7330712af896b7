"""Property-based fuzzing of every operation in the app's own OpenAPI schema (schemathesis): with a valid key no
input yields a server error and every response conforms to the documented status codes, content types and
schemas; with a wrong key every operation answers a documented 401."""

from __future__ import annotations

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

import uuid  # noqa: E402

from api_support import make_settings, seed_demo_store  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from store_backends import PG_URL, _pg_admin, _pg_unreachable  # noqa: E402

from service.api.app import create_app  # noqa: E402
from service.api.security import create_api_key  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 10


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fuzz_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The app on a SQLite file and on PostgreSQL: no input may give a 5xx on either store."""
    schema_name = None
    if request.param == "sqlite":
        root: Path = seed_demo_store(tmp_path_factory.mktemp("fuzz"), tmp_path_factory)
        settings_ = make_settings(root, rate_limit_per_minute=0)
    else:
        reason = _pg_unreachable()
        if reason:
            pytest.skip(reason)
        schema_name = f"cm_fuzz_{uuid.uuid4().hex[:12]}"
        _pg_admin(f'CREATE SCHEMA "{schema_name}"')
        root = tmp_path_factory.mktemp("fuzz-pg")
        url = f"{PG_URL}?options=-csearch_path%3D{schema_name}"
        settings_ = make_settings(root, rate_limit_per_minute=0, database_url=url)
    app = create_app(settings_, warm=False)
    _, key = create_api_key(app.state.service.store, "fuzzer", "schemathesis")
    app.state.fuzz_key = key
    app.state.service.warm()  # demo corpus and index, so recommendation routes run for real
    yield app
    app.state.service.close()
    if schema_name:
        app.state.service.store.close()
        _pg_admin(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')




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
