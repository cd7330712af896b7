"""Store backends for tests: the same test runs on a SQLite file and on PostgreSQL (a fresh schema per test).

PostgreSQL is ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` unless ``CHAINMATCH_TEST_PG_URL`` says
otherwise; when it is unreachable the PostgreSQL variants skip with the connection error as the reason. Each
PostgreSQL test gets its own schema (``search_path`` set in the URL) which is dropped afterwards.

Use them from a test module with ``pytest_plugins = ["store_backends"]`` (or import the fixture names).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import pytest

PG_URL = os.environ.get("CHAINMATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@lru_cache(maxsize=1)
def _pg_unreachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("+psycopg", ""), connect_timeout=3):
            return None
    except Exception as exc:  # any failure means: skip, and say why
        return f"PostgreSQL unreachable at {PG_URL}: {type(exc).__name__}: {exc}".strip()


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL of an empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    schema = f"cm_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in PG_URL else "?"
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        _pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], object]]:
    """Factory of Store objects on ``store_url`` (closed before the database is dropped)."""
    from matcher.store.store import Store

    opened: list[Store] = []

    def make() -> Store:
        s = Store(store_url)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[[], object]):  # -> matcher.store.store.Store
    """An empty, migrated store on each backend."""
    return open_store()


def snapshot(store) -> list[dict]:
    """Everything the store holds (every tenant's enterprises with their stored hashes, and regions)."""
    from sqlalchemy import select

    from matcher.store.db_models import EnterpriseRow, RegionRow

    with store.engine.connect() as conn:
        ents = conn.execute(
            select(
                EnterpriseRow.id, EnterpriseRow.tenant, EnterpriseRow.content_hash, EnterpriseRow.embedded_hash,
                EnterpriseRow.profile,
            ).order_by(EnterpriseRow.id)
        ).all()  # fmt: skip
        regions = conn.execute(select(RegionRow.key, RegionRow.profile).order_by(RegionRow.key)).all()
    return [dict(r._mapping) for r in ents] + [dict(r._mapping) for r in regions]
