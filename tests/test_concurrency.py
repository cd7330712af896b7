"""Concurrent writers on one store (SQLite file and PostgreSQL): transactions that read, then write, queue
behind each other instead of failing, and API-key checks never wait for or fail on writers.

On SQLite a deferred transaction that has read cannot take the write lock once another writer has committed
(SQLITE_BUSY_SNAPSHOT): it failed at once with "database is locked" — 500s under ten concurrent API clients.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select, update

from matcher.records import Enterprise
from matcher.store.db_models import EnterpriseRow
from matcher.store.store import Store
from service.api.security import ApiKeyRow, create_api_key, verify_api_key

pytest_plugins = ["store_backends"]  # store / store_url / open_store on SQLite and PostgreSQL

SECONDS = 2.0


def _run(workers: list) -> list[str]:
    errors: list[str] = []

    def guard(fn) -> None:
        try:
            fn()
        except Exception as exc:  # every failure is collected and reported by the test
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    threads = [threading.Thread(target=guard, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_read_then_write_transactions_queue_instead_of_failing(store: Store):
    store.upsert_enterprises([Enterprise(id="counter", name="计数企业有限公司", employees=0)])
    done = {"increments": 0, "upserts": 0}
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def incrementer() -> None:
        while time.monotonic() < stop:
            with store.transaction() as session:
                counter = select(EnterpriseRow.city).where(EnterpriseRow.id == "counter")
                n = session.execute(
                    counter.with_for_update()
                ).scalar()  # PostgreSQL: row lock; SQLite: the db
                time.sleep(0.001)  # another writer commits in between
                session.execute(
                    update(EnterpriseRow)
                    .where(EnterpriseRow.id == "counter")
                    .values(city=str(int(n or 0) + 1))
                )
            with lock:
                done["increments"] += 1

    def upserter(k: int) -> None:
        i = 0
        while time.monotonic() < stop:
            store.upsert_enterprises([Enterprise(id=f"w{k}-{i}-{j}", name=f"并发{k}号{i}批{j}有限公司")
                                      for j in range(20)])  # fmt: skip
            i += 1
            with lock:
                done["upserts"] += 1

    errors = _run([incrementer, incrementer, incrementer, lambda: upserter(0), lambda: upserter(1)])
    assert errors == []
    assert done["increments"] > 0 and done["upserts"] > 0
    with store.transaction(write=False) as session:
        final = session.execute(select(EnterpriseRow.city).where(EnterpriseRow.id == "counter")).scalar()
    assert int(final) == done["increments"]  # no lost update
    assert store.count_enterprises() == 1 + 20 * done["upserts"]


def test_api_key_checks_succeed_while_the_store_is_written(store: Store):
    meta, key = create_api_key(store, "acme", "concurrency")
    checks = {"ok": 0}
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def checker() -> None:
        while time.monotonic() < stop:
            assert verify_api_key(store, key) is not None
            with store.transaction() as session:  # force the last-used write on every check
                session.execute(update(ApiKeyRow).where(ApiKeyRow.id == meta.id).values(last_used_at=None))
            with lock:
                checks["ok"] += 1

    def upserter(k: int) -> None:
        i = 0
        while time.monotonic() < stop:
            store.upsert_enterprises([Enterprise(id=f"k{k}-{i}-{j}", name=f"鉴权{k}号{i}批{j}有限公司")
                                      for j in range(50)], tenant="acme")  # fmt: skip
            i += 1

    errors = _run([checker, checker, checker, lambda: upserter(0), lambda: upserter(1)])
    assert errors == [] and checks["ok"] > 0
    assert verify_api_key(store, key) is not None
    with store.transaction(write=False) as session:
        assert session.get(ApiKeyRow, meta.id).last_used_at is not None
