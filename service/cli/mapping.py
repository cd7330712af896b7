"""CLI: product → chain-link mapping (`mapping product`, `mapping eval`, `mapping bench`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from matcher.errors import ImportFileError, InvalidRequestError
from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.mapping import LinkMapper
from matcher.knowledge.mapping_eval import evaluate_mapping, load_labels

DEFAULT_LABELS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "link_labels.tsv"

MinScore = Annotated[float | None, typer.Option("--min-score", help="Drop matches below this score.")]
EmbedderName = Annotated[
    str | None,
    typer.Option("--embedder", help="Also use embeddings (e.g. hash, e5-int8); lexical only by default."),
]

mapping_app = typer.Typer(
    help="Map product names onto chain links, and measure the mapping.", no_args_is_help=True
)


def _mapper(min_score: float | None, embedder: str | None) -> LinkMapper:
    emb = None
    if embedder:
        try:
            from models.embedders import get_embedder
        except ImportError as exc:  # the embedder package is optional for the lexical mapper
            raise ImportFileError(
                f"embedder '{embedder}' requested but models.embedders is unavailable: {exc}"
            ) from exc
        try:
            emb = get_embedder(embedder)
        except ValueError as exc:  # unknown name: the message lists the valid ones
            raise InvalidRequestError("--embedder", embedder, str(exc)) from exc
    kwargs = {} if min_score is None else {"min_score": min_score}
    return LinkMapper(default_catalogue(), embedder=emb, **kwargs)


def register(app: typer.Typer) -> None:
    from service.cli.common import handle_errors

    app.add_typer(mapping_app, name="mapping")

    @mapping_app.command("product")
    @handle_errors
    def mapping_product(
        names: Annotated[list[str], typer.Argument(help="Product phrases, e.g. 高效单晶PERC电池片")],
        min_score: MinScore = None,
        embedder: EmbedderName = None,
    ) -> None:
        """Map product phrases onto links: link id, name, score, method."""
        mapper = _mapper(min_score, embedder)
        for name, matches in zip(names, mapper.map_products(names), strict=True):
            if not matches:
                typer.echo(f"{name}\t-\t(no link)")
            for m in matches:
                link = mapper.catalogue.links[m.link_id]
                typer.echo(f"{name}\t{m.link_id}\t{link.name}\t{m.score:.3f}\t{m.method}")

    @mapping_app.command("eval")
    @handle_errors
    def mapping_eval(
        labels: Annotated[
            Path, typer.Option("--labels", help="product<TAB>gold link id or NONE<TAB>note")
        ] = DEFAULT_LABELS,
        min_score: MinScore = None,
        embedder: EmbedderName = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the figures and errors as JSON.")
        ] = False,
    ) -> None:
        """Top-1 precision / recall / F1 of the mapper on hand-labelled products, every error listed."""
        mapper = _mapper(min_score, embedder)
        gold = load_labels(labels, mapper.catalogue)
        res = evaluate_mapping(mapper, gold)
        unseen = evaluate_mapping(mapper, gold, exclude_catalogue_terms=True)
        figures = {
            "labels": res.n,
            "positive": res.n_positive,
            "predicted": res.predicted,
            "correct": res.correct,
            "precision": round(res.precision, 4),
            "recall": round(res.recall, 4),
            "f1": round(res.f1, 4),
            "without_catalogue_terms": {
                "labels": unseen.n,
                "precision": round(unseen.precision, 4),
                "recall": round(unseen.recall, 4),
                "f1": round(unseen.f1, 4),
            },
        }
        if as_json:
            payload = {
                **figures,
                "wrong_link": res.wrong_link,
                "false_positive": res.false_positive,
                "missed": res.missed,
            }
            typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
            return
        typer.echo(
            f"labels {res.n} (with a link {res.n_positive}, NONE {res.n - res.n_positive}); "
            f"predicted {res.predicted}, correct {res.correct}"
        )
        typer.echo(f"precision {res.precision:.3f}  recall {res.recall:.3f}  F1 {res.f1:.3f}")
        typer.echo(
            f"without labels that are verbatim catalogue terms ({unseen.n}): "
            f"precision {unseen.precision:.3f}  recall {unseen.recall:.3f}  F1 {unseen.f1:.3f}"
        )
        typer.echo(
            f"confusion: correct {res.correct}, wrong link {len(res.wrong_link)}, "
            f"false positive on NONE {len(res.false_positive)}, missed {len(res.missed)}"
        )
        for product, pred, g in res.wrong_link:
            typer.echo(f"  WRONG   {product}\tpredicted {pred}\tgold {g}")
        for product, pred in res.false_positive:
            typer.echo(f"  FALSE+  {product}\tpredicted {pred}\tgold NONE")
        for product, g in res.missed:
            typer.echo(f"  MISSED  {product}\tgold {g}")

    @mapping_app.command("bench")
    @handle_errors
    def mapping_bench(
        data_dir: Annotated[
            Path | None, typer.Option("--data-dir", help="shared/data (default: settings).")
        ] = None,
        rows: Annotated[int, typer.Option("--rows", help="Use only the first N product rows (0 = all).")] = 0,
    ) -> None:
        """Throughput of `map_product` over the A-share product rows: cold (empty cache) and warm passes."""
        from matcher.settings import get_settings

        base = data_dir or get_settings().shared_data_dir
        path = Path(base) / "ChainKnowledgeGraph" / "company_product.jsonl"
        if not path.exists():
            raise ImportFileError(
                f"{path}: not found (expected shared/data with ChainKnowledgeGraph; use --data-dir)"
            )
        names = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    names.append(str(json.loads(line).get("product_name") or ""))
        if rows:
            names = names[:rows]
        t0 = time.perf_counter()
        mapper = LinkMapper(default_catalogue())  # loads jieba and adds the catalogue terms
        build = time.perf_counter() - t0
        mapped = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for n in names:
            mapped += bool(mapper.map_product(n))
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        for n in names:
            mapper.map_product(n)
        warm = time.perf_counter() - t0
        info = mapper.cache_info()
        typer.echo(
            f"rows {len(names)}, distinct phrases {info['size']}, mapped to a link {mapped} "
            f"({mapped / max(len(names), 1):.1%})"
        )
        typer.echo(f"mapper build (jieba load + catalogue terms) {build:.2f} s")
        typer.echo(
            f"cold pass {cold:.2f} s wall = {len(names) / cold:,.0f} rows/s "
            f"({info['size'] / cold:,.0f} distinct/s); "
            f"CPU {cold_cpu:.2f} s = {len(names) / cold_cpu:,.0f} rows/s"
        )
        typer.echo(f"warm pass {warm:.2f} s = {len(names) / warm:,.0f} rows/s (all cached)")
