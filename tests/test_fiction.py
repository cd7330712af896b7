"""Fictional example firms are never shown as real: in demo-only mode they are marked (``fictional``, a reason
saying so, no invented facts stated, a marked name in exports); once a real shared corpus is loaded they never
appear in results. A segment with a 0% revenue share is never called 主营."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from api_support import Api, make_settings, seed_demo_store
from openpyxl import load_workbook

from matcher.ranking.engine import Engine
from matcher.ranking.recommendation import RecommendRequest
from matcher.records import Enterprise, Product

REQ = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod", "k": 50}


@pytest.fixture
def demo_root(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_demo_store(tmp_path / "demo", tmp_path_factory)


def test_demo_only_mode_marks_fictional_firms_and_states_no_invented_facts(demo_root: Path):
    engine = Engine.open(make_settings(demo_root))
    rec = engine.recommend(RecommendRequest(**REQ))
    fictional = [c for c in rec.candidates if c.fictional]
    assert fictional, "the demo corpus's example aluminium-rod firms should be listed, marked"
    for c in fictional:
        assert "示例" in c.name and c.reasons[0].startswith("虚构示例企业")
        assert not any(r.startswith("员工约") for r in c.reasons), c.reasons
    assert all(not c.fictional for c in rec.candidates if "示例" not in c.name)


def test_fictional_firms_never_appear_once_a_real_corpus_is_loaded(demo_root: Path):
    engine = Engine.open(make_settings(demo_root))
    real = Enterprise(
        id="real-rod", name="真实铝棒制造股份有限公司", province="江苏", source="a-share",
        products=[Product(name="铝棒", share=0.8)], employees=3000, stock_code="600000",
    )
    from matcher.knowledge.mapping import LinkMapper

    real.links = LinkMapper(engine.catalogue).map(real)
    engine.ws.store.upsert_enterprises([real])
    rec = engine.recommend(RecommendRequest(**REQ))
    assert rec.candidates
    assert not any(c.fictional or "示例" in c.name for c in rec.candidates)


def test_export_marks_fictional_firms_in_demo_only_mode(demo_root: Path):
    api = Api(make_settings(demo_root))
    try:
        h = api.tenant("fx").headers
        resp = api.client.get("/v1/regions/manas/shortlist.xlsx", params={"k": 20, "max_gaps": 5}, headers=h)
        assert resp.status_code == 200
        ws = load_workbook(io.BytesIO(resp.content)).active
        names = [ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)]
        examples = [n for n in names if "示例" in n]
        assert examples and all(n.endswith("（虚构示例）") for n in examples)
        one = api.client.post("/v1/recommendations", json=REQ, headers=h).json()
        assert any(c["fictional"] for c in one["candidates"])
    finally:
        api.close()


def test_a_zero_share_segment_is_never_called_main_business(demo_root: Path):
    engine = Engine.open(make_settings(demo_root))
    firm = Enterprise(
        id="zero-share", name="零占比铝棒贸易有限公司", province="江苏", source="crm",
        products=[Product(name="6063铝棒", share=0.0), Product(name="仓储服务", share=1.0)],
    )
    from matcher.knowledge.mapping import LinkMapper

    firm.links = LinkMapper(engine.catalogue).map(firm)
    engine.ws.store.upsert_enterprises([firm], tenant="t0")
    rec = engine.recommend(RecommendRequest(**{**REQ, "k": 200}, tenant="t0"))
    assert not [c for c in rec.candidates if c.name == firm.name]  # a 0% segment is no evidence of making rods
    import copy

    unbarred = copy.copy(engine.recommender())  # without the evidence bar it is ranked, and never called 主营
    unbarred.evidence_bar = False
    req = RecommendRequest(**{**REQ, "k": 200}, tenant="t0")
    mine = [c for c in unbarred.recommend(req, engine.regions("t0")).candidates if c.name == firm.name]
    assert mine, "the firm maps onto 铝棒 by its 0%-share segment and should be ranked"
    assert not any("主营6063铝棒" in r for r in mine[0].reasons), mine[0].reasons


def test_one_stock_code_is_listed_once(demo_root: Path):
    from matcher.knowledge.mapping import LinkMapper

    engine = Engine.open(make_settings(demo_root))
    mapper = LinkMapper(engine.catalogue)
    twins = [
        Enterprise(id=f"twin-{i}", name=name, province="江苏", source="a-share", stock_code="600999",
                   products=[Product(name="铝棒", share=0.9)], employees=5000)
        for i, name in enumerate(["双记录铝业股份有限公司", "旧名称壳公司股份有限公司"])
    ]
    for t in twins:
        t.links = mapper.map(t)
    engine.ws.store.upsert_enterprises(twins)
    rec = engine.recommend(RecommendRequest(**{**REQ, "k": 200}))
    codes = [c.enterprise_id for c in rec.candidates if c.enterprise_id.startswith("twin-")]
    assert len(codes) == 1, codes
