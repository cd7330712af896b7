"""Rough edges of issue #13 item 5: names accepted where ids are, unknown ids never answer 200 [], honest import
exit codes, no stale commands in the API docs, no internal tags in user text, no repeated products, named unknown
filters, partial bulk upserts, and a readable recall@K plot."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api_support import (
    Api,
    api_fixture,  # noqa: F401  (provides the `api` fixture)
)

GAP = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod"}


def _error(resp) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]


def _lead(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    rec = api.client.post("/v1/recommendations", json={**GAP, "k": 3}, headers=headers)
    assert rec.status_code == 200, rec.text
    cand = rec.json()["candidates"][0]
    resp = api.client.post("/v1/leads", json={**GAP, "enterprise_id": cand["enterprise_id"]}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


# --- 1. / 2. region names and unknown ids on the leads, regions and enterprises routes ------------------------------


def test_leads_filter_accepts_region_names_like_every_other_route(api: Api):
    h = api.tenant().headers
    lead = _lead(api, h)
    by_id = api.client.get("/v1/leads", params={"region": "manas"}, headers=h).json()
    by_name = api.client.get("/v1/leads", params={"region": "玛纳斯县"}, headers=h)
    assert by_name.status_code == 200, by_name.text
    assert [x["id"] for x in by_name.json()] == [x["id"] for x in by_id] == [lead["id"]]


def test_leads_filter_with_an_unknown_region_or_enterprise_names_it(api: Api):
    h = api.tenant().headers
    _lead(api, h)
    resp = api.client.get("/v1/leads", params={"region": "不存在县"}, headers=h)
    assert resp.status_code in (404, 422), resp.text
    err = _error(resp)
    assert err["code"] == "unknown_region" and err["field"] == "region" and "不存在县" in err["message"]
    resp = api.client.get("/v1/leads", params={"enterprise_id": "no-such-firm"}, headers=h)
    assert resp.status_code in (404, 422), resp.text
    assert _error(resp)["code"] == "unknown_enterprise" and "no-such-firm" in _error(resp)["message"]


def test_leads_filter_by_enterprise_accepts_the_tenant_s_unscoped_id(api: Api):
    h = api.tenant().headers
    lead = _lead(api, h)
    got = api.client.get("/v1/leads", params={"enterprise_id": lead["enterprise_id"]}, headers=h)
    assert got.status_code == 200 and [x["id"] for x in got.json()] == [lead["id"]]


@pytest.mark.parametrize(
    "method,url",
    [
        ("GET", "/v1/leads/no-such-lead"),
        ("GET", "/v1/leads/no-such-lead/events"),
        ("PATCH", "/v1/leads/no-such-lead"),
        ("GET", "/v1/regions/no-such-region"),
        ("GET", "/v1/regions/no-such-region/gaps"),
        ("GET", "/v1/regions/no-such-region/gapmap.svg"),
        ("DELETE", "/v1/regions/no-such-region"),
        ("POST", "/v1/regions/no-such-region/recommendations"),
        ("GET", "/v1/regions/no-such-region/shortlist.csv"),
        ("GET", "/v1/enterprises/no-such-firm"),
        ("GET", "/v1/enterprises/no-such-firm/fit"),
        ("DELETE", "/v1/enterprises/no-such-firm"),
        ("GET", "/v1/regions/manas/gaps?chain=no-such-chain"),
    ],
)
def test_unknown_ids_answer_404_or_422_never_200(api: Api, method: str, url: str):
    h = api.tenant().headers
    body = {"status": "已接触"} if method == "PATCH" else {} if method == "POST" else None
    resp = api.client.request(method, url, headers=h, json=body)
    assert resp.status_code in (404, 422), (method, url, resp.status_code, resp.text[:300])
    err = _error(resp)
    assert err["code"].startswith("unknown_"), err
    assert err["value"] and str(err["value"]) in err["message"], err


# --- 3. `chainmatch import --no-atomic` when rows are rejected -----------------------------------------------------


def _write_csv(path, rows: list[list[str]]):
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["企业名称", "统一社会信用代码", "所属省份", "所属城市", "主营产品", "曾用名"])
        w.writerows(rows)
    return path


def _cli(*args: str):
    from typer.testing import CliRunner

    from service.cli import app

    return CliRunner().invoke(app, list(args))


def test_no_atomic_import_with_every_row_rejected_exits_2_and_says_nothing_was_written(tmp_path):
    path = _write_csv(
        tmp_path / "all-bad.csv", [["甲有限公司", "123", "新疆", "", "", ""], ["", "", "新疆", "", "铝棒", ""]]
    )
    result = _cli("import", str(path), "--no-atomic")
    assert result.exit_code == 2, result.output
    assert "NOTHING written" in result.output and "all 2 rows rejected" in result.output
    assert re.search(r"; written[;,]", result.output) is None
    assert "nothing written: all 2 rows of all-bad.csv were rejected" in result.output
    as_json = _cli("import", str(path), "--no-atomic", "--json")
    assert as_json.exit_code == 2


def test_no_atomic_import_with_some_rows_rejected_says_how_many_were_written(tmp_path):
    path = _write_csv(
        tmp_path / "some-bad.csv",
        [["甲有限公司", "", "新疆", "", "", ""], ["乙有限公司", "", "新疆", "", "", ""], ["丙有限公司", "1", "新疆", "", "", ""]],
    )
    result = _cli("import", str(path), "--no-atomic")
    assert result.exit_code == 0, result.output
    assert "written 2 rows, rejected 1" in result.output


def test_import_help_documents_the_exit_codes():
    out = _cli("import", "--help").output
    assert "Exit codes" in out and "0 =" in out and "1 =" in out and "2 =" in out


# --- 4. every `chainmatch …` command the OpenAPI text quotes exists -----------------------------------------------


def _cli_path_exists(tokens: list[str]) -> tuple[bool, str]:
    import click
    import typer.main

    from service.cli import app

    cmd: click.Command = typer.main.get_command(app)
    walked: list[str] = []
    for tok in tokens:
        if not isinstance(cmd, click.Group):
            break
        if tok.startswith("-") or tok.isupper() or tok in ("|", "…", "..."):
            return False, f"'chainmatch {' '.join(walked)}' needs a sub-command, got {tok!r}"
        sub = cmd.commands.get(tok)
        if sub is None:
            return False, f"no command {tok!r} under 'chainmatch {' '.join(walked)}'".replace("  ", " ")
        walked.append(tok)
        cmd = sub
    if isinstance(cmd, click.Group):
        return False, f"'chainmatch {' '.join(walked)}' is a group, not a command"
    return True, ""


def test_every_chainmatch_command_quoted_in_the_openapi_text_exists(api: Api):
    import json

    text = json.dumps(api.client.get("/openapi.json").json(), ensure_ascii=False)
    quoted = re.findall(r"`(chainmatch [^`]+)`", text)
    assert quoted, "the OpenAPI text quotes no chainmatch command (the test would check nothing)"
    problems = []
    for cmd in quoted:
        ok, why = _cli_path_exists(cmd.split()[1:])
        if not ok:
            problems.append(f"{cmd}: {why}")
    assert not problems, problems
    assert "chainmatch store import" not in text


# --- 5. no internal authoring tags ("(seed 002)") in user-facing text ---------------------------------------------

_SEED = re.compile(r"(?<![A-Za-z_])seed(?![A-Za-z_])|public fact", re.IGNORECASE)


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in _strings(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in _strings(v, f"{path}[{i}]")]
    return []


def test_strip_internal_tags_keeps_the_note_and_drops_the_tag():
    from matcher.text import strip_internal_tags

    assert strip_internal_tags("签约16个项目 (seed 000). 阜康") == "签约16个项目. 阜康"
    assert strip_internal_tags("落户 (seed 000/003; 据链主所在地推断)") == "落户 (据链主所在地推断)"
    assert strip_internal_tags("引进 (江西龙泰已决定落户, seed 003)") == "引进 (江西龙泰已决定落户)"
    assert strip_internal_tags("示范区 (public fact); 页岩油") == "示范区; 页岩油"
    assert strip_internal_tags("seed_industry、grape_seedlings") == "seed_industry、grape_seedlings"


def test_no_user_facing_region_gap_or_recommendation_text_contains_internal_tags(api: Api):
    h = api.tenant().headers
    regions = api.client.get("/v1/regions", headers=h).json()
    assert len(regions) > 5
    leaks: list[tuple[str, str]] = []
    for r in regions:
        for url in (f"/v1/regions/{r['id']}", f"/v1/regions/{r['id']}/gaps"):
            resp = api.client.get(url, headers=h)
            assert resp.status_code == 200, (url, resp.text[:200])
            leaks += [(url + p, s) for p, s in _strings(resp.json()) if _SEED.search(s)]
        svg = api.client.get(f"/v1/regions/{r['id']}/gapmap.svg", headers=h)
        if svg.status_code == 200:
            leaks += [(f"{r['id']} gapmap.svg", m) for m in _SEED.findall(svg.text)]
    rec = api.client.post("/v1/regions/manas/recommendations", json={"k": 5, "max_gaps": 5}, headers=h)
    assert rec.status_code == 200, rec.text
    leaks += [("manas recommendations" + p, s) for p, s in _strings(rec.json()) if _SEED.search(s)]
    one = api.client.post("/v1/recommendations", json={**GAP, "k": 10}, headers=h)
    leaks += [("recommendation" + p, s) for p, s in _strings(one.json()) if _SEED.search(s)]
    assert not leaks, leaks[:10]


def test_demo_regions_carry_no_internal_tags():
    from matcher.knowledge.gaps import diagnose
    from matcher.knowledge.regions import default_regions

    book = default_regions()
    from matcher.knowledge.catalogue import default_catalogue

    catalogue = default_catalogue()
    for region in book:
        gm = diagnose(region, catalogue, book=book)
        texts = _strings(region.model_dump(mode="json")) + _strings(gm.model_dump(mode="json"))
        assert not [s for _, s in texts if _SEED.search(s)], region.id


# --- 6. a product is named once per reason and once in matched_products -------------------------------------------


def _repeats(items: list[str]) -> list[str]:
    return sorted({x for x in items if items.count(x) > 1})


@pytest.mark.parametrize(
    "body",
    [
        {"text": "汽车铝合金压铸件", "k": 50},
        {"region": "manas", "chain": "aluminium", "k": 100},
        {"text": "铝合金压铸 汽车零部件 轻量化", "k": 50},
    ],
)
def test_reasons_and_matched_products_name_each_product_once(api: Api, body: dict[str, Any]):
    h = api.tenant().headers
    resp = api.client.post("/v1/recommendations", json=body, headers=h)
    assert resp.status_code == 200, resp.text
    cands = resp.json()["candidates"]
    assert cands
    for c in cands:
        names = [p[0] if isinstance(p, list) else p["name"] for p in c["matched_products"]]
        assert not _repeats(names), (c["name"], c["matched_products"])
        for reason in c["reasons"]:
            m = re.search(r"主营(.+)$", reason)
            if m:
                parts = m.group(1).split("、")
                assert not _repeats(parts), (c["name"], reason)


def test_explain_deduplicates_products_of_several_matched_links():
    from matcher.ranking.explain import dedupe_products

    got = dedupe_products([("汽车铝合金压铸件", 0.95), ("汽车铝合金压铸件", 0.95), ("铝棒", None), ("铝棒", 0.3)])
    assert got == [("汽车铝合金压铸件", 0.95), ("铝棒", 0.3)]


# --- 7. unknown province filters are named -------------------------------------------------------------------------


def test_unknown_province_filter_is_422_naming_the_values(api: Api):
    h = api.tenant().headers
    body = {**GAP, "filters": {"provinces": ["浙江", "火星省", "江苏省", "Atlantis"]}}
    resp = api.client.post("/v1/recommendations", json=body, headers=h)
    assert resp.status_code == 422, resp.text
    err = _error(resp)
    assert err["code"] == "unknown_province" and err["field"] == "filters.provinces[1]"
    assert "未知省份：火星省、Atlantis" in err["message"] and "新疆" in err["allowed"]
    region = api.client.post(
        "/v1/regions/manas/recommendations", json={"filters": {"provinces": ["火星省"]}}, headers=h
    )
    assert region.status_code == 422 and "未知省份：火星省" in _error(region)["message"]


def test_known_province_filters_in_short_or_full_form_still_work(api: Api):
    h = api.tenant().headers
    for provinces in (["浙江", "广东"], ["浙江省", "广东省"], ["新疆维吾尔自治区"]):
        resp = api.client.post(
            "/v1/recommendations", json={"text": "汽车铝合金压铸件", "filters": {"provinces": provinces}}, headers=h
        )
        assert resp.status_code == 200, (provinces, resp.text)


# --- 9. the recall@K plot: full and the baselines stand out, ablations on request ----------------------------------

_ABLATIONS = ("full-dense", "full-bm25", "full-link_fit", "full-capacity", "full-context", "full-industry", "full-mmr")
_OTHERS = ("random", "popularity", "hybrid", "dense", "bm25-matcher", "graph", "reranker-cv")


@pytest.fixture(scope="module")
def many_systems_result():
    from evaluation.baselines import make_baselines
    from evaluation.harness import run_evaluation
    from evaluation.synthetic import make_synthetic_benchmark

    bench = make_synthetic_benchmark(n_cases=12, n_docs=120, n_not_in_corpus=0, seed=3)
    base = make_baselines(bench.docs, ["random", "popularity", "tfidf", "bm25"])
    systems = {"full": base["bm25"], **base}
    for name in _OTHERS + _ABLATIONS:
        systems.setdefault(name, base["tfidf"])
    assert len(systems) == 17
    return run_evaluation(bench.cases, systems, k_max=50, baseline="tfidf", docs=bench.docs, n_resamples=200)


def test_recall_plot_draws_full_and_the_baselines_prominently_others_grey_no_ablations(many_systems_result):
    from evaluation.report import GREY, _curve_figure

    fig = _curve_figure(many_systems_result)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"full", "tfidf", "bm25", *_OTHERS}, sorted(traces)
    for name in ("full", "tfidf", "bm25"):
        assert traces[name].line.color != GREY and traces[name].line.width >= 3, name
    for name in _OTHERS:
        assert traces[name].line.color == GREY and traces[name].line.width <= 1, name
    assert [t.name for t in fig.data][-3:] == ["full", "tfidf", "bm25"]  # drawn on top
    colours = [traces[n].line.color for n in ("full", "tfidf", "bm25")]
    assert len(set(colours)) == 3


def test_recall_plot_draws_the_ablations_on_request(many_systems_result, tmp_path):
    from evaluation.report import GREY, _curve_figure, write_outputs

    fig = _curve_figure(many_systems_result, plot_ablations=True)
    traces = {t.name: t for t in fig.data}
    assert len(traces) == 17 and set(_ABLATIONS) <= set(traces)
    for name in _ABLATIONS:
        assert traces[name].line.color != GREY and traces[name].line.dash == "dash", name
    with_abl = write_outputs(many_systems_result, tmp_path / "a", plot_ablations=True)["report"].read_text("utf-8")
    without = write_outputs(many_systems_result, tmp_path / "b")["report"].read_text("utf-8")
    lines = '"mode":"lines"'  # the recall@K curves (the slice plots are bars)
    assert with_abl.replace(": ", ":").count(lines) == 17 and without.replace(": ", ":").count(lines) == 10


def test_evaluate_cli_has_the_plot_ablations_option():
    out = _cli("evaluate", "--help").output
    assert "--plot-ablations" in out


# --- 8. bulk upsert: ?on_error=skip stores the good rows; an atomic batch that stores nothing is 422 -------------

from store_backends import store_url  # noqa: E402,F401  (fixture: SQLite file and PostgreSQL schema)

_GOOD = {"name": "浙江测试压铸有限公司", "province": "浙江", "products": [{"name": "铝合金压铸件", "share": 0.8}]}
_GOOD2 = {"id": "crm-2", "name": "江苏测试铝业有限公司", "province": "江苏省", "products": [{"name": "铝棒"}]}
_BAD_CODE = {"name": "坏信用代码有限公司", "credit_code": "123"}
_NO_NAME = {"province": "浙江"}
_BAD_TYPE = {"name": "员工数不对有限公司", "employees": "很多"}


def _check_partial_upsert(api: Api) -> None:
    h = api.tenant().headers
    batch = [_GOOD, _BAD_CODE, _NO_NAME, _GOOD2, _BAD_TYPE]

    atomic = api.client.post("/v1/enterprises", json=batch, headers=h)
    assert atomic.status_code == 422, atomic.text
    assert _error(atomic)["field"].startswith("[1]") or _error(atomic)["field"].startswith("[2]")
    assert api.client.get("/v1/enterprises", params={"q": "浙江测试压铸"}, headers=h).json() == []

    resp = api.client.post("/v1/enterprises", json=batch, params={"on_error": "skip", "wait": 30}, headers=h)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["inserted"], body["rejected"], len(body["ids"])) == (2, 3, 2)
    items = body["items"]
    assert [x["index"] for x in items] == [0, 1, 2, 3, 4]
    assert items[0]["id"] and items[0]["error"] is None and items[3]["id"].endswith("crm-2")
    assert items[1]["id"] is None and items[1]["error"]["field"] == "credit_code"
    assert "credit code" in items[1]["error"]["reason"] and items[1]["error"]["value"] == "123"
    assert items[2]["error"]["field"] == "name" and items[2]["error"]["reason"]
    assert items[4]["error"]["field"] == "employees" and items[4]["error"]["value"] == "很多"
    found = api.client.get("/v1/enterprises", params={"q": "浙江测试压铸"}, headers=h).json()
    assert found and found[0]["shared"] is False

    nothing = api.client.post(
        "/v1/enterprises", json=[_BAD_CODE, _NO_NAME], params={"on_error": "skip"}, headers=h
    )
    assert nothing.status_code == 422, nothing.text
    err = _error(nothing)
    assert err["code"] == "all_items_rejected" and [d["index"] for d in err["details"]] == [0, 1]
    assert err["details"][0]["field"] == "credit_code"


def test_partial_bulk_upsert_on_sqlite_and_postgresql(tmp_path, store_url: str):  # noqa: F811
    from api_support import make_settings

    api = Api(make_settings(tmp_path, database_url=store_url))
    try:
        _check_partial_upsert(api)
    finally:
        api.close()


def test_default_bulk_upsert_stays_atomic_with_the_same_error_format(api: Api):
    h = api.tenant().headers
    resp = api.client.post("/v1/enterprises", json=[_GOOD, _NO_NAME], headers=h)
    assert resp.status_code == 422
    err = _error(resp)
    assert err["code"] == "validation_error" and err["field"] == "[1].name"
    assert err["details"][0]["field"] == "[1].name"
    bad_code = api.client.post("/v1/enterprises", json=[_GOOD, _BAD_CODE], headers=h)
    assert bad_code.status_code == 422 and _error(bad_code)["field"] == "[1].credit_code"
    bad_param = api.client.post("/v1/enterprises", json=[_GOOD], params={"on_error": "maybe"}, headers=h)
    assert bad_param.status_code == 422 and _error(bad_param)["field"] == "on_error"


def test_upload_that_writes_nothing_is_422_with_the_rejects(api: Api):
    import csv
    import io

    h = api.tenant().headers
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["企业名称", "统一社会信用代码", "所属省份"])
    w.writerows([["甲有限公司", "123", "浙江"], ["", "", "浙江"]])
    data = buf.getvalue().encode("utf-8")
    for atomic in ("true", "false"):
        resp = api.client.post(
            "/v1/enterprises/import", files={"file": ("bad.csv", data, "text/csv")}, data={"atomic": atomic}, headers=h
        )
        assert resp.status_code == 422, (atomic, resp.text)
        err = _error(resp)
        assert err["code"] == "import_rejected" and [d["row"] for d in err["details"]] == [2, 3]
        assert "bad.csv" in err["message"] and "nothing written" in err["message"]


def test_openapi_documents_on_error_and_the_per_item_results(api: Api):
    spec = api.client.get("/openapi.json").json()
    op = spec["paths"]["/v1/enterprises"]["post"]
    on_error = next(p for p in op["parameters"] if p["name"] == "on_error")
    assert on_error["schema"]["enum"] == ["atomic", "skip"] and on_error["schema"]["default"] == "atomic"
    props = spec["components"]["schemas"]["UpsertResult"]["properties"]
    assert {"rejected", "items"} <= set(props)
    assert {"index", "id", "error"} <= set(spec["components"]["schemas"]["UpsertItem"]["properties"])

