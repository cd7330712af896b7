"""No 5xx from any input: lone surrogates, NUL, NaN/Infinity, out-of-range and wrongly typed numbers are rejected
with 422 naming the field — the same on SQLite and PostgreSQL — and nothing is silently coerced or stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from api_support import Api, make_settings
from store_backends import PG_URL, _pg_admin, _pg_unreachable

from matcher.store import ALL_TENANTS


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp(f"guards-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'store.db'}"
        schema = None
    else:
        reason = _pg_unreachable()
        if reason:
            pytest.skip(reason)
        schema = f"cm_test_{uuid.uuid4().hex[:12]}"
        _pg_admin(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    a = Api(make_settings(root, database_url=url))
    try:
        yield a
    finally:
        a.close()
        if schema:
            _pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def headers(api: Api) -> dict[str, str]:
    return api.tenant("guard").headers


def _raw(api: Api, headers: dict[str, str], body: str):
    return api.client.post(
        "/v1/enterprises", content=body.encode("utf-8"), headers={**headers, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('[{"name": "\\ud800abc"}]', "name"),
        ('[{"name": "甲\\u0000乙有限公司"}]', "name"),
        ('[{"name": "甲有限公司", "scope": "铝\\udfff棒"}]', "scope"),
        ('[{"name": "甲有限公司", "extra": {"备注": "\\ud800"}}]', "extra"),
        ('[{"name": "甲有限公司", "revenue": NaN}]', "revenue"),
        ('[{"name": "甲有限公司", "revenue": Infinity}]', "revenue"),
        ('[{"name": "甲有限公司", "revenue": 1e400}]', "revenue"),
        ('[{"name": "甲有限公司", "revenue": false}]', "revenue"),
        ('[{"name": "甲有限公司", "employees": 9223372036854775808}]', "employees"),
        ('[{"name": "甲有限公司", "employees": true}]', "employees"),
        ('[{"name": "甲有限公司", "products": [{"name": "铝棒", "share": NaN}]}]', "products"),
    ],
)
def test_bad_values_are_422_naming_the_field_and_store_nothing(api: Api, headers, body: str, field: str):
    before = api.svc.store.count_enterprises(ALL_TENANTS)
    resp = _raw(api, headers, body)
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert field in (err["field"] or "") + err["message"], err
    assert api.svc.store.count_enterprises(ALL_TENANTS) == before


@pytest.mark.parametrize("q", ["%00", "a%00b", "%ED%A0%80", "%FF%FE"])
def test_bad_query_text_is_422_not_a_wildcard_or_5xx(api: Api, headers, q: str):
    resp = api.client.get(f"/v1/enterprises?q={q}&limit=5", headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == "q"


def test_valid_numbers_still_pass(api: Api, headers):
    body = '[{"name": "合规数值测试有限公司", "revenue": 12, "employees": 300, "registered_capital": 5000.5}]'
    resp = _raw(api, headers, body)
    assert resp.status_code in (200, 201), resp.text
