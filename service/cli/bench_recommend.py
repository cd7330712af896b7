"""CLI: `chainmatch bench recommend` — recommend latency on the A-share corpus and a 100k synthetic corpus,
against raw FAISS + raw query embedding on the same vectors in the same run (markdown table)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import typer

logger = logging.getLogger(__name__)


class _SplitEmbedder:
    """Passages from a cheap embedder, queries from the real one (latency of a 100k corpus without embedding it)."""

    def __init__(self, passages, queries) -> None:
        self.p, self.q = passages, queries
        self.id, self.dim = f"{passages.id}+{queries.id}", queries.dim

    def encode_passages(self, texts):
        return self.p.encode_passages(texts)

    def encode_queries(self, texts):
        return self.q.encode_queries(texts)


def _pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p)) if xs else float("nan")


def _needs(catalogue, n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = [(c.id, lid) for c in catalogue.chains.values() for lid in c.link_ids]
    rng.shuffle(pairs)
    return pairs[:n]


def _synthetic_corpus(catalogue, n: int, seed: int):
    from matcher.knowledge.geo import CAPITALS
    from matcher.records import Enterprise, LinkMatch, Product

    rng = random.Random(seed)
    links = list(catalogue.links.values())
    provs = list(CAPITALS)
    out = []
    for i in range(n):
        chosen = rng.sample(links, rng.randint(1, 3))
        shares = np.random.default_rng(seed + i).dirichlet(np.ones(len(chosen)))
        prods = [Product(name=(l.products or l.aliases or (l.name,))[0], share=round(float(s), 3)) for l, s in zip(chosen, shares)]
        out.append(
            Enterprise(
                id=f"syn-{i:06d}", name=f"合成示例{i:06d}有限公司", province=rng.choice(provs),
                employees=int(rng.lognormvariate(6, 1.3)), products=prods,
                links=[LinkMatch(link_id=l.id, score=1.0, method="alias", evidence=p.name, share=p.share)
                       for l, p in zip(chosen, prods)],
            )
        )
    return out


def _raw_like(vindex):
    """A raw FAISS reference of the same structure and parameters as ``vindex`` (HNSW when it is HNSW)."""
    import faiss

    return faiss.clone_index(vindex.faiss_index)


def _run(rec, catalogue, needs, raw_index, qk: int, k: int) -> dict[str, tuple[list[float], list[float], float, float]]:
    """Per need: ours and raw, wall ms per request, CPU-s in total — query embedded and not embedded apart."""
    from matcher.ranking.recommendation import RecommendRequest

    out: dict[str, tuple[list[float], list[float], float, float]] = {}
    for embedded in (False, True):
        ours, raw, cpu_ours, cpu_raw = [], [], 0.0, 0.0
        for chain_id, link_id in needs:
            req = RecommendRequest(province="新疆", prefecture="昌吉州", chain=chain_id, link=link_id, k=k)
            if embedded:
                r = rec.recommend(req, None)  # primes the query cache, as the server's warm-up does
                qv = rec.embedder.encode_queries([r.query_text])
            else:
                rec._qcache.clear()
            c0, t0 = time.process_time(), time.perf_counter()
            r = rec.recommend(req, None)
            ours.append((time.perf_counter() - t0) * 1000)
            cpu_ours += time.process_time() - c0
            c0, t0 = time.process_time(), time.perf_counter()
            if not embedded:
                qv = rec.embedder.encode_queries([r.query_text])
            raw_index.search(qv, qk)
            raw.append((time.perf_counter() - t0) * 1000)
            cpu_raw += time.process_time() - c0
        out["query embedded" if embedded else "query not embedded"] = (ours, raw, cpu_ours, cpu_raw)
    return out


def register(app: typer.Typer) -> None:
    from service.cli.common import group, handle_errors

    bench_app = group(app, "bench", "Benchmarks that print markdown tables (not CI gates).")

    @bench_app.command("recommend")
    @handle_errors
    def bench_recommend(
        data_dir: Path | None = typer.Option(None, "--data-dir", help="../shared/data (A-share corpus)"),
        queries: int = typer.Option(100, "--queries", min=5, help="Needs per scenario"),
        synthetic_n: int = typer.Option(100_000, "--synthetic-n", min=0, help="Synthetic corpus size (0 = skip)"),
        k: int = typer.Option(20, "--k", min=1, max=200),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """p50/p95 latency of one gap (query embedding included) and of a whole region, vs raw FAISS."""
        import faiss

        from evaluation.systems import fitted_recommender
        from matcher.knowledge.catalogue import default_catalogue
        from matcher.knowledge.regions import default_regions
        from matcher.ranking.recommendation import RecommendRequest
        from matcher.ranking.recommender import Recommender
        from matcher.settings import get_settings
        from matcher.store.ashare import load_ashare_corpus
        from models.embedders import get_embedder

        settings = get_settings()
        catalogue = default_catalogue()
        emb = get_embedder(settings.embedder, cache_dir=settings.cache_dir)
        faiss.omp_set_num_threads(1)
        rows = []
        corpus = load_ashare_corpus(Path(data_dir) if data_dir else settings.shared_data_dir)
        typer.echo(f"fitting on the A-share corpus ({len(corpus)} firms, embedder {emb.id}) …", err=True)
        rec = fitted_recommender(corpus, settings, emb)
        raw = _raw_like(rec.vindex_)
        needs = _needs(catalogue, queries, seed)
        rec.recommend(RecommendRequest(chain=needs[0][0], k=k))  # warm-up (jieba, BLAS)
        for mode, (ours, base, c_o, c_b) in _run(rec, catalogue, needs, raw, rec.depth.dense + 20, k).items():
            rows.append((f"one gap, A-share ({rec.vindex_.kind}), {mode}", len(corpus), len(needs), ours, base, c_o, c_b))
        book = default_regions()
        region_times, c0 = [], time.process_time()
        for region in ("changji", "manas", "zhundong", "gongliu", "mulei"):
            rec._qcache.clear()
            t0 = time.perf_counter()
            out = rec.recommend_region(region, book, k=k, max_gaps=10)
            region_times.append((time.perf_counter() - t0) * 1000)
            logger.info("region %s: %d gaps", region, len(out))
        rows.append(("whole region (10 gaps), A-share, queries not embedded", len(corpus), len(region_times),
                     region_times, [], time.process_time() - c0, 0.0))
        if synthetic_n:
            from models.embedders import HashEmbedder

            typer.echo(f"building a {synthetic_n:,}-firm synthetic corpus (hash passages, {emb.id} queries) …", err=True)
            syn = _synthetic_corpus(catalogue, synthetic_n, seed)
            split = _SplitEmbedder(HashEmbedder(dim=emb.dim), emb)
            rec2 = Recommender(catalogue, split, index_factory=settings.index_factory).fit(syn)
            raw2 = _raw_like(rec2.vindex_)
            for mode, (o2, b2, c_o, c_b) in _run(rec2, catalogue, needs, raw2, rec2.depth.dense + 20, k).items():
                rows.append((f"one gap, synthetic ({rec2.vindex_.kind}), {mode}", synthetic_n, len(needs), o2, b2, c_o, c_b))
        from evaluation.environment import environment_info, environment_line

        typer.echo("\n" + environment_line(environment_info(emb.id)))
        typer.echo("raw = the same FAISS structure (cloned from the corpus index) + the query embedding when the "
                   "scenario does not have it; CPU-s summed over the scenario's requests")
        typer.echo("\n| scenario | corpus | requests | p50 ms | p95 ms | CPU-s | raw p50 / p95 ms | raw CPU-s "
                   "| p50 ratio | CPU ratio |")
        typer.echo("|---|---|---|---|---|---|---|---|---|---|")
        for name, n, q, o, b, c_o, c_b in rows:
            rawtxt = f"{_pct(b, 50):.2f} / {_pct(b, 95):.2f}" if b else "-"
            ratio = f"{_pct(o, 50) / _pct(b, 50):.1f}×" if b else "-"
            cratio = f"{c_o / c_b:.1f}×" if b and c_b > 0 else "-"
            typer.echo(f"| {name} | {n:,} | {q} | {_pct(o, 50):.2f} | {_pct(o, 95):.2f} | {c_o:.2f} | {rawtxt} "
                       f"| {(f'{c_b:.3f}' if b else '-')} | {ratio} | {cratio} |")

    @bench_app.command("refresh")
    @handle_errors
    def bench_refresh(
        sizes: str = typer.Option("10000,100000", "--n", help="Synthetic corpus sizes, comma-separated"),
        changed: str = typer.Option("1,10", "--changed", help="Profiles changed per refresh, comma-separated"),
        repeats: int = typer.Option(20, "--repeats", min=3),
        seed: int = typer.Option(0, "--seed"),
    ) -> None:
        """Cost of keeping a fitted recommender current (the server's refresh per batch of upserts) vs
        rebuilding the BM25 matrix with bm25s (the refresh before in-place postings) on the same tokens."""
        import bm25s

        from matcher.knowledge.catalogue import default_catalogue
        from matcher.ranking.recommender import Recommender
        from models.embedders import HashEmbedder

        catalogue = default_catalogue()
        emb = HashEmbedder()
        typer.echo("| corpus | changed | prepare p50 / p95 ms | swap p50 ms | bm25s rebuild p50 ms | rebuild / ours |")
        typer.echo("|---:|---:|---|---:|---:|---:|")
        for n in (int(x) for x in sizes.split(",") if x.strip()):
            typer.echo(f"fitting a {n:,}-firm synthetic corpus …", err=True)
            syn = _synthetic_corpus(catalogue, n, seed)
            rec = Recommender(catalogue, emb).fit(syn)
            tokens = [rec.lindex_.tokens(e.id) or [""] for e in rec.enterprises_]
            rebuild = []
            for _ in range(3):
                t0 = time.perf_counter()
                bm25s.BM25(method="lucene").index(tokens, show_progress=False)
                rebuild.append((time.perf_counter() - t0) * 1000)
            rng = random.Random(seed)
            for m in (int(x) for x in changed.split(",") if x.strip()):
                prep, swap = [], []
                for r in range(repeats):
                    picks = rng.sample(rec.enterprises_, m)
                    ups = [e.model_copy(update={"name": f"{e.name}{r}", "employees": (e.employees or 0) + 1})
                           for e in picks]  # fmt: skip
                    t0 = time.perf_counter()
                    prepared = rec.prepare_update(ups)
                    t1 = time.perf_counter()
                    rec.apply_update(prepared)
                    t2 = time.perf_counter()
                    prep.append((t1 - t0) * 1000)
                    swap.append((t2 - t1) * 1000)
                ours = _pct(prep, 50) + _pct(swap, 50)
                typer.echo(
                    f"| {n:,} | {m} | {_pct(prep, 50):.1f} / {_pct(prep, 95):.1f} | {_pct(swap, 50):.2f} | "
                    f"{_pct(rebuild, 50):.0f} | {_pct(rebuild, 50) / ours:.1f}× |"
                )
