"""Honest operations: `index status` counts every tenant's rows (not the shared corpus only), and region parent
chains that loop are refused in region files and over the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from api_support import Api, make_settings
from typer.testing import CliRunner

from matcher.errors import RegionFileError
from matcher.indexing import build_index, index_status
from matcher.knowledge.regions import load_regions
from matcher.records import Enterprise, Product
from matcher.settings import get_settings
from matcher.store import Store
from matcher.store.demo import load_demo_enterprises
from models.embedders import HashEmbedder
from service.cli import app

runner = CliRunner()


def test_index_status_is_inconsistent_while_tenant_rows_are_missing():
    settings = get_settings()
    settings.ensure_dirs()
    store = Store.from_settings(settings)
    store.upsert_enterprises(load_demo_enterprises()[:40])
    build_index(store, embedder=HashEmbedder(), settings=settings)
    assert index_status(settings, store)["consistent"] is True
    private = [Enterprise(id=f"p{i}", name=f"租户私有{i}号有限公司", products=[Product(name="铝棒")]) for i in range(3)]
    store.upsert_enterprises(private, tenant="acme")
    status = index_status(settings, store)
    assert status["store_count"] == 43 and status["missing"] == 3
    assert status["consistent"] is False
    store.close()
    out = runner.invoke(app, ["index", "status", "--json"])
    assert '"consistent": false' in out.output and '"missing": 3' in out.output, out.output


def test_region_file_with_a_parent_loop_is_refused(tmp_path: Path):
    regions = [
        {"id": "a", "name": "甲县", "level": "县市", "province": "新疆", "parent": "b"},
        {"id": "b", "name": "乙州", "level": "地州", "province": "新疆", "parent": "a"},
    ]
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump(regions, allow_unicode=True), "utf-8")
    with pytest.raises(RegionFileError, match="loops"):
        load_regions(tmp_path)


def test_api_refuses_a_parent_that_would_loop(tmp_path: Path):
    api = Api(make_settings(tmp_path), warm=False)
    try:
        h = api.tenant("loop").headers
        c = api.client
        assert c.put("/v1/regions/p1", json={"name": "园区一", "level": "园区"}, headers=h).status_code == 200
        assert c.put("/v1/regions/p2", json={"name": "园区二", "level": "园区", "parent": "p1"},
                     headers=h).status_code == 200
        resp = c.put("/v1/regions/p1", json={"name": "园区一", "level": "园区", "parent": "p2"}, headers=h)
        assert resp.status_code == 422, resp.text
        err = resp.json()["error"]
        assert err["code"] == "invalid_parent" and err["field"] == "parent" and "p1 → p2 → p1" in err["message"]
    finally:
        api.close()


def test_405_allow_header_lists_every_method_of_the_path(tmp_path: Path):
    api = Api(make_settings(tmp_path), warm=False)
    try:
        h = api.tenant("allow").headers
        resp = api.client.patch("/v1/regions/manas", headers=h)
        assert resp.status_code == 405
        allowed = {m.strip() for m in resp.headers["allow"].split(",")}
        assert {"GET", "PUT", "DELETE"} <= allowed, allowed
        resp = api.client.delete("/v1/enterprises", headers=h)
        assert resp.status_code == 405 and {"GET", "POST"} <= set(resp.headers["allow"].replace(" ", "").split(","))
    finally:
        api.close()


def test_heavy_requests_cost_one_token_per_ranking(tmp_path: Path):
    api = Api(make_settings(tmp_path, rate_limit_per_minute=30))
    try:
        h = api.tenant("heavy").headers
        c = api.client
        ok = c.post("/v1/regions/manas/recommendations", json={"k": 5, "max_gaps": 20}, headers=h)
        assert ok.status_code == 200, ok.text
        # ~21 of 30 tokens spent by one request: the next 20-gap export cannot be covered
        resp = c.get("/v1/regions/manas/shortlist.xlsx", params={"k": 50, "max_gaps": 20}, headers=h)
        assert resp.status_code == 429, resp.status_code
        err = resp.json()["error"]
        assert "20" in err["message"] and int(resp.headers["retry-after"]) >= 1
        # a single recommendation still costs one token
        one = c.post("/v1/recommendations", json={"region": "manas", "chain": "aluminium",
                                                  "link": "aluminium_rod", "k": 5}, headers=h)
        assert one.status_code == 200, one.text
    finally:
        api.close()
