"""Issue 15 items 3 and 6: stock code, listing status, group and provenance (sources, as-of date, fiction) show in
the enterprise JSON, the recommendation JSON, the CLI and the XLSX/CSV exports."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from api_support import Api, make_settings, seed_demo_store
from openpyxl import load_workbook

from matcher.records import Enterprise, Product
from service.api.export import HEADERS, ShortlistRow, to_csv
from service.cli.store import format_profile

REQ = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod", "k": 30}
DELISTED = Enterprise(
    id="ashare-600205", name="山东示例铝业股份有限公司", province="山东", stock_code="600205", source="ashare:wp19991",
    products=[Product(name="铝棒", share=0.7)], parent_group="示例铝业集团",
    extra={"listing_status": "delisted", "former_names": ["山东旧名铝业"], "sources": ["ashare:wp19991", "crm"]},
)  # fmt: skip


@pytest.fixture
def api(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    client = Api(make_settings(seed_demo_store(tmp_path / "demo", tmp_path_factory)))
    yield client
    client.close()


def test_enterprise_json_spells_out_provenance_status_and_fiction(api: Api):
    h = api.tenant("pv").headers
    api.svc.store.upsert_enterprises([DELISTED])
    body = api.client.get(f"/v1/enterprises/{DELISTED.id}", headers=h).json()
    assert body["sources"] == ["ashare:wp19991", "crm"] and len(body["as_of"]) == 10
    assert (body["listing_status"], body["group"], body["fictional"]) == ("delisted", "示例铝业集团", False)
    assert body["former_names"] == ["山东旧名铝业"]
    found = api.client.get("/v1/enterprises", params={"q": "示例硅棒"}, headers=h).json()
    assert found and all(f["fictional"] for f in found if "示例" in f["name"])


def test_recommendations_and_exports_carry_provenance(api: Api):
    h = api.tenant("pv").headers
    cands = api.client.post("/v1/recommendations", json=REQ, headers=h).json()["candidates"]
    assert cands and all(c["sources"] and c["as_of"] for c in cands)
    assert all(set(c["retrieved_by"]) <= {"dense", "lexical", "graph", "tfidf", "related"} for c in cands)
    fictional = [c for c in cands if c["fictional"]]
    assert fictional and all(c["sources"] == ["authored:fictional"] for c in fictional)

    resp = api.client.get("/v1/regions/manas/shortlist.xlsx", params={"k": 10, "max_gaps": 3}, headers=h)
    ws = load_workbook(io.BytesIO(resp.content)).active
    col = {name: i + 1 for i, name in enumerate(HEADERS)}
    rows = [[ws.cell(row=r, column=c).value for c in range(1, len(HEADERS) + 1)] for r in range(2, ws.max_row + 1)]
    assert rows and all(r[col["数据来源"] - 1] and r[col["数据日期"] - 1] for r in rows)
    for r in rows:
        marked = r[col["数据性质"] - 1] == "虚构示例（非真实企业）"
        assert marked == r[col["企业名称"] - 1].endswith("（虚构示例）")


def test_export_cells_for_a_delisted_listed_group_firm():
    row = ShortlistRow(rank=1, name="山东示例铝业", stock_code="600205", listing_status="delisted", group="示例铝业集团",
                       sources=["ashare:wp19991", "crm"], as_of="2026-11-30")  # fmt: skip
    table = list(csv.reader(io.StringIO(to_csv([row]).decode("utf-8-sig"))))
    got = dict(zip(table[0], table[1], strict=True))
    assert (got["股票代码"], got["上市状态"], got["所属集团"]) == ("600205", "已退市", "示例铝业集团")
    assert (got["数据来源"], got["数据日期"], got["数据性质"]) == ("ashare:wp19991、crm", "2026-11-30", "")


def test_cli_profile_shows_status_group_sources_and_fiction():
    text = format_profile(DELISTED)
    for expected in ("股票代码: 600205", "上市状态: 已退市", "所属集团: 示例铝业集团", "曾用名: 山东旧名铝业",
                     "来源: ashare:wp19991、crm", "数据日期: "):  # fmt: skip
        assert expected in text, text
    fiction = Enterprise(id="f", name="哈密示例硅棒有限公司", source="authored:fictional", tags=["虚构示例"])
    assert "性质: 虚构示例（演示数据，并非真实企业）" in format_profile(fiction)


def test_the_api_takes_a_firms_plant_sites(api: Api):
    h = api.tenant("st").headers
    body = [{"name": "戊铝业有限公司", "province": "江苏", "sites": ["新疆昌吉州玛纳斯县", " 新疆昌吉州玛纳斯县 "]}]
    resp = api.client.post("/v1/enterprises", json=body, headers=h)
    assert resp.status_code == 200, resp.text
    stored = api.client.get(f"/v1/enterprises/{resp.json()['items'][0]['id']}", headers=h).json()
    assert stored["extra"]["sites"] == ["新疆昌吉州玛纳斯县"]
