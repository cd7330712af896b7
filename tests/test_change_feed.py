"""The store's enterprise change log and the server following it: writes from another process (a CLI import,
another server) reach a running server's index without a restart — on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from api_support import Served, make_settings, seed_demo_store

from matcher.ranking.engine import Engine
from matcher.records import Enterprise, LinkMatch, Product
from matcher.store.store import Store
from service.api.refresher import IndexRefresher

pytest_plugins = ["store_backends"]  # store / store_url / open_store on SQLite and PostgreSQL

ROD = [Product(name="铝棒", share=0.9)]


def _firm(i: int, name: str = "变更日志") -> Enterprise:
    return Enterprise(id=f"cf-{i}", name=f"{name}{i}号铝棒有限公司", products=ROD)


def test_every_committed_change_is_logged_once_in_commit_order(store):
    start = store.last_change_seq()
    store.origin = "proc-a"
    store.upsert_enterprises([_firm(1), _firm(2)])
    store.upsert_enterprises([_firm(1)])  # unchanged: no entry
    store.upsert_enterprises([_firm(3)], tenant="acme")
    store.origin = None  # e.g. the CLI
    store.set_links("cf-2", [LinkMatch(link_id="aluminium_rod", score=1.0, method="alias", evidence="铝棒")])
    store.delete_enterprise("acme:cf-3", "acme")
    rows = store.changes_since(start)
    assert [(r.enterprise_id, r.tenant, r.op, r.origin) for r in rows] == [
        ("cf-1", None, "upsert", "proc-a"),
        ("cf-2", None, "upsert", "proc-a"),
        ("acme:cf-3", "acme", "upsert", "proc-a"),
        ("cf-2", None, "upsert", None),
        ("acme:cf-3", "acme", "delete", None),
    ]
    seqs = [r.seq for r in rows]
    assert seqs == sorted(seqs) and store.last_change_seq() == seqs[-1]
    assert [r.seq for r in store.changes_since(seqs[-1], also=[seqs[1]])] == [seqs[1]]
    assert store.changes_since(seqs[-1]) == []


def test_a_rolled_back_write_logs_nothing(store):
    start = store.last_change_seq()
    store.upsert_enterprises([_firm(1)])
    with pytest.raises(RuntimeError, match="forced"):
        with store.transaction():
            store.upsert_enterprises([_firm(2), _firm(3)])
            raise RuntimeError("forced rollback after a logged write")
    assert [r.enterprise_id for r in store.changes_since(start)] == ["cf-1"]
    assert store.count_enterprises() == 1


def test_prune_drops_old_entries_only(store):
    from datetime import UTC, datetime, timedelta

    store.upsert_enterprises([_firm(1)])
    assert store.prune_changes(datetime.now(UTC) - timedelta(days=1)) == 0
    assert store.prune_changes(datetime.now(UTC) + timedelta(seconds=1)) >= 1
    assert store.changes_since(0) == []


@contextmanager
def _no_lock():
    yield


def test_a_server_follows_writes_made_by_another_process(store_url: str, tmp_path: Path):
    engine = Engine.open(make_settings(tmp_path, database_url=store_url))
    engine.ws.store.upsert_enterprises([_firm(i, "底库") for i in range(30)])
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0.2, persist_interval=0)
    engine.ws.store.origin = ref.origin
    try:
        cursor = engine.ws.store.last_change_seq()
        rec = engine.recommender()
        ref.follow(engine.ws.store, cursor)
        with Store(store_url) as other:  # another process: the CLI or a second server
            other.upsert_enterprises([_firm(100, "外部写入")], tenant="acme")
            other.delete_enterprise("cf-0")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ("acme:cf-100" not in rec.id_to_idx_ or "cf-0" in rec.id_to_idx_):
            time.sleep(0.1)
        assert "acme:cf-100" in rec.id_to_idx_ and "cf-0" not in rec.id_to_idx_
        # the server's own writes are queued by the API, not again by the feed
        followed = ref.followed
        engine.ws.store.upsert_enterprises([_firm(200, "自身写入")])
        time.sleep(1.0)
        assert ref.followed == followed
    finally:
        ref.close()
        engine.ws.store.close()


def test_a_cli_import_reaches_the_running_server(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """`chainmatch import` into the data dir of a running `chainmatch serve`: recommendations include the
    imported firm within seconds, no restart."""
    import os
    import subprocess
    import sys

    root = seed_demo_store(tmp_path / "srv", tmp_path_factory)
    served = Served(root)
    try:
        csv = tmp_path / "名单.csv"
        csv.write_text("企业名称,省份,主营产品\n江苏跟随导入铝棒有限公司,江苏,6063铝棒\n", encoding="utf-8")
        env = {**os.environ, "CHAINMATCH_DATA_DIR": str(root / "data"), "CHAINMATCH_CACHE_DIR": str(root / "cache"),
               "CHAINMATCH_EMBEDDER": "hash"}  # fmt: skip
        env.pop("CHAINMATCH_DATABASE_URL", None)
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", "--quiet", "import", str(csv)],
            cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        gap = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod", "k": 50}
        deadline = time.monotonic() + 30
        names: list[str] = []
        with httpx.Client(base_url=served.url, headers={"X-API-Key": served.key}, timeout=30) as http:
            while time.monotonic() < deadline:
                names = [c["name"] for c in http.post("/v1/recommendations", json=gap).json()["candidates"]]
                if "江苏跟随导入铝棒有限公司" in names:
                    break
                time.sleep(0.3)
        assert "江苏跟随导入铝棒有限公司" in names
    finally:
        served.stop()


def test_serve_with_two_workers_shows_every_write_on_both(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """`chainmatch serve --workers 2`: a write lands on one worker; within seconds every answer, from either
    worker, includes it (the other worker follows the change log)."""
    from service.api.security import create_api_key
    from service.cli.bench_load import LocalServer

    root = seed_demo_store(tmp_path / "srv", tmp_path_factory)
    with Store(f"sqlite:///{root / 'data' / 'chainmatch.db'}") as store:
        _, key = create_api_key(store, "acme", "workers test")
    server = LocalServer(root / "data", root / "cache", workers=2)
    with server:
        server.wait_warm(timeout=300)
        gap = {"region": "manas", "chain": "aluminium", "link": "aluminium_rod", "k": 50}
        firm = {"id": "w-1", "name": "双进程写入铝棒有限公司", "province": "江苏", "products": [{"name": "铝棒", "share": 0.9}]}
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as http:
            assert http.post("/v1/enterprises", json=[firm]).status_code == 200
        deadline, seen = time.monotonic() + 30, 0
        while time.monotonic() < deadline and seen < 20:
            # a new connection per request, so the answers come from both workers
            resp = httpx.post(f"{server.url}/v1/recommendations", json=gap, headers={"X-API-Key": key}, timeout=30)
            seen = seen + 1 if "acme:w-1" in {c["enterprise_id"] for c in resp.json()["candidates"]} else 0
            time.sleep(0.05)
        assert seen >= 20, "some answers still miss the write"
        pids = {int(p) for p in open(f"/proc/{server.pid}/task/{server.pid}/children").read().split()}
        assert len(pids) >= 2, pids
