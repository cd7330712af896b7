"""``CHAINMATCH_VECTOR_BACKEND=milvus``: the saved index's vectors live in a Milvus collection (milvus-lite file
here; a cluster URI in production) and every job works the same — build, status, search, update, doctor and its
repair, the CLI. Each build writes a new collection and drops its predecessor once the new manifest is current."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from matcher.indexing.build import build_index, index_status, load_vector_index, search_index, update_index
from matcher.indexing.doctor import check, repair
from matcher.records import Enterprise, Product
from matcher.settings import Settings, get_settings
from matcher.store.demo import load_demo_enterprises
from matcher.store.store import Store
from models.embedders import get_embedder

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

N = 60


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CHAINMATCH_VECTOR_BACKEND", "milvus")
    get_settings.cache_clear()
    s = get_settings()
    s.ensure_dirs()
    return s


@pytest.fixture
def store(settings: Settings) -> Store:
    st = Store.from_settings(settings)
    st.upsert_enterprises(load_demo_enterprises()[:N])
    yield st
    st.close()


def _collections(settings: Settings) -> list[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(str(settings.milvus_uri))
    try:
        return sorted(c for c in client.list_collections() if c.startswith(settings.milvus_collection))
    finally:
        client.close()


def test_build_search_update_and_doctor_on_milvus(store: Store, settings: Settings) -> None:
    emb = get_embedder("hash")
    status = build_index(store, emb, settings)
    assert status.count == N and status.factory == "milvus:FLAT"
    info = index_status(settings)
    assert info["vector"]["backend"] == "milvus" and info["vector"]["count"] == N and info["consistent"]
    assert info["vector"]["collection"] == f"{settings.milvus_collection}_{status.build_id}"
    hits = search_index("电解铝", 5, settings, embedder=emb)
    assert hits and {h.id for h in hits} <= set(store.enterprise_ids("*"))
    assert not check(store, settings).drift

    new = Enterprise(id="mv-1", name="米尔沃斯测试铝棒有限公司", products=[Product(name="铝棒", share=0.9)])
    store.upsert_enterprises([new])
    gone = load_demo_enterprises()[0].id
    store.delete_enterprise(gone)
    report = check(store, settings)
    assert report.vector.missing == ["mv-1"] and report.vector.orphans == [gone]
    update_index(store, ["mv-1", gone], embedder=emb, settings=settings)
    after = check(store, settings)
    assert not after.drift, after.problems()
    vindex = load_vector_index(settings, emb.id)
    assert "mv-1" in vindex and gone not in vindex and len(vindex) == N
    vindex.close()


def test_a_rebuild_writes_a_new_collection_and_drops_the_old_one(store: Store, settings: Settings) -> None:
    emb = get_embedder("hash")
    first = build_index(store, emb, settings)
    second = build_index(store, emb, settings)
    assert _collections(settings) == [f"{settings.milvus_collection}_{second.build_id}"]
    assert first.build_id != second.build_id and not check(store, settings).drift


def test_a_dropped_collection_is_drift_and_repair_rebuilds(store: Store, settings: Settings) -> None:
    from pymilvus import MilvusClient

    emb = get_embedder("hash")
    build_index(store, emb, settings)
    client = MilvusClient(str(settings.milvus_uri))
    for name in _collections(settings):
        client.drop_collection(name)
    client.close()
    report = check(store, settings)
    assert report.drift and not report.vector.readable and "Milvus collection not readable" in report.vector.error
    fixed = repair(store, settings, embedder=emb)
    assert fixed.action == "rebuild" and not fixed.after.drift


def test_cli_builds_and_searches_with_the_milvus_backend(store: Store) -> None:
    from service.cli import app

    runner = CliRunner()
    built = runner.invoke(app, ["index", "build", "--json"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.output)["factory"] == "milvus:FLAT"
    found = runner.invoke(app, ["search", "电解铝", "--k", "3"])
    assert found.exit_code == 0 and "铝" in found.output, found.output
    doctor = runner.invoke(app, ["doctor"])
    assert doctor.exit_code == 0 and "OK" in doctor.output, doctor.output
