"""Shared test fixtures: every test gets its own data dir and settings via env (no global state leaks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
pytest_plugins = ["ci_strict"]


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the product's data and cache dirs at tmp for every test; use the fast deterministic embedder."""
    from matcher.settings import get_settings

    monkeypatch.setenv("CHAINMATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHAINMATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CHAINMATCH_EMBEDDER", os.environ.get("CHAINMATCH_TEST_EMBEDDER", "hash"))
    monkeypatch.delenv("CHAINMATCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("CHAINMATCH_INDEX_PATH", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repo; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA
