"""A restart serves every tenant's private enterprises: after a clean stop and after ``kill -9``, on SQLite and on
PostgreSQL, a tenant's own firm still ranks in that tenant's recommendations (the fit reads every tenant's rows)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
from api_support import Api, Served, make_settings, seed_demo_store
from store_backends import store_url  # noqa: F401  (fixture)

from service.api.security import create_api_key

GAP = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod", "k": 50}
FIRM = {
    "id": "private-rod",
    "name": "乙方私有铝棒制造有限公司",
    "province": "江苏",
    "products": [{"name": "铝棒", "share": 0.95}],
    "employees": 800,
}


def _ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [c["enterprise_id"] for c in resp.json()["candidates"]]


def test_clean_restart_serves_tenants_private_enterprises(tmp_path: Path, store_url: str):  # noqa: F811
    settings = make_settings(tmp_path, database_url=store_url)
    api = Api(settings)
    meta, key = create_api_key(api.svc.store, "tenant-restart", "tests")
    headers = {"X-API-Key": key}
    up = api.client.post("/v1/enterprises", json=[FIRM], params={"wait": 30}, headers=headers).json()
    assert up["index"] == "updated", up
    firm_id = up["ids"][0]
    assert firm_id in _ids(api.client.post("/v1/recommendations", json=GAP, headers=headers))
    api.close()

    again = Api(make_settings(tmp_path, database_url=store_url))
    try:
        assert firm_id in _ids(again.client.post("/v1/recommendations", json=GAP, headers=headers))
        # re-pushing the same profile is a no-op that keeps it served
        up = again.client.post("/v1/enterprises", json=[FIRM], params={"wait": 30}, headers=headers).json()
        assert firm_id in _ids(again.client.post("/v1/recommendations", json=GAP, headers=headers))
    finally:
        again.close()


def test_kill_9_restart_serves_tenants_private_enterprises(tmp_path: Path, tmp_path_factory):
    root = seed_demo_store(tmp_path / "srv", tmp_path_factory)
    server = Served(root)
    try:
        headers = {"X-API-Key": server.key}
        up = httpx.post(f"{server.url}/v1/enterprises", json=[FIRM], params={"wait": 30}, headers=headers,
                        timeout=60).json()
        assert up["index"] == "updated", up
        firm_id = up["ids"][0]
        assert firm_id in _ids(httpx.post(f"{server.url}/v1/recommendations", json=GAP, headers=headers, timeout=60))
    finally:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(20)
        server.stop()
    again = Served(root, key=server.key)
    try:
        headers = {"X-API-Key": again.key}
        resp = httpx.post(f"{again.url}/v1/recommendations", json=GAP, headers=headers, timeout=60)
        assert firm_id in _ids(resp)
    finally:
        again.stop()


def test_readyz_is_not_ready_while_the_index_is_behind_beyond_its_bound(tmp_path: Path, tmp_path_factory):
    import time

    root = seed_demo_store(tmp_path / "lag", tmp_path_factory)
    api = Api(make_settings(root, refresh_interval_s=3.0, ready_max_lag_s=0.5))
    try:
        meta, key = create_api_key(api.svc.store, "tenant-lag", "tests")
        h = {"X-API-Key": key}
        first = api.client.post("/v1/enterprises", json=[FIRM], params={"wait": 10}, headers=h).json()
        assert first["index"] == "updated"
        second = {**FIRM, "id": "private-rod-2", "name": "乙方私有铝棒二厂有限公司"}
        assert api.client.post("/v1/enterprises", json=[second], headers=h).json()["index"] == "pending"
        time.sleep(1.0)  # the refresh waits for the 3 s interval: the index is behind by one row
        behind = api.client.get("/readyz")
        assert behind.status_code == 503, behind.text
        body = behind.json()
        assert body["lag"]["rows"] >= 1 and body["lag"]["seconds"] > 0.5 and "behind" in body["checks"]["index"]
        deadline = time.time() + 15
        while api.client.get("/readyz").status_code != 200 and time.time() < deadline:
            time.sleep(0.2)
        ready = api.client.get("/readyz").json()
        assert ready["status"] == "ready" and ready["lag"]["rows"] == 0, ready
    finally:
        api.close()
