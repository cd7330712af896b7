"""Name search stays fast for a tenant with many private rows: each partition is searched on its own and only the
shared candidates are checked for a tenant version (no per-candidate correlated subquery), on both stores; the
tenant's own version still hides the shared row."""

from __future__ import annotations

import logging
import time

import pytest
from store_backends import PG_URL, _pg_unreachable, store_url  # noqa: F401  (fixture)

from matcher.errors import InvalidRequestError
from matcher.records import Enterprise, Product
from matcher.store import Store


def _firms(prefix: str, n: int) -> list[Enterprise]:
    return [
        Enterprise(id=f"{prefix}{i}", name=f"{prefix}名称测试{i}号制造有限公司", province="江苏",
                   products=[Product(name="铝棒")])
        for i in range(n)
    ]


def test_name_search_with_many_private_rows_is_fast_and_respects_shadowing(store_url: str):  # noqa: F811
    with Store(store_url) as store:
        store.upsert_enterprises(_firms("共享", 3_000))
        store.upsert_enterprises(_firms("私有", 12_000), tenant="big")
        # the tenant's own version of one shared firm (same name and province) hides the shared row
        store.upsert_enterprises([Enterprise(id="mine", name="共享名称测试7号制造有限公司", province="江苏")],
                                 tenant="big")
        timings = []
        for q in ("公司", "测试7号", "名称", "不存在的企业"):
            t0 = time.perf_counter()
            found = store.find_enterprises(q, tenant="big", limit=5)
            timings.append(time.perf_counter() - t0)
            assert len(found) <= 5
        assert max(timings) < 2.0, timings
        for odd in ("\x00", "a\x00b", "\ud800abc"):  # refused alike on both stores (PostgreSQL cannot take them)
            with pytest.raises(InvalidRequestError, match="NUL character or a lone surrogate"):
                store.find_enterprises(odd, tenant="big")
        assert store.find_enterprises("%_%", tenant="big") == []  # LIKE wildcards are literal
        hits = store.find_enterprises("共享名称测试7号制造有限公司", tenant="big", limit=5)
        assert [e.tenant for e in hits if e.name == "共享名称测试7号制造有限公司"] == ["big"]
        assert store.find_enterprises("共享名称测试7号制造有限公司", tenant=None, limit=5)[0].tenant is None


@pytest.mark.postgres
def test_postgresql_connections_carry_a_statement_timeout():
    from sqlalchemy import text

    from matcher.store.database import STATEMENT_TIMEOUT_MS, make_engine

    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    engine = make_engine(PG_URL)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == f"{STATEMENT_TIMEOUT_MS // 1000}s"
    finally:
        engine.dispose()


def test_sqlite_statements_are_interrupted_at_the_statement_timeout(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A runaway SQLite statement is cancelled by the progress handler at the bound (PostgreSQL: statement_timeout),
    and a name search cut off that way is a clear QueryTimeoutError, not a raw database error."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from matcher.errors import QueryTimeoutError
    from matcher.store import database, name_search

    monkeypatch.setattr(database, "STATEMENT_TIMEOUT_MS", 300)
    with Store(f"sqlite:///{tmp_path / 'timeout.db'}") as store:
        endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
        t0 = time.perf_counter()
        with pytest.raises(OperationalError, match="interrupted"), store.engine.connect() as conn:
            conn.execute(text(endless))
        assert time.perf_counter() - t0 < 5
        with store.engine.connect() as conn:  # the connection is usable again: the bound is per statement
            assert conn.execute(text("SELECT 1")).scalar_one() == 1

        def runaway(session, *_args):
            session.execute(text(endless)).all()

        monkeypatch.setattr(name_search, "_by_equality", runaway)
        with pytest.raises(QueryTimeoutError, match="statement timeout"):
            store.find_enterprises("特变电工")


def test_a_statement_cut_off_by_the_timeout_is_a_503_naming_it(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Any route whose statement the timeout cancels answers 503 query_timeout (PostgreSQL's QueryCanceled and
    SQLite's interrupt alike), not a bare 500."""
    import sqlite3

    from api_support import Api, make_settings
    from sqlalchemy.exc import OperationalError

    api = Api(make_settings(tmp_path / "srv"), warm=False)
    try:
        h = api.tenant("slow").headers

        def cancelled(*_args, **_kwargs):
            raise OperationalError("SELECT …", {}, sqlite3.OperationalError("interrupted"))

        monkeypatch.setattr(api.svc.store, "get_enterprise", cancelled)
        resp = api.client.get("/v1/enterprises/any", headers=h)
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "query_timeout"
    finally:
        api.close()


@pytest.mark.slow
def test_name_search_p95_with_a_big_tenant(store_url: str):  # noqa: F811
    """`chainmatch bench search` at 100k private rows in one tenant (the 1M figures: docs/scale.md 5b): the query
    mix's p95 stays within 100 ms and no search comes near the 30 s bound, on both stores."""
    from matcher.store.demo import load_demo_enterprises
    from service.cli.bench_search import load_big_tenant, run_search_bench, synthetic_firms

    with Store(store_url) as store:
        store.upsert_enterprises(load_demo_enterprises())
        store.upsert_enterprises(list(synthetic_firms(200, seed=1)), tenant="small")
        load_big_tenant(store, 100_000)
        bench = run_search_bench(store, repeat=5)
    logging.getLogger(__name__).warning("name search at 100k private rows (%s):\n%s", store_url.split(":")[0], bench.table())
    assert bench.percentile(95) <= 0.100, bench.table()
    assert max(bench.all()) < 5.0, bench.table()
