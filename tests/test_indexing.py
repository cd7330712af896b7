"""Profile text, building / updating the saved indexes from a real SQLite store, the CLI, the Ray engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.errors import IndexManifestError, IndexNotFoundError
from matcher.indexing.build import build_index, fuse_rrf, index_status, search_index, update_index
from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking.profile_text import MAX_CHARS, profile_text
from matcher.records import Enterprise, LinkMatch, Product
from matcher.settings import Settings, get_settings
from matcher.store.demo import load_demo_enterprises
from matcher.store.store import Store
from models.embedders import HashEmbedder, get_embedder


@pytest.fixture
def settings() -> Settings:
    s = get_settings()
    s.ensure_dirs()
    return s


@pytest.fixture
def store(settings: Settings) -> Store:
    st = Store.from_settings(settings)
    st.upsert_enterprises(load_demo_enterprises()[:120])
    return st


class CountingHashEmbedder(HashEmbedder):
    """The hash embedder, counting the texts it actually embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def _encode(self, texts: list[str], prefix: str):
        self.embedded += len(texts)
        return super()._encode(texts, prefix)


# --- profile text -----------------------------------------------------------------------------------------
def test_profile_text_orders_products_by_share_and_names_links() -> None:
    cat = default_catalogue()
    link = next(iter(cat.links.values()))
    e = Enterprise(
        id="x", name="特变电工股份有限公司",
        products=[Product(name="其他业务", share=0.05), Product(name="煤炭", share=0.15),
                  Product(name="变压器", share=0.35), Product(name="多晶硅", share=0.30),
                  Product(name="线缆")],
        links=[LinkMatch(link_id=link.id, score=0.9, method="alias")],
        sw_industry="电网设备", scope="变压器、电抗器的制造。", province="新疆", city="昌吉回族自治州",
    )  # fmt: skip
    text = profile_text(e, cat)
    assert text.startswith("特变电工。主营: 变压器 35%、多晶硅 30%、煤炭 15%、线缆。")
    assert f"环节: {link.name}" in text and "行业: 电网设备" in text
    assert "其他业务" not in text
    assert text.endswith("经营范围: 变压器、电抗器的制造。新疆昌吉回族自治州")


def test_profile_text_truncates_the_scope_not_the_products() -> None:
    e = Enterprise(id="x", name="某某铝业有限公司", aliases=["某铝"],
                   products=[Product(name="电解铝", share=1.0)],
                   scope="铝锭、铝棒、铝板带箔的生产与销售；" * 60, province="新疆")  # fmt: skip
    text = profile_text(e)
    assert len(text) <= MAX_CHARS
    assert text.startswith("某铝。主营: 电解铝 100%。经营范围: ")
    assert "…" in text and text.endswith("。新疆")


# --- build / update / status / search -----------------------------------------------------------------------
def test_build_saves_both_indexes_and_reuses_cached_embeddings(store: Store, settings: Settings) -> None:
    emb = CountingHashEmbedder()
    seen: list[tuple[int, int]] = []
    first = build_index(store, emb, settings, progress=lambda d, t: seen.append((d, t)))
    assert first.count == first.lexical_count == store.count_enterprises() == 120
    assert (first.embedded, first.cached) == (120, 0) and emb.embedded == 120
    assert seen[-1] == (120, 120)
    second = build_index(store, emb, settings)
    assert (second.embedded, second.cached) == (0, 120) and emb.embedded == 120
    status = index_status(settings)
    assert status["exists"] and status["consistent"]
    assert status["vector"]["count"] == 120 and status["vector"]["embedder_id"] == emb.id
    assert status["vector"]["build_id"] == second.build_id
    assert store.pending_embedding(emb.id) == []


def test_update_upserts_changed_and_removes_deleted_enterprises(store: Store, settings: Settings) -> None:
    emb = CountingHashEmbedder()
    build_index(store, emb, settings)
    ents = load_demo_enterprises()[:120]
    changed = ents[0].model_copy(
        update={"products": [Product(name="番茄酱罐头", share=1.0)], "scope": "番茄酱"}
    )
    store.upsert_enterprises([changed])
    store.delete_enterprise(ents[1].id)
    status = update_index(store, embedder=emb, settings=settings)  # pending + deleted ids
    assert status.removed == 1 and status.embedded == 1 and status.count == 119
    hits = search_index("番茄酱罐头", 3, settings, emb)
    assert hits[0].id == ents[0].id and hits[0].lexical_rank == 1
    assert ents[1].id not in {h.id for h in search_index(ents[1].name, 50, settings, emb)}
    assert index_status(settings)["consistent"]


def test_update_and_search_need_a_built_index_of_the_same_embedder(store: Store, settings: Settings) -> None:
    with pytest.raises(IndexNotFoundError):
        update_index(store, ["demo-0001"], embedder=HashEmbedder(), settings=settings)
    build_index(store, HashEmbedder(dim=64), settings)
    with pytest.raises(IndexManifestError, match="hash-ngram-64"):
        search_index("多晶硅", 5, settings, HashEmbedder())


def test_search_fuses_dense_and_lexical_ranks(store: Store, settings: Settings) -> None:
    emb = HashEmbedder()
    build_index(store, emb, settings)
    hits = search_index("多晶硅", 5, settings, emb)
    assert len(hits) == 5
    names = [store.get_enterprise(h.id).name for h in hits]
    assert sum("硅" in n or any("硅" in p.name for p in store.get_enterprise(h.id).products)
               for n, h in zip(names, hits, strict=True)) >= 4  # fmt: skip
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_rrf_rewards_agreement_between_the_lists() -> None:
    fused = fuse_rrf([("a", 0.9), ("b", 0.8)], [("b", 7.0), ("c", 3.0)])
    assert [h.id for h in fused] == ["b", "a", "c"]
    assert fused[0].dense_rank == 2 and fused[0].lexical_rank == 1


# --- CLI --------------------------------------------------------------------------------------------------
def test_cli_builds_reports_and_searches(store: Store) -> None:
    from service.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["index", "status"])
    assert missing.exit_code == 1 and "exists: False" in missing.output
    built = runner.invoke(app, ["index", "build", "--json"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.output)["count"] == 120
    status = runner.invoke(app, ["index", "status", "--json"])
    assert json.loads(status.output)["consistent"] is True
    found = runner.invoke(app, ["search", "电解铝", "--k", "3"])
    assert found.exit_code == 0, found.output
    lines = found.output.strip().splitlines()
    assert len(lines) == 4 and "铝" in "".join(lines[1:])


def test_cli_search_without_an_index_fails_cleanly(store: Store) -> None:
    from service.cli import app

    res = CliRunner().invoke(app, ["search", "多晶硅"])
    assert res.exit_code == 2 and "no saved index" in res.output


# --- Ray --------------------------------------------------------------------------------------------------
@pytest.mark.slow  # ~60 s on a loaded 2-core machine (Ray start-up, actor pool); `pytest -m slow` runs it
def test_ray_engine_embeds_the_cache_misses_like_the_local_engine(store: Store, settings: Settings) -> None:
    ray = pytest.importorskip("ray", reason="the ray engine needs `pip install ray`")
    from index.vector import VectorIndex
    from matcher.indexing.build import index_dirs

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        status = build_index(store, get_embedder("hash"), settings, engine="ray")
    finally:
        ray.shutdown()
    assert status.engine == "ray" and status.embedded == 120 and status.count == 120
    ray_index = VectorIndex.load(index_dirs(settings)[0])
    local = build_index(
        store,
        get_embedder("hash"),
        settings.model_copy(update={"cache_dir": Path(settings.cache_dir) / "fresh"}),
    )
    assert local.embedded == 120
    local_index = VectorIndex.load(index_dirs(settings)[0])
    some = sorted(ray_index.ids)[:10]
    assert (ray_index.get_vectors(some) == local_index.get_vectors(some)).all()
