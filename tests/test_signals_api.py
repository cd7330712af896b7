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
