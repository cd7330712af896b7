"""Expansion signals (#19 item 1): import with Chinese headers, de-duplication across sources, tenancy, bad rows
rejected with row + field + reason and nothing written, lead outcomes becoming events; SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from matcher.records import Enterprise, Product
from matcher.store.importer.pipeline import default_mapper
from matcher.store.lead_store import LeadStatus, create_lead, update_lead
from matcher.store.signal_import import import_signals
from matcher.store.signals import SignalEvent, SignalSource, signals_of, upsert_signals

pytest_plugins = ["store_backends"]

HEADER = ["企业名称", "日期", "类型", "产品", "省份", "项目地点", "投资金额（亿元）", "来源链接", "标题"]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def seed(store) -> None:
    store.upsert_enterprises(
        [Enterprise(id="e1", name="深圳市德方纳米科技股份有限公司", province="广东",
                    products=[Product(name="磷酸铁锂")])]
    )


def test_import_dedups_sources_maps_links_and_resolves_firms(store, tmp_path: Path) -> None:
    seed(store)
    path = write_csv(
        tmp_path / "s.csv",
        [
            ["深圳市德方纳米科技股份有限公司", "2023-05-12", "签约", "年产10万吨磷酸铁锂", "云南", "曲靖", "35",
             "https://a.example/1", "公告"],
            ["深圳市德方纳米科技股份有限公司", "2023年5月", "签约", "年产10万吨磷酸铁锂", "云南省", "曲靖", "35",
             "https://b.example/2", "新闻"],
            ["某未入库企业", "2022-01-03", "扩产公告", "电解铝", "新疆", "", "5000万元", "https://c.example/3", ""],
        ],
    )
    report = import_signals(store, path, mapper=default_mapper())
    assert report.ok and report.committed
    assert (report.inserted, report.updated) == (2, 1)
    events = signals_of(store, ["e1"])
    assert len(events) == 1
    ev = events[0]
    assert ev.enterprise_id == "e1" and ev.province == "云南" and ev.amount == pytest.approx(350_000)
    assert {s.url for s in ev.sources} == {"https://a.example/1", "https://b.example/2"}
    assert ev.link_id  # 磷酸铁锂 maps onto a catalogue link
    assert "2023-05" in ev.reason() and "来源" in ev.reason()
    # re-import: idempotent
    again = import_signals(store, path, mapper=default_mapper())
    assert (again.inserted, again.updated) == (0, 0)
    assert len(signals_of(store)) == 2
    assert signals_of(store, ["e1"], before=date(2023, 5, 12)) == []


def test_bad_rows_named_and_nothing_written(store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ["甲公司", "2023-05-12", "签约", "电池", "江苏", "", "1", "https://a.example/1", ""],
            ["乙公司", "明年", "签约", "电池", "江苏", "", "1", "https://a.example/2", ""],
            ["丙公司", "2023-01-01", "吃饭", "电池", "江苏", "", "1", "https://a.example/3", ""],
            ["丁公司", "2023-01-01", "签约", "电池", "江苏", "", "很多", "", ""],
        ],
    )
    report = import_signals(store, path)
    assert not report.committed
    msgs = [str(r) for r in report.rejects]
    assert any(m.startswith("row 3, 日期") for m in msgs)
    assert any(m.startswith("row 4, 类型") and "unknown kind" in m for m in msgs)
    assert any(m.startswith("row 5, 金额") for m in msgs) and any(m.startswith("row 5, 来源") for m in msgs)
    assert signals_of(store) == []


def test_jsonl_and_tenant_privacy(store, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        json.dumps({"name": "甲公司", "date": "2024-03-01", "kind": "投产", "product": "多晶硅",
                    "province": "内蒙古", "url": "https://x.example/1"}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    assert import_signals(store, path, tenant="acme").inserted == 1
    assert len(signals_of(store, None, "acme")) == 1
    assert signals_of(store, None, "other") == [] and signals_of(store, None, None) == []
    upsert_signals(store, [SignalEvent(firm="乙公司", day=date(2024, 1, 1), kind="定增",
                                       sources=[SignalSource(url="https://y.example")])])
    assert len(signals_of(store, None, "acme")) == 2 and len(signals_of(store, None, "other")) == 1


def test_lead_outcome_becomes_tenant_event(store) -> None:
    lead, _ = create_lead(store, "acme", region_id="manas", chain_id="aluminium", link_id="aluminium_rod",
                          enterprise_id="e9", enterprise_name="某铝业")
    update_lead(store, "acme", lead.id, status=LeadStatus.CONTACTED)
    assert signals_of(store, ["e9"], "acme") == []
    update_lead(store, "acme", lead.id, status=LeadStatus.VISITED)
    update_lead(store, "acme", lead.id, status=LeadStatus.SIGNED)
    kinds = sorted(e.kind for e in signals_of(store, ["e9"], "acme"))
    assert kinds == ["签约", "考察"]
    assert all(e.origin == "lead" and e.tenant == "acme" for e in signals_of(store, ["e9"], "acme"))
    assert signals_of(store, ["e9"], "other") == []


def test_starter_set_imports_cleanly_with_sources(store) -> None:
    from matcher.store.signal_import import STARTER_FILE

    report = import_signals(store, STARTER_FILE, mapper=default_mapper())
    # 19 events: the 11 that were the same announcements as deals_dev records were removed (deals never shape
    # the product's knowledge)
    assert report.ok and report.committed and report.rows == 19
    events = signals_of(store)
    assert len(events) >= 17  # a few reports of one event merge
    assert all(any(s.url.startswith("http") for s in e.sources) for e in events)
    assert sum(e.link_id is not None for e in events) >= 0.7 * len(events)
    assert {e.kind for e in events} <= {"签约", "对外投资", "新设子公司"}


def test_a_later_source_of_a_stored_event_merges_into_it(store) -> None:
    def report(url: str, confidence: float) -> SignalEvent:
        return SignalEvent(firm="甲公司", day=date(2024, 5, 9), kind="开工", product="电解铝", province="新疆",
                           confidence=confidence, sources=[SignalSource(url=url)])

    assert upsert_signals(store, [report("https://a.example/1", 0.6)]).inserted == 1
    s = upsert_signals(store, [report("https://b.example/2", 0.9), report("https://a.example/1", 0.6)])
    assert (s.inserted, s.merged, s.unchanged) == (0, 1, 1)
    (event,) = signals_of(store)
    assert [x.url for x in event.sources] == ["https://a.example/1", "https://b.example/2"]
    assert event.confidence == 0.9


def test_migration_0004_adds_and_drops_the_signals_table(store_url: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from matcher.store.database import alembic_config
    from matcher.store.store import Store

    Store(store_url).close()  # opening migrates to head
    engine = create_engine(store_url)
    try:
        assert "signals" in inspect(engine).get_table_names()
        command.downgrade(alembic_config(store_url), "0003")
        assert "signals" not in inspect(engine).get_table_names()
        command.upgrade(alembic_config(store_url), "head")
        assert "signals" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
