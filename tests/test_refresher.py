"""The server's index refresher: writes answer before the index takes them in; refreshes are rate-limited and
merged; the saved index is kept in step with the store (``chainmatch doctor`` finds no drift), also after a
crash left changes unsaved. Real engine (SQLite store, FAISS, BM25, hash embedder), no mocks."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from api_support import Api, make_settings, seed_demo_store

from matcher.indexing.build import build_index
from matcher.indexing.doctor import check
from matcher.ranking.engine import Engine
from matcher.records import Enterprise, Product
from service.api.refresher import IndexRefresher

ROD = [Product(name="铝棒", share=0.9)]


@contextmanager
def _no_lock():
    yield


@pytest.fixture
def engine(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    eng = Engine.open(make_settings(seed_demo_store(tmp_path, tmp_path_factory)))
    eng.recommender()
    yield eng
    eng.ws.store.close()


def _firms(n: int, prefix: str = "q") -> list[Enterprise]:
    return [Enterprise(id=f"{prefix}{i}", name=f"排队{prefix}{i}号铝棒有限公司", products=ROD) for i in range(n)]


class Counting:
    """Wraps ``engine.prepare_refresh`` to record each call's size and start time."""

    def __init__(self, engine: Engine) -> None:
        self.calls: list[tuple[int, float]] = []
        self._prepare = engine.prepare_refresh
        engine.prepare_refresh = self

    def __call__(self, changes):
        self.calls.append((len(changes), time.monotonic()))
        return self._prepare(changes)


def test_changes_queued_during_a_refresh_are_merged(engine: Engine):
    counting = Counting(engine)
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0.3, persist_interval=0)
    try:
        summary = engine.ws.store.upsert_enterprises(_firms(12), tenant="acme")
        futures = [ref.submit([(eid, "acme")]) for eid in summary.ids]
        for f in futures:
            f.result(timeout=60)
        sizes = [n for n, _ in counting.calls]
        assert sum(sizes) == 12 and len(sizes) < 12  # later ones were merged
        assert all(eid in engine.recommender().id_to_idx_ for eid in summary.ids)
        assert ref.pending == 0 and ref.refreshes == len(sizes)
    finally:
        ref.close()


def test_refreshes_start_at_most_once_per_interval(engine: Engine):
    counting = Counting(engine)
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0.4, persist_interval=0)
    try:
        store = engine.ws.store
        for i in range(3):
            ids = store.upsert_enterprises(_firms(1, prefix=f"r{i}-"), tenant="acme").ids
            ref.submit([(ids[0], "acme")]).result(timeout=60)
        starts = [t for _, t in counting.calls]
        assert len(starts) == 3
        assert all(b - a >= 0.4 - 0.01 for a, b in zip(starts, starts[1:], strict=False))
    finally:
        ref.close()


def test_a_failed_refresh_fails_its_futures_and_the_next_one_works(engine: Engine):
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0, persist_interval=0)
    prepare = engine.prepare_refresh
    try:
        engine.prepare_refresh = lambda changes: (_ for _ in ()).throw(OSError("disk gone"))
        ids = engine.ws.store.upsert_enterprises(_firms(2), tenant="acme").ids
        with pytest.raises(OSError, match="disk gone"):
            ref.submit([(ids[0], "acme")]).result(timeout=30)
        assert ref.pending == 0
        engine.prepare_refresh = prepare
        ref.submit([(i, "acme") for i in ids]).result(timeout=30)
        assert all(i in engine.recommender().id_to_idx_ for i in ids)
    finally:
        ref.close()


def test_the_saved_index_follows_api_writes_and_close_saves_the_rest(engine: Engine):
    settings, store = engine.settings, engine.ws.store
    build_index(store, engine.embedder, settings)
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0, persist_interval=0.2)
    ids = store.upsert_enterprises(_firms(3), tenant="acme").ids
    ref.submit([(i, "acme") for i in ids]).result(timeout=30)
    assert check(store, settings).drift  # served in memory, not saved yet
    deadline = time.monotonic() + 30
    while ref.persists == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    report = check(store, settings)
    assert not report.drift, report.problems()
    # a change still unsaved when the server stops is saved by close()
    store.delete_enterprise(ids[0], "acme")
    ref.submit([(ids[0], "acme")]).result(timeout=30)
    ref.close()
    report = check(store, settings)
    assert not report.drift, report.problems()
    assert report.vector.count == report.lexical.count == report.store_count


def test_catch_up_saves_what_a_crash_left_out(engine: Engine):
    settings, store = engine.settings, engine.ws.store
    build_index(store, engine.embedder, settings)
    store.upsert_enterprises(_firms(2, prefix="lost"), tenant="acme")  # committed, never indexed (crash)
    report = check(store, settings)
    assert report.drift and report.vector.missing
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0, persist_interval=30)
    try:
        status = ref.catch_up().result(timeout=60)
        assert status is not None and status.count == report.store_count
        after = check(store, settings)
        assert not after.drift, after.problems()
    finally:
        ref.close()


def test_without_a_saved_index_persisting_is_a_no_op(engine: Engine):
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0, persist_interval=30)
    assert ref.catch_up().result(timeout=30) is None
    ref.close()
    assert not (engine.settings.index_path / "vector").exists()


def test_upsert_answers_before_the_index_takes_it_in(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    api = Api(make_settings(seed_demo_store(tmp_path, tmp_path_factory), refresh_interval_s=0.5))
    try:
        gate = threading.Event()
        prepare = api.svc.engine.prepare_refresh

        def slow(changes):
            gate.wait(30)  # the refresh cannot finish until the test lets it
            return prepare(changes)

        api.svc.engine.prepare_refresh = slow
        t = api.tenant()
        firm = {"id": "async-1", "name": "异步写入铝棒有限公司", "province": "江苏", "products": [{"name": "铝棒"}]}
        t0 = time.monotonic()
        resp = api.client.post("/v1/enterprises", json=[firm], headers=t.headers)
        assert resp.status_code == 200 and resp.json()["index"] == "pending"
        assert time.monotonic() - t0 < 5
        assert api.client.get("/readyz").json()["pending_reembeds"] == 1
        # stored (acknowledged) before indexed
        assert api.client.get("/v1/enterprises/async-1", headers=t.headers).status_code == 200
        gate.set()
        waited = api.client.post("/v1/enterprises", json=[{**firm, "employees": 10}], params={"wait": 30},
                                 headers=t.headers)  # fmt: skip
        assert waited.json()["index"] == "updated"
        assert f"{t.name}:async-1" in api.svc.engine.recommender().id_to_idx_
        assert api.client.get("/readyz").json()["pending_reembeds"] == 0
        metrics = api.client.get("/metrics").text
        assert "chainmatch_index_refresh_seconds_count" in metrics and "chainmatch_index_unsaved" in metrics
        count = next(ln for ln in metrics.splitlines() if ln.startswith("chainmatch_index_refresh_seconds_count"))
        assert float(count.split()[-1]) >= 1
        bad = api.client.post("/v1/enterprises", json=[firm], params={"wait": 31}, headers=t.headers)
        assert bad.status_code == 422 and bad.json()["error"]["field"].endswith("wait")
    finally:
        api.close()


def test_a_drifted_corpus_is_refitted_in_the_background_and_swapped_in(engine: Engine, monkeypatch):
    """Corpus statistics (IDF, TF-IDF vocabulary, product space) are refreshed only by a fit: once the firms changed
    since the fit pass the drift bound, the refresher fits a new recommender beside the served one, replays what
    changed meanwhile, and swaps it in; nothing acknowledged is lost on the way and searches go on."""
    import matcher.ranking.restore as restore

    monkeypatch.setattr(restore, "MIN_DRIFT", 5)
    monkeypatch.setattr(restore, "MAX_DRIFT_SHARE", 0.2)
    ref = IndexRefresher(engine, _no_lock, refresh_interval=0, persist_interval=0)
    store = engine.ws.store
    old = engine.recommender()
    try:
        summary = store.upsert_enterprises(_firms(400, "d"), tenant="acme")
        ref.submit([(eid, "acme") for eid in summary.ids], summary.change_seqs).result(timeout=60)
        assert engine.snapshots.drifted(old)  # 400 changed on a corpus of about 1,000
        ref.refit_soon()
        late = store.upsert_enterprises(_firms(3, "late"), tenant="acme")  # during the refit, not submitted
        deadline = time.monotonic() + 120
        while ref.refits == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ref.refits == 1
        new = engine.recommender()
        assert new is not old and new.changed_since_fit_ <= 3
        assert not engine.snapshots.drifted(new)
        assert set(late.ids) <= set(new.id_to_idx_)  # the change feed since the fit was replayed at the swap
        assert len(new.enterprises_) == store.count_enterprises("*")
    finally:
        ref.close(timeout=30)
