"""Every API route through a TestClient over the real app (SQLite store, FAISS index of the demo corpus),
including bad input: 401 / 404 / 409 / 413 / 422 / 429 answers with the JSON error body."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile

import pytest
from api_support import (
    Api,
    api_fixture,  # noqa: F401  (provides the `api` fixture)
    make_settings,
)
from openpyxl import Workbook, load_workbook

from service.api.export import HEADERS

GAP = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod"}


def error(resp) -> dict:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "field", "value"} <= set(body["error"])
    return body["error"]


# --- security and operations --------------------------------------------------------------------------------------


def _v1_operations(api: Api) -> list[tuple[str, str]]:
    ops = []
    for path, item in api.client.get("/openapi.json").json()["paths"].items():
        if path.startswith("/v1"):
            ops += [(method.upper(), path) for method in item]
    return ops


def test_every_v1_route_answers_401_without_a_key_or_with_a_wrong_one(api: Api):
    ops = _v1_operations(api)
    assert len(ops) >= 20
    wrong = {"X-API-Key": "cmk_0123456789ab_" + "x" * 43}
    for method, path in ops:
        url = path.replace("{fmt}", "csv").replace("{", "").replace("}", "")
        missing = api.client.request(method, url)
        assert missing.status_code == 401, (method, path, missing.text)
        assert error(missing)["code"] == "missing_api_key"
        bad = api.client.request(method, url, headers=wrong)
        assert bad.status_code == 401, (method, path)
        assert error(bad)["code"] == "invalid_api_key"


def test_me_names_the_tenant_of_the_key(api: Api):
    t = api.tenant()
    me = api.client.get("/v1/me", headers=t.headers).json()
    assert (me["tenant"], me["key_id"], me["key_name"]) == (t.name, t.key_id, "tests")


def test_key_is_checked_before_the_body_is_read(api: Api):
    for headers in ({}, {"X-API-Key": "cmk_0123456789ab_" + "x" * 43}):
        bad_json = api.client.post("/v1/recommendations", content=b"{not json", headers=headers)
        assert bad_json.status_code == 401
        bad_form = api.client.post(
            "/v1/enterprises/import",
            content=b"--x\r\n",
            headers={**headers, "Content-Type": "multipart/form-data; boundary=x"},
        )
        assert bad_form.status_code == 401
        assert "field" not in bad_json.json()["error"] or bad_json.json()["error"]["field"] is None


def test_revoked_key_is_refused(api: Api):
    from service.api.security import revoke_api_key

    t = api.tenant()
    assert api.client.get("/v1/regions", headers=t.headers).status_code == 200
    revoke_api_key(api.svc.store, t.key_id)
    assert api.client.get("/v1/regions", headers=t.headers).status_code == 401


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    limited = Api(make_settings(tmp_path, rate_limit_per_minute=3), warm=False)
    try:
        t, other = limited.tenant(), limited.tenant()
        codes = [limited.client.get("/v1/chains", headers=t.headers).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        resp = limited.client.get("/v1/chains", headers=t.headers)
        assert error(resp)["code"] == "rate_limited"
        assert int(resp.headers["Retry-After"]) >= 1
        assert limited.client.get("/v1/chains", headers=other.headers).status_code == 200  # per key
    finally:
        limited.close()


def test_health_readiness_and_metrics_need_no_key(api: Api):
    t = api.tenant()
    api.client.get("/v1/regions/manas", headers=t.headers)
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "index": "ok", "warmup": "done"}
    assert ready.json()["index_size"] > 400
    text = api.client.get("/metrics").text
    assert (
        'chainmatch_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/regions/{region_id}"}'
        in text
    )
    assert "chainmatch_index_size " in text and "chainmatch_pending_reembeds 0.0" in text
    assert 'route="/v1/regions/manas"' not in text  # labels are templates, never ids


def test_request_id_is_echoed_or_created(api: Api):
    resp = api.client.get("/healthz", headers={"X-Request-ID": "crm-42.a"})
    assert resp.headers["X-Request-ID"] == "crm-42.a"
    fresh = api.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert fresh.headers["X-Request-ID"] != "bad id with spaces" and len(fresh.headers["X-Request-ID"]) == 32


def test_openapi_documents_the_api_key_scheme_and_docs_page(api: Api):
    schema = api.client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    docs = api.client.get("/docs")
    assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn." not in docs.text and "http://" not in docs.text and "https://" not in docs.text
    asset = api.client.get("/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    assert api.client.get("/redoc").status_code == 404


def test_staff_page_is_served_with_a_strict_content_security_policy(api: Api):
    page = api.client.get("/")
    assert page.status_code == 200 and "招商工作台" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no CDN in the head
    assert api.client.get("/static/app.js").status_code == 200


def test_unexpected_failure_is_a_json_500_without_a_traceback(tmp_path):
    broken = Api(make_settings(tmp_path), warm=False)
    try:
        t = broken.tenant()
        with sqlite3.connect(tmp_path / "data" / "chainmatch.db") as conn:
            conn.execute("DROP TABLE lead_events")
            conn.execute("DROP TABLE leads")
        resp = broken.client.get("/v1/leads", headers=t.headers)
        assert resp.status_code == 500
        err = error(resp)
        assert err["code"] == "internal_error" and resp.headers["X-Request-ID"] in err["message"]
        assert "Traceback" not in resp.text and "sqlite" not in resp.text.lower()
    finally:
        broken.close()


def test_unknown_path_is_a_json_404(api: Api):
    resp = api.client.get("/v1/nothing-here", headers=api.tenant().headers)
    assert resp.status_code == 404 and error(resp)["code"] == "not_found"


# --- catalogue ----------------------------------------------------------------------------------------------------


def test_chains_list_and_detail(api: Api):
    h = api.tenant().headers
    chains = api.client.get("/v1/chains", headers=h).json()
    assert any(c["id"] == "aluminium" for c in chains)
    detail = api.client.get("/v1/chains/铝产业链", headers=h).json()
    assert detail["id"] == "aluminium" and any(x["id"] == "aluminium_rod" for x in detail["links"])
    missing = api.client.get("/v1/chains/no_such_chain", headers=h)
    assert missing.status_code == 404 and error(missing)["code"] == "unknown_chain"


# --- regions ------------------------------------------------------------------------------------------------------


def test_region_list_shows_the_shared_demo_regions(api: Api):
    regions = api.client.get("/v1/regions", headers=api.tenant().headers).json()
    manas = next(r for r in regions if r["id"] == "manas")
    assert manas["name"] == "玛纳斯县" and manas["shared"] is True and "aluminium" in manas["target_chains"]


def test_region_by_name_and_unknown_region(api: Api):
    h = api.tenant().headers
    assert api.client.get("/v1/regions/玛纳斯县", headers=h).json()["id"] == "manas"
    resp = api.client.get("/v1/regions/atlantis", headers=h)
    assert resp.status_code == 404
    assert error(resp) | {} and error(resp)["code"] == "unknown_region" and error(resp)["value"] == "atlantis"


def test_region_gaps_are_typed_and_prioritised(api: Api):
    gm = api.client.get(
        "/v1/regions/manas/gaps", params={"chain": "aluminium"}, headers=api.tenant().headers
    ).json()
    assert gm["chains"] == ["aluminium"]
    rod = next(g for g in gm["gaps"] if g["link_id"] == "aluminium_rod")
    assert rod["type"] in ("缺链", "短链") and rod["evidence"]
    assert [g["priority"] for g in gm["gaps"]] == sorted((g["priority"] for g in gm["gaps"]), reverse=True)


def test_region_gaps_hide_infeasible_links_unless_asked_and_name_presence_sources(api: Api):
    h = api.tenant().headers
    default = api.client.get("/v1/regions/manas/gaps", headers=h).json()
    assert "alumina" not in {g["link_id"] for g in default["gaps"]} and default["hidden"] >= 1
    assert default["present_sources"]["coal_power_generation"] == ["一体化配套"]
    full = api.client.get("/v1/regions/manas/gaps", params={"include_infeasible": True}, headers=h).json()
    alumina = next(g for g in full["gaps"] if g["link_id"] == "alumina")
    assert alumina["feasible"] is False and "铝土矿" in alumina["infeasible"][0] and full["hidden"] == 0


def test_province_gaps_leave_a_sub_regions_own_gaps_to_it_and_point_there_on_request(api: Api):
    h = api.tenant().headers
    default = api.client.get("/v1/regions/xinjiang/gaps", headers=h).json()
    assert default["delegated"], "the province repeats no county gap"
    moved = {d["link_id"]: d for d in default["delegated"]}
    assert not moved.keys() & {g["link_id"] for g in default["gaps"]}
    full = api.client.get("/v1/regions/xinjiang/gaps", params={"include_delegated": True}, headers=h).json()
    pointers = {g["link_id"]: g for g in full["gaps"] if g["delegated_to"]}
    assert pointers.keys() == moved.keys()
    d = next(iter(moved.values()))
    row = pointers[d["link_id"]]
    assert row["delegated_to"] == d["region_id"] and d["region_name"] in row["evidence"][0]
    svg = api.client.get("/v1/regions/xinjiang/gapmap.svg", params={"chain": d["chain_id"]}, headers=h).text
    assert f'data-link="{d["link_id"]}" data-state="delegated" data-delegated-to="{d["region_id"]}"' in svg


def test_region_gaps_concise_view_keeps_the_top_rows_of_each_chain_and_counts_the_rest(api: Api):
    """Issue 16 item 3: the concise view lists at most N rows per chain in priority order, without the variant rows
    (同类品种, an umbrella beside its parts) its head rows name; the full list stays the API default."""
    h = api.tenant().headers
    full = api.client.get("/v1/regions/yili/gaps", headers=h).json()
    short = api.client.get("/v1/regions/yili/gaps", params={"per_chain": 2}, headers=h).json()
    assert full["trimmed"] == 0 and short["trimmed"] == len(full["gaps"]) - len(short["gaps"]) > 0
    per_chain: dict[str, list[str]] = {}
    for g in full["gaps"]:
        if not g.get("variant_of"):
            per_chain.setdefault(g["chain_id"], []).append(g["link_id"])
    assert [g["link_id"] for g in short["gaps"]] == [
        g["link_id"] for g in full["gaps"] if g["link_id"] in per_chain[g["chain_id"]][:2]
    ]
    assert api.client.get("/v1/regions/yili/gaps", params={"per_chain": -1}, headers=h).status_code == 422


def test_region_gaps_with_unknown_chain_is_422_naming_it(api: Api):
    resp = api.client.get(
        "/v1/regions/manas/gaps", params={"chain": "unobtainium"}, headers=api.tenant().headers
    )
    assert resp.status_code == 422
    err = error(resp)
    assert err["code"] == "unknown_chain" and err["field"] == "chain" and err["value"] == "unobtainium"
    assert "未知产业链" in err["message"] and "aluminium" in err["allowed"]


def _region_body(**over) -> dict:
    body = {
        "id": "test_park",
        "name": "测试铝产业园",
        "level": "园区",
        "target_chains": ["铝产业链"],
        "residents": [
            {"name": "测试电解铝有限公司", "links": ["电解铝"], "chain_master": True, "size": "大"}
        ],
        "needs": [{"text": "发展铝棒", "chain": "aluminium", "links": ["aluminium_rod"], "gap_type": "短链"}],
        "aiding": ["江苏省"],
    }
    body.update(over)
    return body


def test_a_tenants_region_carries_endowments_projects_and_integrated_plants(api: Api):
    h = api.tenant().headers
    body = _region_body(
        residents=[{"name": "测试电解铝有限公司", "links": ["电解铝"], "integrated": ["燃煤发电"], "chain_master": True}],
        endowments=[{"key": "bauxite", "value": False, "note": "无铝土矿", "source": "测试地区矿产规划"}],
        projects=[{"name": "某铝棒项目", "links": ["铝棒"], "status": "签约", "source": "测试报道 2024"}],
    )
    assert api.client.post("/v1/regions", json=body, headers=h).status_code == 201
    gm = api.client.get("/v1/regions/test_park/gaps", headers=h).json()
    assert gm["present_sources"]["coal_power_generation"] == ["一体化配套"]
    assert "alumina" not in {g["link_id"] for g in gm["gaps"]} and gm["hidden"] >= 1
    rod = next(g for g in gm["gaps"] if g["link_id"] == "aluminium_rod")
    assert rod["priority_parts"]["project"] == -1.0
    bad = _region_body(projects=[{"name": "无来源项目", "links": ["铝棒"], "status": "签约"}])
    assert api.client.post("/v1/regions", json=bad, headers=h).status_code == 422


def test_create_region_resolves_names_and_drives_the_gap_diagnosis(api: Api):
    h = api.tenant().headers
    resp = api.client.post("/v1/regions", json=_region_body(), headers=h)
    assert resp.status_code == 201, resp.text
    region = resp.json()
    assert region["target_chains"] == ["aluminium"]
    assert region["residents"][0]["links"] == ["electrolytic_aluminium"]
    gm = api.client.get("/v1/regions/test_park/gaps", headers=h).json()
    rod = next(g for g in gm["gaps"] if g["link_id"] == "aluminium_rod")
    assert any("测试电解铝" in e for e in rod["evidence"])
    listed = api.client.get("/v1/regions", headers=h).json()
    assert next(r for r in listed if r["id"] == "test_park")["shared"] is False


def test_create_region_twice_is_409(api: Api):
    h = api.tenant().headers
    assert api.client.post("/v1/regions", json=_region_body(), headers=h).status_code == 201
    again = api.client.post("/v1/regions", json=_region_body(), headers=h)
    assert again.status_code == 409 and error(again)["code"] == "region_exists"


@pytest.mark.parametrize(
    ("override", "field", "value", "code"),
    [
        ({"target_chains": ["aluminium", "unobtainium"]}, "target_chains[1]", "unobtainium", "unknown_chain"),
        (
            {"residents": [{"name": "某企业", "links": ["flux_capacitor"]}]},
            "residents[0].links[0]",
            "flux_capacitor",
            "unknown_link",
        ),
        (
            {"needs": [{"text": "x", "chain": "aluminium", "links": ["polysilicon"]}]},
            "needs[0].links[0]",
            "polysilicon",
            "link_not_in_chain",
        ),
        ({"parent": "atlantis"}, "parent", "atlantis", "unknown_region"),
        ({"level": "星系"}, "level", "星系", "validation_error"),
        ({"id": "bad id!"}, "id", "bad id!", "validation_error"),
        ({"colour": "red"}, "colour", "red", "validation_error"),
    ],
)
def test_create_region_with_bad_input_is_422_naming_field_and_value(api: Api, override, field, value, code):
    resp = api.client.post("/v1/regions", json=_region_body(**override), headers=api.tenant().headers)
    assert resp.status_code == 422, resp.text
    err = error(resp)
    assert (err["code"], err["field"], err["value"]) == (code, field, value)


def test_put_replaces_the_tenants_region_and_delete_removes_it(api: Api):
    h = api.tenant().headers
    body = _region_body()
    body.pop("id")
    assert api.client.put("/v1/regions/my_park", json=body, headers=h).status_code == 200
    body["name"] = "改名后的园区"
    assert api.client.put("/v1/regions/my_park", json=body, headers=h).json()["name"] == "改名后的园区"
    assert api.client.get("/v1/regions/my_park", headers=h).json()["name"] == "改名后的园区"
    assert api.client.delete("/v1/regions/my_park", headers=h).status_code == 204
    assert api.client.get("/v1/regions/my_park", headers=h).status_code == 404
    assert api.client.delete("/v1/regions/my_park", headers=h).status_code == 404


def test_tenant_override_of_a_shared_region_leaves_it_unchanged_for_others(api: Api):
    a, b = api.tenant(), api.tenant()
    body = _region_body(name="甲方版玛纳斯")
    body.pop("id")
    assert api.client.put("/v1/regions/manas", json=body, headers=a.headers).status_code == 200
    assert api.client.get("/v1/regions/manas", headers=a.headers).json()["name"] == "甲方版玛纳斯"
    assert api.client.get("/v1/regions/manas", headers=b.headers).json()["name"] == "玛纳斯县"


def test_deleting_a_shared_region_is_403(api: Api):
    resp = api.client.delete("/v1/regions/manas", headers=api.tenant().headers)
    assert resp.status_code == 403 and error(resp)["code"] == "shared_read_only"


def test_gap_map_svg_colours_gaps_marks_the_chain_master_and_escapes_text(api: Api):
    h = api.tenant().headers
    body = _region_body(id="xss_park", name="<script>alert(1)</script>园区")
    assert api.client.post("/v1/regions", json=body, headers=h).status_code == 201
    resp = api.client.get("/v1/regions/xss_park/gapmap.svg", headers=h)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("image/svg+xml")
    svg = resp.text
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'data-link="aluminium_rod"' in svg and 'data-gap-type="短链"' in svg
    assert "★链主" in svg and 'data-state="present"' in svg
    manas = api.client.get("/v1/regions/manas/gapmap.svg", params={"chain": "aluminium"}, headers=h)
    assert manas.status_code == 200 and "玛纳斯县" in manas.text


# --- recommendations ----------------------------------------------------------------------------------------------


def test_recommendation_for_a_gap_explains_every_candidate(api: Api):
    resp = api.client.post("/v1/recommendations", json={**GAP, "k": 8}, headers=api.tenant().headers)
    assert resp.status_code == 200, resp.text
    rec = resp.json()
    assert rec["gap"]["link_id"] == "aluminium_rod" and 0 < len(rec["candidates"]) <= 8
    for c in rec["candidates"]:
        assert c["reasons"] and c["evidence_strength"] in ("strong", "medium", "weak") and c["strength_rule"]
        assert c["lead_status"] is None
    assert [c["rank"] for c in rec["candidates"]] == list(range(1, len(rec["candidates"]) + 1))


def test_recommendation_for_a_free_text_need(api: Api):
    resp = api.client.post(
        "/v1/recommendations",
        json={"province": "新疆", "text": "光伏组件 逆变器", "k": 5},
        headers=api.tenant().headers,
    )
    assert resp.status_code == 200 and resp.json()["candidates"]


def test_province_and_size_filters_restrict_candidates(api: Api):
    h = api.tenant().headers
    base = api.client.post("/v1/recommendations", json={**GAP, "k": 30}, headers=h).json()["candidates"]
    province = next(c["province"] for c in base if c["province"] and c["province"] != "新疆")
    only = api.client.post(
        "/v1/recommendations", json={**GAP, "k": 30, "filters": {"provinces": [province]}}, headers=h
    ).json()["candidates"]
    assert only and all(c["province"] == province for c in only)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({**GAP, "link": "flux_capacitor"}, "link", "unknown_link"),
        ({**GAP, "link": "polysilicon"}, "link", "link_not_in_chain"),
        ({**GAP, "chain": "unobtainium"}, "chain", "unknown_chain"),
        ({**GAP, "region": "atlantis"}, "region", "unknown_region"),
        ({**GAP, "k": 0}, "k", "validation_error"),
        ({**GAP, "k": 10_000}, "k", "validation_error"),
        ({**GAP, "filters": {"size": ["巨"]}}, "filters.size[0]", "validation_error"),
        ({"region": "manas"}, "text", "invalid_request"),
        ({**GAP, "tenant": "someone_else"}, "tenant", "validation_error"),
    ],
)
def test_bad_recommendation_requests_are_422_naming_the_field(api: Api, body, field, code):
    resp = api.client.post("/v1/recommendations", json=body, headers=api.tenant().headers)
    assert resp.status_code == 422, resp.text
    err = error(resp)
    assert (err["field"], err["code"]) == (field, code)


def test_region_recommendations_give_a_shortlist_per_gap(api: Api):
    resp = api.client.post(
        "/v1/regions/manas/recommendations",
        json={"chain": "aluminium", "k": 3, "max_gaps": 3},
        headers=api.tenant().headers,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["region_name"] == "玛纳斯县" and len(body["shortlists"]) == 3
    assert len({s["link_id"] for s in body["shortlists"]}) == 3
    assert all(len(s["candidates"]) <= 3 and s["gap"] for s in body["shortlists"])
    assert (
        api.client.post(
            "/v1/regions/atlantis/recommendations", json={}, headers=api.tenant().headers
        ).status_code
        == 404
    )


def test_enterprise_fit_lists_regions_whose_gaps_it_fills(api: Api):
    h = api.tenant().headers
    top = api.client.post("/v1/recommendations", json={**GAP, "k": 1}, headers=h).json()["candidates"][0]
    resp = api.client.get(f"/v1/enterprises/{top['enterprise_id']}/fit", params={"k": 5}, headers=h)
    assert resp.status_code == 200, resp.text
    fits = resp.json()["fits"]
    assert fits and all(f["reasons"] for f in fits)
    assert any(f["link_id"] == "aluminium_rod" for f in fits)
    assert api.client.get("/v1/enterprises/nobody/fit", headers=h).status_code == 404


# --- enterprises ----------------------------------------------------------------------------------------------------


def _crm_firm(**over) -> dict:
    firm = {
        "id": "crm-001",
        "name": "江苏测试铝棒制造有限公司",
        "province": "江苏省",
        "city": "无锡市",
        "products": [{"name": "6063铝棒", "share": 0.8}, {"name": "铝型材", "share": 0.2}],
        "employees": 600,
        "scope": "铝合金圆棒、铝型材的生产与销售",
    }
    firm.update(over)
    return firm


def test_search_and_get_shared_enterprises(api: Api):
    h = api.tenant().headers
    found = api.client.get("/v1/enterprises", params={"q": "嘉润"}, headers=h).json()
    assert found and "嘉润" in found[0]["name"] and found[0]["shared"] is True
    one = api.client.get(f"/v1/enterprises/{found[0]['id']}", headers=h)
    assert one.status_code == 200 and one.json()["name"] == found[0]["name"]
    assert api.client.get("/v1/enterprises", params={"q": ""}, headers=h).status_code == 422
    missing = api.client.get("/v1/enterprises/nobody", headers=h)
    assert missing.status_code == 404 and error(missing)["code"] == "unknown_enterprise"


def test_crm_upsert_reaches_the_index_without_a_rebuild(api: Api):
    t = api.tenant()
    resp = api.client.post("/v1/enterprises", json=[_crm_firm()], params={"wait": 30}, headers=t.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["inserted"], body["index"]) == (1, "updated") and body["ids"] == [f"{t.name}:crm-001"]
    rec = api.client.post("/v1/recommendations", json={**GAP, "k": 10}, headers=t.headers).json()
    assert f"{t.name}:crm-001" in [c["enterprise_id"] for c in rec["candidates"]]
    again = api.client.post("/v1/enterprises", json=[_crm_firm()], headers=t.headers).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 1)
    changed = api.client.post("/v1/enterprises", json=[_crm_firm(employees=900)], headers=t.headers).json()
    assert changed["updated"] == 1
    assert api.client.get("/v1/enterprises/crm-001", headers=t.headers).json()["employees"] == 900
    assert api.client.delete("/v1/enterprises/crm-001", headers=t.headers).status_code == 204
    assert api.client.get("/v1/enterprises/crm-001", headers=t.headers).status_code == 404
    rec = api.client.post("/v1/recommendations", json={**GAP, "k": 50}, headers=t.headers).json()
    assert f"{t.name}:crm-001" not in [c["enterprise_id"] for c in rec["candidates"]]


@pytest.mark.parametrize(
    ("items", "field", "code"),
    [
        ([_crm_firm(credit_code="91650000XXXXXXXXXX")], "[0].credit_code", "invalid_credit_code"),
        ([_crm_firm(name="")], "[0].name", "validation_error"),
        ([_crm_firm(employees=-5)], "[0].employees", "validation_error"),
        ([_crm_firm(id="a:b")], "[0].id", "validation_error"),
        ([_crm_firm(tenant="other")], "[0].tenant", "validation_error"),
        ([], "body", "empty_batch"),
        ([_crm_firm(id=f"x{i}") for i in range(1001)], "body", "validation_error"),
    ],
)
def test_bad_enterprise_batches_are_422(api: Api, items, field, code):
    resp = api.client.post("/v1/enterprises", json=items, headers=api.tenant().headers)
    assert resp.status_code == 422, resp.text
    err = error(resp)
    assert (err["code"], err["field"]) == (code, field)


def test_upsert_with_a_long_numeric_scope_answers_quickly(api: Api):
    import time

    t0 = time.perf_counter()
    resp = api.client.post(
        "/v1/enterprises", json=[_crm_firm(scope="0" * 6_000)], headers=api.tenant().headers
    )
    assert resp.status_code == 200
    assert time.perf_counter() - t0 < 1.5  # the quantity regex no longer backtracks on digit runs


def test_deleting_a_shared_enterprise_is_403(api: Api):
    h = api.tenant().headers
    shared = api.client.get("/v1/enterprises", params={"q": "嘉润"}, headers=h).json()[0]
    resp = api.client.delete(f"/v1/enterprises/{shared['id']}", headers=h)
    assert resp.status_code == 403 and error(resp)["code"] == "shared_read_only"
    assert api.client.get(f"/v1/enterprises/{shared['id']}", headers=h).status_code == 200


def _csv_upload(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["企业名称", "统一社会信用代码", "所属省份", "所属城市", "主营产品", "参保人数"])
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def test_uploaded_csv_with_a_bad_row_is_rejected_atomically_with_the_report(api: Api):
    t = api.tenant()
    data = _csv_upload(
        [
            ["浙江测试铝业有限公司", "", "浙江", "杭州市", "铝棒:0.7;铝型材:0.3", "300"],
            ["", "", "浙江", "", "铝棒", ""],
        ]
    )
    resp = api.client.post(
        "/v1/enterprises/import", files={"file": ("名单.csv", data, "text/csv")}, headers=t.headers
    )
    assert resp.status_code == 422, resp.text
    err = error(resp)
    assert err["code"] == "import_rejected" and "nothing written" in err["message"]
    assert err["details"][0]["row"] == 3 and err["details"][0]["field"]
    partial = api.client.post(
        "/v1/enterprises/import",
        files={"file": ("名单.csv", data, "text/csv")},
        data={"atomic": "false"},
        params={"wait": 30},
        headers=t.headers,
    ).json()
    assert partial["committed"] is True and partial["inserted"] == 1 and partial["index"] == "updated"
    found = api.client.get("/v1/enterprises", params={"q": "浙江测试铝业"}, headers=t.headers).json()
    assert found and found[0]["shared"] is False


def test_uploaded_xlsx_is_imported(api: Api):
    t = api.tenant()
    wb = Workbook()
    ws = wb.active
    ws.append(["企业名称", "所属省份", "主营产品"])
    ws.append(["福建测试铝型材有限公司", "福建", "铝型材、铝棒"])
    buf = io.BytesIO()
    wb.save(buf)
    resp = api.client.post(
        "/v1/enterprises/import",
        headers=t.headers,
        files={"file": ("list.xlsx", buf.getvalue(), "application/octet-stream")},
    )
    assert resp.status_code == 200 and resp.json()["inserted"] == 1 and resp.json()["format"] == "xlsx"


def test_upload_of_an_unsupported_file_type_is_422(api: Api):
    resp = api.client.post(
        "/v1/enterprises/import",
        files={"file": ("evil.exe", b"MZ", "application/octet-stream")},
        headers=api.tenant().headers,
    )
    assert (
        resp.status_code == 422
        and error(resp)["code"] == "unsupported_file"
        and error(resp)["value"] == "evil.exe"
    )


def test_upload_over_the_size_limit_is_413(tmp_path):
    small = Api(make_settings(tmp_path, max_upload_mb=1), warm=False)
    try:
        t = small.tenant()
        big = _csv_upload([[f"测试企业{i}有限公司", "", "江苏", "", "铝棒", ""] for i in range(40_000)])
        assert len(big) > 1024 * 1024
        resp = small.client.post(
            "/v1/enterprises/import", files={"file": ("big.csv", big, "text/csv")}, headers=t.headers
        )
        assert resp.status_code == 413 and error(resp)["code"] == "payload_too_large"

        def chunked():  # no Content-Length: the limit applies while streaming
            yield from (b"x" * 100_000 for _ in range(30))

        streamed = small.client.post(
            "/v1/recommendations", content=chunked(), headers={**t.headers, "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413 and error(streamed)["code"] == "payload_too_large"
    finally:
        small.close()


# --- leads, feedback, export -------------------------------------------------------------------------------------


def _shortlist(api: Api, headers: dict, k: int = 5) -> list[dict]:
    return api.client.post("/v1/recommendations", json={**GAP, "k": k}, headers=headers).json()["candidates"]


def test_shortlisting_creates_a_lead_with_the_candidate_context(api: Api):
    h = api.tenant().headers
    cand = _shortlist(api, h)[1]
    resp = api.client.post("/v1/leads", json={**GAP, "enterprise_id": cand["enterprise_id"]}, headers=h)
    assert resp.status_code == 201, resp.text
    lead = resp.json()
    assert lead["status"] == "线索" and lead["allowed_next"] == ["已接触", "已放弃"]
    assert lead["context"]["rank"] == cand["rank"] and lead["context"]["features"] == cand["features"]
    again = api.client.post("/v1/leads", json={**GAP, "enterprise_id": cand["enterprise_id"]}, headers=h)
    assert again.status_code == 200 and again.json()["id"] == lead["id"]
    marked = _shortlist(api, h)[1]
    assert (marked["lead_id"], marked["lead_status"]) == (lead["id"], "线索")


def test_lead_moves_through_the_workflow_and_every_change_is_a_feedback_event(api: Api):
    h = api.tenant().headers
    cand = _shortlist(api, h)[0]
    lead = api.client.post(
        "/v1/leads", json={**GAP, "enterprise_id": cand["enterprise_id"]}, headers=h
    ).json()
    for status in ("已接触", "已考察", "已签约"):
        resp = api.client.patch(
            f"/v1/leads/{lead['id']}", json={"status": status, "note": f"{status}备注"}, headers=h
        )
        assert resp.status_code == 200 and resp.json()["status"] == status
    events = api.client.get(f"/v1/leads/{lead['id']}/events", headers=h).json()
    assert [e["to_status"] for e in events] == ["线索", "已接触", "已考察", "已签约"]
    feedback = api.client.get("/v1/feedback/events", headers=h).json()
    assert len(feedback) == 4 and feedback[-1]["label"] == 1 and feedback[-1]["final"] is True
    assert feedback[-1]["features"] == cand["features"] and feedback[-1]["actor"] == "tests"
    assert api.client.get("/v1/leads", params={"status": "已签约"}, headers=h).json()[0]["id"] == lead["id"]


def test_invalid_lead_transitions_are_422_with_the_allowed_statuses(api: Api):
    h = api.tenant().headers
    cand = _shortlist(api, h)[0]
    lead = api.client.post(
        "/v1/leads", json={**GAP, "enterprise_id": cand["enterprise_id"]}, headers=h
    ).json()
    skip = api.client.patch(f"/v1/leads/{lead['id']}", json={"status": "已签约"}, headers=h)
    assert skip.status_code == 422
    err = error(skip)
    assert (err["code"], err["field"], err["value"], err["allowed"]) == (
        "invalid_transition",
        "status",
        "已签约",
        ["已接触", "已放弃"],
    )
    no_reason = api.client.patch(f"/v1/leads/{lead['id']}", json={"status": "已放弃"}, headers=h)
    assert no_reason.status_code == 422 and error(no_reason)["field"] == "reason"
    bogus = api.client.patch(f"/v1/leads/{lead['id']}", json={"status": "已完成"}, headers=h)
    assert bogus.status_code == 422 and error(bogus)["field"] == "status"
    dropped = api.client.patch(
        f"/v1/leads/{lead['id']}", json={"status": "已放弃", "reason": "无投资意向"}, headers=h
    )
    assert dropped.json()["status"] == "已放弃" and dropped.json()["allowed_next"] == ["线索"]


@pytest.mark.parametrize(
    ("override", "field", "code"),
    [
        ({"enterprise_id": "nobody"}, "enterprise_id", "unknown_enterprise"),
        ({"region": "atlantis"}, "region", "unknown_region"),
        ({"link": "polysilicon"}, "link", "link_not_in_chain"),
        ({"status": "已签约"}, "status", "validation_error"),
    ],
)
def test_bad_lead_requests_are_422(api: Api, override, field, code):
    h = api.tenant().headers
    cand = _shortlist(api, h, k=1)[0]
    resp = api.client.post(
        "/v1/leads", json={**GAP, "enterprise_id": cand["enterprise_id"], **override}, headers=h
    )
    assert resp.status_code == 422 and (error(resp)["field"], error(resp)["code"]) == (field, code)


def test_unknown_lead_is_404(api: Api):
    h = api.tenant().headers
    for resp in (
        api.client.get("/v1/leads/nope", headers=h),
        api.client.patch("/v1/leads/nope", json={}, headers=h),
        api.client.get("/v1/leads/nope/events", headers=h),
    ):
        assert resp.status_code == 404 and error(resp)["code"] == "unknown_lead"


def test_xlsx_export_lists_the_leads_with_chinese_headers(api: Api):
    h = api.tenant().headers
    cands = _shortlist(api, h, k=3)
    for c in cands:
        api.client.post("/v1/leads", json={**GAP, "enterprise_id": c["enterprise_id"]}, headers=h)
    resp = api.client.get("/v1/regions/manas/shortlist.xlsx", headers=h)
    assert resp.status_code == 200
    assert "filename*=UTF-8''" in resp.headers["content-disposition"]
    ws = load_workbook(io.BytesIO(resp.content)).active
    assert [c.value for c in ws[1]] == list(HEADERS)
    names = [ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)]
    assert sorted(names) == sorted(c["name"] for c in cands)
    assert {ws.cell(row=r, column=12).value for r in range(2, ws.max_row + 1)} == {"线索"}
    assert all(ws.cell(row=r, column=6).value == "铝棒" for r in range(2, ws.max_row + 1))


def test_csv_export_without_leads_lists_the_current_recommendations(api: Api):
    resp = api.client.get(
        "/v1/regions/manas/shortlist.csv", params={"k": 2, "max_gaps": 2}, headers=api.tenant().headers
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0] == list(HEADERS) and 1 <= len(rows) - 1 <= 4
    assert all(r[11] == "未跟进" for r in rows[1:])


def test_export_escapes_formula_like_enterprise_names(api: Api):
    t = api.tenant()
    evil = _crm_firm(id="evil", name='=HYPERLINK("http://evil.example","点我")有限公司')
    assert api.client.post("/v1/enterprises", json=[evil], headers=t.headers).status_code == 200
    lead = api.client.post(
        "/v1/leads", json={**GAP, "enterprise_id": "evil", "note": "@SUM(A1)"}, headers=t.headers
    )
    assert lead.status_code == 201, lead.text
    xlsx = api.client.get("/v1/regions/manas/shortlist.xlsx", headers=t.headers)
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    # an XLSX text cell: shown as typed (no visible leading quote) and never evaluated as a formula
    assert ws.cell(row=2, column=2).value.startswith("=HYPERLINK")
    assert ws.cell(row=2, column=2).data_type == "s" and ws.cell(row=2, column=13).value == "@SUM(A1)"
    with zipfile.ZipFile(io.BytesIO(xlsx.content)) as zf:
        assert "<f>" not in zf.read("xl/worksheets/sheet1.xml").decode("utf-8")
    text = api.client.get("/v1/regions/manas/shortlist.csv", headers=t.headers).content.decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_post_export_lists_exactly_the_given_enterprises(api: Api):
    h = api.tenant().headers
    cands = _shortlist(api, h, k=3)
    ids = [cands[2]["enterprise_id"], cands[0]["enterprise_id"]]
    resp = api.client.post(
        "/v1/regions/manas/shortlist.csv",
        json={"enterprise_ids": ids, "chain": "aluminium", "link": "aluminium_rod"},
        headers=h,
    )
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert [r[13] for r in rows[1:]] == ids and rows[1][10]
    bad = api.client.post("/v1/regions/manas/shortlist.xlsx", json={"enterprise_ids": ["nobody"]}, headers=h)
    assert bad.status_code == 422 and error(bad)["field"] == "enterprise_ids[0]"
    fmt = api.client.get("/v1/regions/manas/shortlist.pdf", headers=h)
    assert fmt.status_code == 422 and error(fmt)["field"] == "fmt"
