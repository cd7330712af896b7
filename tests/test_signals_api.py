"""Signals through the real app (#19 item 1): bulk POST /v1/signals (tenant-private, de-duplicated, bad items
named), GET /v1/enterprises/{id}/signals (the firm's timeline with sources)."""

from __future__ import annotations

from api_support import (
    Api,
    api_fixture,  # noqa: F401  (provides the `api` fixture)
)


def _firm_id(api: Api, headers: dict[str, str]) -> str:
    return api.client.get("/v1/enterprises", params={"q": "嘉润"}, headers=headers).json()[0]["id"]


def test_post_and_read_signals(api: Api) -> None:
    t, other = api.tenant(), api.tenant()
    eid = _firm_id(api, t.headers)
    item = {"enterprise_id": eid, "date": "2023-05-12", "kind": "签约", "product": "铝杆", "province": "新疆",
            "region": "玛纳斯", "amount": 100000, "url": "https://a.example/1", "title": "签约公告"}
    resp = api.client.post("/v1/signals", json=[item, {**item, "url": "https://b.example/2"}], headers=t.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"inserted": 1, "merged": 1, "unchanged": 0}
    timeline = api.client.get(f"/v1/enterprises/{eid}/signals", headers=t.headers).json()
    assert len(timeline) == 1 and timeline[0]["kind"] == "签约" and len(timeline[0]["sources"]) == 2
    assert timeline[0]["link_id"]  # 铝杆 mapped onto a catalogue link
    assert api.client.get(f"/v1/enterprises/{eid}/signals", headers=other.headers).json() == []


def test_bad_items_are_named_and_nothing_written(api: Api) -> None:
    t = api.tenant()
    eid = _firm_id(api, t.headers)
    good = {"enterprise_id": eid, "date": "2023-05-12", "kind": "签约", "url": "https://a.example/1"}
    resp = api.client.post("/v1/signals", json=[good, {**good, "kind": "吃饭"}], headers=t.headers)
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["field"] == "[1].kind" and "unknown kind" in err["message"]
    resp = api.client.post("/v1/signals", json=[{**good, "url": ""}], headers=t.headers)
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "[0].url"
    resp = api.client.post("/v1/signals", json=[{**good, "enterprise_id": "nope"}], headers=t.headers)
    assert resp.status_code == 404
    assert api.client.get(f"/v1/enterprises/{eid}/signals", headers=t.headers).json() == []


def test_shared_signals_reach_recommendations_with_sources(tmp_path_factory) -> None:
    from datetime import date

    from api_support import make_settings, seed_demo_store

    from matcher.store.signals import SignalEvent, SignalSource, upsert_signals
    from matcher.store.store import Store

    gap = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod", "k": 5}
    first = Api(make_settings(seed_demo_store(tmp_path_factory.mktemp("sig0"), tmp_path_factory)))
    try:
        top = first.client.post("/v1/recommendations", json=gap, headers=first.tenant().headers).json()
    finally:
        first.close()
    eid = top["candidates"][0]["enterprise_id"]
    assert top["candidates"][0]["signals"] == []

    settings = make_settings(seed_demo_store(tmp_path_factory.mktemp("sig1"), tmp_path_factory))
    store = Store.from_settings(settings)
    upsert_signals(store, [SignalEvent(enterprise_id=eid, firm="某企业", day=date(2024, 3, 1), kind="投产",
                                       product="铝棒生产线", region="甘肃",
                                       sources=[SignalSource(url="https://x.example/1", title="某公告")])])
    store.close()
    api = Api(settings)
    try:
        body = api.client.post("/v1/recommendations", json=gap, headers=api.tenant().headers).json()
        cand = next(c for c in body["candidates"] if c["enterprise_id"] == eid)
        assert cand["signals"][0]["month"] == "2024-03" and cand["signals"][0]["urls"] == ["https://x.example/1"]
        assert any(r.startswith("近期扩张：2024-03 在甘肃投产") and "某公告" in r for r in cand["reasons"])
        assert cand["features"]["sig_any"] > 0
    finally:
        api.close()
