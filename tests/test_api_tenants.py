"""Tenant isolation: tenant B tries every route with tenant A's ids and sees nothing of A (404 / 422), while A's
data stays exactly as it was; the shared corpus is read-only to both."""

from __future__ import annotations

import csv
import io

import pytest
from api_support import (
    Api,
    Tenant,
    api_fixture,  # noqa: F401  (provides the `api` fixture)
)

GAP = {"chain": "aluminium", "link": "aluminium_rod"}


@pytest.fixture(scope="module")
def world(api: Api) -> dict:
    """Tenant A with a private region, a private enterprise and a lead on it; tenant B with nothing."""
    a, b = api.tenant("a"), api.tenant("b")
    c = api.client
    region = {
        "id": "secret_park",
        "name": "甲方保密园区",
        "level": "园区",
        "target_chains": ["aluminium"],
        "residents": [{"name": "甲方电解铝厂", "links": ["electrolytic_aluminium"], "chain_master": True}],
    }
    assert c.post("/v1/regions", json=region, headers=a.headers).status_code == 201
    firm = {
        "id": "secret-firm",
        "name": "甲方保密铝棒有限公司",
        "province": "江苏",
        "products": [{"name": "铝棒", "share": 0.9}],
        "employees": 500,
    }
    up = c.post("/v1/enterprises", json=[firm], params={"wait": 30}, headers=a.headers).json()
    assert up["index"] == "updated"
    stored_id = up["ids"][0]
    lead = c.post(
        "/v1/leads", json={"region": "secret_park", **GAP, "enterprise_id": stored_id}, headers=a.headers
    )
    assert lead.status_code == 201, lead.text
    return {
        "a": a,
        "b": b,
        "region": "secret_park",
        "firm": "secret-firm",
        "firm_id": stored_id,
        "lead": lead.json()["id"],
    }


def _b(world) -> Tenant:
    return world["b"]


def test_a_sees_its_own_data(api: Api, world):
    h = world["a"].headers
    assert api.client.get(f"/v1/regions/{world['region']}", headers=h).status_code == 200
    assert api.client.get(f"/v1/enterprises/{world['firm_id']}", headers=h).status_code == 200
    assert api.client.get(f"/v1/leads/{world['lead']}", headers=h).status_code == 200
    rec = api.client.post("/v1/recommendations", json={"region": "manas", **GAP, "k": 20}, headers=h).json()
    assert world["firm_id"] in [x["enterprise_id"] for x in rec["candidates"]]


def test_reverse_fit_ranks_a_tenants_own_regions_for_it_only(api: Api, world):
    """A's private park (链主 电解铝, target chain aluminium) is among the regions A's 铝棒 firm fits; B, asking
    about a firm of its own with the same products, never sees A's park."""
    fits = api.client.get(f"/v1/enterprises/{world['firm_id']}/fit", params={"k": 30}, headers=world["a"].headers)
    assert fits.status_code == 200, fits.text
    mine = [f for f in fits.json()["fits"] if f["region_id"] == world["region"]]
    assert mine and mine[0]["region_name"] == "甲方保密园区"
    b = _b(world)
    twin = {"id": "b-rod", "name": "乙方铝棒制造有限公司", "province": "江苏", "products": [{"name": "铝棒", "share": 0.9}]}
    up = api.client.post("/v1/enterprises", json=[twin], params={"wait": 30}, headers=b.headers).json()
    theirs = api.client.get(f"/v1/enterprises/{up['ids'][0]}/fit", params={"k": 30}, headers=b.headers).json()
    assert theirs["fits"] and world["region"] not in {f["region_id"] for f in theirs["fits"]}
    # A edits its park: the next fit sees the new name (the tenant's gap index is rebuilt)
    region = api.client.get(f"/v1/regions/{world['region']}", headers=world["a"].headers).json()
    body = {k: region[k] for k in ("name", "level", "target_chains", "residents")} | {"name": "甲方保密园区二期"}
    assert api.client.put(f"/v1/regions/{world['region']}", json=body, headers=world["a"].headers).status_code == 200
    again = api.client.get(f"/v1/enterprises/{world['firm_id']}/fit", params={"k": 30}, headers=world["a"].headers)
    assert {f["region_name"] for f in again.json()["fits"] if f["region_id"] == world["region"]} == {"甲方保密园区二期"}
    body["name"] = "甲方保密园区"
    assert api.client.put(f"/v1/regions/{world['region']}", json=body, headers=world["a"].headers).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/regions/{region}"),
        ("GET", "/v1/regions/{region}/gaps"),
        ("GET", "/v1/regions/{region}/gapmap.svg"),
        ("DELETE", "/v1/regions/{region}"),
        ("POST", "/v1/regions/{region}/recommendations"),
        ("GET", "/v1/regions/{region}/shortlist.xlsx"),
        ("GET", "/v1/regions/{region}/shortlist.csv"),
        ("POST", "/v1/regions/{region}/shortlist.csv"),
        ("GET", "/v1/enterprises/{firm_id}"),
        ("GET", "/v1/enterprises/{firm}"),
        ("GET", "/v1/enterprises/{firm_id}/fit"),
        ("DELETE", "/v1/enterprises/{firm_id}"),
        ("DELETE", "/v1/enterprises/{firm}"),
        ("GET", "/v1/leads/{lead}"),
        ("PATCH", "/v1/leads/{lead}"),
        ("GET", "/v1/leads/{lead}/events"),
    ],
)
def test_other_tenants_ids_are_404_on_every_route(api: Api, world, method: str, path: str):
    url = path.format(**world)
    body = {"enterprise_ids": [world["firm_id"]]} if "shortlist" in path else {}
    if path.endswith("recommendations"):
        body = {"k": 3}
    if method == "PATCH":
        body = {"status": "已接触"}
    resp = api.client.request(method, url, json=body or None, headers=_b(world).headers)
    assert resp.status_code == 404, (method, url, resp.status_code, resp.text)
    assert resp.json()["error"]["code"] in ("unknown_region", "unknown_enterprise", "unknown_lead")
    assert "甲方" not in resp.text


@pytest.mark.parametrize(
    "body",
    [
        {"region": "{region}", **GAP},
        {"region": "甲方保密园区", **GAP},
    ],
)
def test_other_tenants_region_is_unknown_in_recommendation_requests(api: Api, world, body):
    body = {k: v.format(**world) for k, v in body.items()}
    resp = api.client.post("/v1/recommendations", json=body, headers=_b(world).headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "unknown_region"


def test_other_tenants_enterprise_cannot_be_shortlisted_or_exported(api: Api, world):
    h = _b(world).headers
    for eid in (world["firm_id"], world["firm"]):
        resp = api.client.post("/v1/leads", json={"region": "manas", **GAP, "enterprise_id": eid}, headers=h)
        assert resp.status_code == 422 and resp.json()["error"]["field"] == "enterprise_id"
        exp = api.client.post("/v1/regions/manas/shortlist.csv", json={"enterprise_ids": [eid]}, headers=h)
        assert exp.status_code == 422 and "甲方" not in exp.text


def test_other_tenants_data_never_appears_in_lists_searches_or_rankings(api: Api, world):
    h = _b(world).headers
    c = api.client
    assert world["region"] not in [r["id"] for r in c.get("/v1/regions", headers=h).json()]
    assert c.get("/v1/enterprises", params={"q": "甲方保密"}, headers=h).json() == []
    assert c.get("/v1/leads", headers=h).json() == []
    other_region = c.get("/v1/leads", params={"region": world["region"]}, headers=h)  # unknown to this tenant
    assert other_region.status_code == 422 and other_region.json()["error"]["code"] == "unknown_region"
    assert c.get("/v1/feedback/events", headers=h).json() == []
    rec = c.post("/v1/recommendations", json={"region": "manas", **GAP, "k": 200}, headers=h).json()
    assert world["firm_id"] not in [x["enterprise_id"] for x in rec["candidates"]]
    assert all(x["lead_id"] is None for x in rec["candidates"])
    region_recs = c.post("/v1/regions/manas/recommendations", json={"k": 50, "max_gaps": 3}, headers=h).json()
    ids = {x["enterprise_id"] for s in region_recs["shortlists"] for x in s["candidates"]}
    assert world["firm_id"] not in ids
    shortlist = c.get("/v1/regions/manas/shortlist.csv", params={"k": 50}, headers=h).content.decode(
        "utf-8-sig"
    )
    assert "甲方" not in shortlist
    for row in csv.reader(io.StringIO(shortlist)):
        assert row[11] in ("线索状态", "未跟进")


def test_b_writing_the_same_ids_creates_its_own_rows_and_leaves_a_untouched(api: Api, world):
    a, b = world["a"].headers, _b(world).headers
    c = api.client
    body = {"name": "乙方园区", "level": "园区", "target_chains": ["aluminium"]}
    assert c.put(f"/v1/regions/{world['region']}", json=body, headers=b).status_code == 200
    assert c.get(f"/v1/regions/{world['region']}", headers=a).json()["name"] == "甲方保密园区"
    assert c.get(f"/v1/regions/{world['region']}", headers=b).json()["name"] == "乙方园区"
    up = c.post("/v1/enterprises", json=[{"id": world["firm"], "name": "乙方铝业有限公司"}], headers=b).json()
    assert up["ids"][0] != world["firm_id"]
    assert c.get(f"/v1/enterprises/{world['firm_id']}", headers=a).json()["name"] == "甲方保密铝棒有限公司"
    assert c.get(f"/v1/enterprises/{world['firm']}", headers=b).json()["name"] == "乙方铝业有限公司"
    assert c.delete(f"/v1/regions/{world['region']}", headers=b).status_code == 204
    assert c.get(f"/v1/regions/{world['region']}", headers=a).status_code == 200


def test_shared_corpus_is_read_only_to_every_tenant(api: Api, world):
    c = api.client
    shared = c.get("/v1/enterprises", params={"q": "嘉润"}, headers=world["a"].headers).json()[0]
    for t in (world["a"], world["b"]):
        resp = c.delete(f"/v1/enterprises/{shared['id']}", headers=t.headers)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "shared_read_only"
        assert c.delete("/v1/regions/manas", headers=t.headers).status_code == 403
    shadow = c.post(
        "/v1/enterprises",
        json=[{"id": shared["id"], "name": shared["name"], "province": "新疆"}],
        headers=world["b"].headers,
    ).json()
    assert shadow["ids"][0] == f"{world['b'].name}:{shared['id']}"
    assert (
        c.get(f"/v1/enterprises/{shared['id']}", headers=world["a"].headers).json()["name"] == shared["name"]
    )
