"""Issue 15: one record per firm — field-level merges with provenance, stock-code identity, any import order gives
the same store (SQLite and PostgreSQL), and the real corpora through the CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matcher.records import Enterprise, LinkMatch, Product
from matcher.store.identity import merge_profiles, source_rank
from service.cli import app as cli

pytest_plugins = ["store_backends"]

ASHARE = "ashare:test"
DEMO = "authored:public-facts"


def ashare_firm(**kw) -> Enterprise:
    base = dict(
        id="ashare-600089", name="特变电工股份有限公司", province="新疆", city="昌吉回族自治州", stock_code="600089",
        employees=27583, sw_industry="输变电设备", source=ASHARE,
        products=[Product(name="变压器产品", share=0.3), Product(name="新能源产业及配套工程", share=0.2)],
        links=[LinkMatch(link_id="transformer", score=0.95, method="alias", evidence="变压器产品", share=0.3)],
        updated_at=datetime(2026, 6, 30, tzinfo=timezone.utc),
    )  # fmt: skip
    return Enterprise(**{**base, **kw})


def demo_firm(**kw) -> Enterprise:
    base = dict(
        id="demo-0038", name="特变电工股份有限公司", province="新疆", stock_code="600089", source=DEMO,
        products=[Product(name="输变电产品"), Product(name="多晶硅")], aliases=["特变电工", "TBEA"],
        parent_group="特变电工集团", scope="输变电、新能源、新材料", extra={"note": "昌吉州链主"},
        updated_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
    )  # fmt: skip
    return Enterprise(**{**base, **kw})


def _content(e: Enterprise) -> dict:
    return e.model_dump(mode="json", exclude={"id", "updated_at"})


def test_sources_are_ranked_and_data_outranks_authored_examples():
    assert source_rank("authored:fictional") < source_rank(DEMO) < source_rank("crm") < source_rank(ASHARE)


def test_a_merge_never_loses_a_known_value_and_records_where_each_came_from():
    merged, conflicts = merge_profiles(ashare_firm(), demo_firm())
    assert merged.employees == 27583 and merged.sw_industry == "输变电设备"  # the demo has none: kept
    assert [p.name for p in merged.products] == ["变压器产品", "新能源产业及配套工程"]  # A-share outranks
    assert merged.links[0].link_id == "transformer"  # links follow the products kept
    assert merged.parent_group == "特变电工集团" and merged.scope  # only the demo knew these: filled in
    assert "TBEA" in merged.aliases and merged.source == ASHARE and merged.id == "ashare-600089"
    prov = merged.extra["provenance"]
    assert prov["employees"] == {"source": ASHARE, "as_of": "2026-06-30"}
    assert prov["parent_group"] == {"source": DEMO, "as_of": "2025-01-01"}
    assert prov["products"]["other"]["value"] == ["输变电产品", "多晶硅"] and "products" in conflicts
    assert merged.extra["sources"] == [ASHARE, DEMO] and merged.extra["note"] == "昌吉州链主"
    # the other order gives the same content
    other, _ = merge_profiles(demo_firm(), ashare_firm())
    assert _content(other) == _content(merged)
    # merging again changes nothing (idempotent)
    again, _ = merge_profiles(merged, demo_firm())
    assert _content(again) == _content(merged)


def test_an_update_from_the_same_source_wins_but_never_with_an_empty_value():
    stored = ashare_firm()
    update = ashare_firm(employees=None, city="乌鲁木齐市", products=[])
    merged, conflicts = merge_profiles(stored, update)
    assert merged.city == "乌鲁木齐市" and merged.employees == 27583 and merged.products == stored.products
    assert conflicts == []


def test_fiction_and_real_firms_never_mix():
    fake = demo_firm(source="authored:fictional", tags=["虚构示例"], employees=440)
    kept, _ = merge_profiles(ashare_firm(), fake)
    assert kept.employees == 27583 and "虚构示例" not in kept.tags and not kept.fictional


@pytest.mark.parametrize("order", ["demo-first", "ashare-first"])
def test_any_import_order_gives_one_record_per_firm_with_every_known_value(store, order):
    renamed_old = ashare_firm(id="ashare-002459", name="秦皇岛天业通联重工股份有限公司", stock_code="002459",
                              province="河北", employees=3000)  # fmt: skip
    renamed_now = demo_firm(id="demo-0009", name="晶澳太阳能科技股份有限公司", stock_code="002459", province="河北",
                            aliases=["晶澳科技"])  # fmt: skip
    batches = [[demo_firm(), renamed_now], [ashare_firm(), renamed_old]]
    if order == "ashare-first":
        batches.reverse()
    first = store.upsert_enterprises(batches[0])
    second = store.upsert_enterprises(batches[1])
    assert first.inserted == 2 and second.inserted == 0 and second.updated == 2 and second.merged == 2
    assert "merged across sources 2" in second.merge_report()
    assert store.count_enterprises() == 2
    tbea = store.find_enterprises("特变电工")[0]
    assert tbea.employees == 27583 and tbea.links[0].link_id == "transformer" and tbea.parent_group == "特变电工集团"
    # one listed firm is one record whatever name each source used; both names find it
    by_old = store.find_enterprises("天业通联")
    by_new = store.find_enterprises("晶澳")
    assert by_old and by_new and by_old[0].id == by_new[0].id and by_old[0].employees == 3000
    assert store.upsert_enterprises(batches[0]).unchanged == 2  # re-importing changes nothing
    assert store.upsert_enterprises(batches[1]).unchanged == 2


def _profiles(db: Path) -> dict[str, dict]:
    con = sqlite3.connect(db)
    try:
        out = {}
        for prof in con.execute("select profile from enterprises"):
            d = json.loads(prof[0])
            for k in ("id", "updated_at"):
                d.pop(k, None)
            out[d.get("stock_code") or f"{d['normalized_name']}|{d.get('province')}|{d['name']}"] = d
        return out
    finally:
        con.close()


def test_the_real_corpora_in_any_order_give_the_same_store(tmp_path: Path, monkeypatch, shared_data: Path):
    runner = CliRunner()
    monkeypatch.setenv("CHAINMATCH_EMBEDDER", "hash")
    stores = {}
    orders = (("import-demo", "import-a-share"), ("import-a-share", "import-demo"), ("autoload", "import-a-share"))
    for order in orders:
        root = tmp_path / "-".join(order)
        monkeypatch.setenv("CHAINMATCH_DATA_DIR", str(root))
        from matcher.settings import get_settings

        get_settings.cache_clear()
        for cmd in order:
            if cmd == "autoload":  # what `serve` does on an empty store
                from matcher.ranking.engine import Engine

                assert Engine.open(get_settings()).ensure_corpus() > 600
                continue
            args = ["corpus", cmd] + (["--data-dir", str(shared_data)] if cmd == "import-a-share" else [])
            res = runner.invoke(cli, args)
            assert res.exit_code == 0, res.output
            assert "merge report:" in res.output
        stores[order] = _profiles(root / "chainmatch.db")
        count = runner.invoke(cli, ["enterprise", "count"])
        assert count.exit_code == 0 and str(len(stores[order])) in count.output
    a, b, c = stores.values()
    assert a == b == c  # the same firms with the same facts (a merged firm keeps the id it was first stored under)
    tbea = a["600089"]
    assert tbea["employees"] and any(link["link_id"] == "transformer" for link in tbea["links"])
    assert "昌吉" in json.dumps(a, ensure_ascii=False)  # the demo regions' residents are there in both orders


def test_listing_status_and_renamed_shells_from_the_a_share_data(shared_data: Path):
    from matcher.store.ashare import load_ashare_corpus

    by_code = {e.stock_code: e for e in load_ashare_corpus(shared_data)}
    for code in ("600205", "600401", "600472"):  # 山东铝业, 海润光伏, 包头铝业
        assert by_code[code].extra["listing_status"] == "delisted" and "已退市" in by_code[code].tags
    assert by_code["600089"].extra["listing_status"] == "listed"
    jinko = by_code["002459"]  # 天业通联's shell is 晶澳科技 today
    assert jinko.name == "晶澳科技" and "天业通联" in jinko.aliases
    assert jinko.extra["former_names"] == ["秦皇岛天业通联重工股份有限公司", "天业通联"]


def test_delisted_firms_are_left_out_unless_asked_for_and_say_so(tmp_path: Path):
    from matcher.knowledge.catalogue import default_catalogue
    from matcher.ranking.recommendation import Filters, RecommendRequest
    from matcher.ranking.recommender import Recommender
    from models.embedders import HashEmbedder

    alive = ashare_firm(id="a1", name="甲铝棒股份有限公司", stock_code="600001",
                        products=[Product(name="铝棒", share=0.9)], links=[], extra={"listing_status": "listed"})
    gone = ashare_firm(id="a2", name="乙铝棒股份有限公司", stock_code="600002",
                       products=[Product(name="铝棒", share=0.9)], links=[], extra={"listing_status": "delisted"})  # fmt: skip
    rec = Recommender(default_catalogue(), HashEmbedder()).fit([alive, gone])
    req = RecommendRequest(chain="aluminium", link="aluminium_rod", k=10)
    assert [c.enterprise_id for c in rec.recommend(req).candidates] == ["a1"]
    both = rec.recommend(req.model_copy(update={"filters": Filters(include_delisted=True)})).candidates
    shown = {c.enterprise_id: c for c in both}
    assert set(shown) == {"a1", "a2"} and shown["a2"].listing_status == "delisted"
    assert any(r.startswith("已退市") for r in shown["a2"].reasons)
    assert shown["a1"].stock_code == "600001" and shown["a1"].sources == [ASHARE] and shown["a1"].as_of


def test_a_file_import_prints_its_merge_report(store, tmp_path: Path):  # noqa: F811
    """Issue 15 item 1: every import reports new, merged and conflicting fields."""
    from matcher.store.importer import import_file

    store.upsert_enterprises([ashare_firm()])
    path = tmp_path / "crm.csv"
    path.write_text("企业名称,所属省份,股票代码,参保人数,所属集团\n特变电工股份有限公司,新疆,600089,30000,特变电工集团\n"
                    "新疆新客户有限公司,新疆,,12,\n", encoding="utf-8")  # fmt: skip
    report = import_file(path, store)
    assert (report.inserted, report.updated, report.merged) == (1, 1, 1)
    assert report.conflicts == {"employees": 1}  # the A-share disclosure (27,583) outranks the CRM file's 30,000
    assert "merge report: merged into records of other sources 1" in report.summary()
    assert "employees ×1" in report.summary()
    tbea = store.get_enterprise("ashare-600089")
    assert tbea.employees == 27583 and tbea.parent_group == "特变电工集团"


def test_a_renamed_firm_is_found_under_its_former_name(store):  # noqa: F811
    """Issue 15 item 1: identity by former names — a CRM record naming its 曾用名 updates the stored record."""
    old = Enterprise(id="crm-old", name="新疆旧名化工有限公司", province="新疆", source="crm", employees=300)
    store.upsert_enterprises([old])
    renamed = Enterprise(id="crm-new", name="新疆新名材料股份有限公司", aliases=["新疆旧名化工有限公司"],
                         province="新疆", source="crm", city="昌吉市")  # fmt: skip
    summary = store.upsert_enterprises([renamed])
    assert (summary.inserted, summary.updated) == (0, 1) and store.count_enterprises() == 1
    firm = store.get_enterprise("crm-old")
    assert firm.name == "新疆新名材料股份有限公司" and firm.employees == 300 and firm.city == "昌吉市"
    assert store.find_enterprises("旧名化工")[0].id == "crm-old"
    elsewhere = renamed.model_copy(update={"id": "x", "province": "江苏", "name": "江苏新名材料股份有限公司"})
    assert store.upsert_enterprises([elsewhere]).inserted == 1  # another province: another firm
