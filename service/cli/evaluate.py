"""``chainmatch evaluate``: offline evaluation of ranking systems on real deals or on the synthetic benchmark.

Builds plain corpus documents from the A-share evaluation corpus (cached under ``settings.cache_dir`` by a
content hash of the input files and of the code that reads them), runs the baselines and any matcher systems
from :func:`evaluation.systems.matcher_systems`, prints a summary table and writes ``metrics.json``,
``per_query.json`` and ``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer

from evaluation.baselines import BASELINES, doc_text, jieba_tokens, make_baselines
from evaluation.cases import load_cases
from evaluation.environment import environment_info, environment_line
from evaluation.errors import EvaluationError, UnknownSystemError
from evaluation.harness import run_evaluation
from evaluation.report import write_outputs
from evaluation.results import EvaluationResult
from evaluation.synthetic import (
    check_against_expected,
    expected_metrics,
    make_synthetic_benchmark,
    reference_systems,
)
from matcher.records import Enterprise, Product
from matcher.settings import Settings, get_settings
from service.cli.common import handle_errors

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
REFERENCE = ("oracle", "reversed", "stepped")
CORPUS_FILES = (
    "ChainKnowledgeGraph/company.json",
    "ChainKnowledgeGraph/company_product.jsonl",
    "ChainKnowledgeGraph/company_industry.json",
    "wp19991_gp/stock_company_location.csv",
)
CACHE_VERSION = "eval-corpus-v1"
STRONG_SYSTEMS = ("tfidf+prior", "rrf+prior", "full-cv")
DEFAULT_SYSTEMS = "tfidf,full"  # the strong baselines (tfidf+prior, rrf+prior) and full-cv join every deal run
SYSTEMS_HELP = f"Comma-separated systems: baselines {', '.join(BASELINES)}, matcher systems, or 'all'."
SUMMARY_COLUMNS = (
    ("recall@10", "R@10"),
    ("recall@50", "R@50"),
    ("recall@100", "R@100"),
    ("ndcg@10", "nDCG@10"),
    ("mrr", "MRR"),
    ("hit@1", "hit@1"),
    ("coverage@10", "cov@10"),
    ("diversity@10", "div@10"),
    ("ms_per_query", "ms/q"),
)


def _evaluation_errors(func: F) -> F:
    """Evaluation errors (bad cases file, unknown system …) become a one-line message and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EvaluationError as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def enterprise_doc(e: Enterprise) -> dict[str, Any]:
    """Plain evaluation document of an enterprise (the shape :mod:`evaluation.baselines` ranks)."""
    return {
        "name": e.name,
        "short": e.aliases[0] if e.aliases else e.normalized_name,
        "industry": e.sw_industry,
        "products": [(p.name, p.share) for p in e.products],
        "employees": e.employees,
        "province": e.province,
    }


def doc_enterprise(doc_id: str, doc: Mapping[str, Any]) -> Enterprise:
    """Enterprise record of a plain document (so matcher systems can run on the synthetic corpus)."""
    return Enterprise(
        id=doc_id,
        name=doc["name"],
        normalized_name=doc.get("short") or doc["name"],
        aliases=[doc["short"]] if doc.get("short") else [],
        province=doc.get("province"),
        sw_industry=doc.get("industry"),
        products=[Product(name=n, share=s) for n, s in doc.get("products") or []],
        employees=doc.get("employees"),
        stock_code=doc_id.removeprefix("ashare-") if doc_id.startswith("ashare-") else None,
        source="evaluation:synthetic",
    )


def _inputs_hash(data_dir: Path) -> str:
    import evaluation.baselines as baselines_module
    import matcher.store.ashare as ashare_module
    import matcher.text as text_module

    h = hashlib.sha256(CACHE_VERSION.encode())
    for rel in CORPUS_FILES:
        p = data_dir / rel
        h.update(rel.encode())
        h.update(p.read_bytes() if p.exists() else b"<missing>")
    for module in (ashare_module, baselines_module, text_module):  # the code that turns the files into docs and tokens
        h.update(Path(module.__file__ or "").read_bytes())
    return h.hexdigest()[:20]


def load_corpus_docs(
    data_dir: Path, settings: Settings, use_cache: bool = True
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Corpus documents and their BM25 tokens, from the cache when the inputs are unchanged.

    Returns:
        ``(docs, tokens)`` keyed by enterprise id.
    """
    from matcher.store.ashare import load_ashare_corpus

    key = _inputs_hash(data_dir)
    path = settings.cache_dir / "evaluation" / f"corpus-{key}.json"
    if use_cache and path.exists():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            docs = {
                d: {**v, "products": [tuple(p) for p in v["products"]]} for d, v in cached["docs"].items()
            }
            logger.info("corpus docs from cache %s (%d docs)", path, len(docs))
            return docs, cached["tokens"]
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable cache %s: %s", path, exc)
    docs = {e.id: enterprise_doc(e) for e in load_ashare_corpus(data_dir)}
    tokens = {d: jieba_tokens(doc_text(doc)) for d, doc in docs.items()}
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"docs": docs, "tokens": tokens}, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        logger.info("cached corpus docs at %s", path)
    return docs, tokens


def _parse_systems(value: str) -> list[str]:
    names = [s.strip() for s in value.split(",") if s.strip()]
    return list(dict.fromkeys(names))


def _progress_runner(cases: Sequence[Any], systems: Mapping[str, Any], **kwargs: Any) -> EvaluationResult:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done)

        return run_evaluation(cases, systems, progress=progress, **kwargs)


def summary_table(result: EvaluationResult) -> str:
    """Markdown table of the headline metrics and the significance of each system vs the baseline."""
    sig_metric = result.significance_metric
    header = ["system", *(h for _, h in SUMMARY_COLUMNS), f"p {sig_metric} vs {result.baseline}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, s in result.systems.items():
        cells = [name]
        for m, _ in SUMMARY_COLUMNS:
            v = s.metrics.get(m)
            cells.append("–" if v is None or v != v else f"{v:.1f}" if m == "ms_per_query" else f"{v:.3f}")
        sig = result.significance.get(name)
        cells.append("(baseline)" if name == result.baseline else f"{sig['p_value']:.4f}" if sig else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _matcher_corpus(docs: Mapping[str, Mapping[str, Any]], data: Path, synthetic: bool) -> list[Enterprise]:
    if synthetic:
        return [doc_enterprise(d, doc) for d, doc in docs.items()]
    from matcher.store.ashare import load_ashare_corpus

    return load_ashare_corpus(data)


def _build_systems(
    requested: list[str],
    docs: dict[str, dict[str, Any]],
    tokens: dict[str, list[str]] | None,
    extra: Mapping[str, Any],
    data: Path,
    settings: Settings,
    seed: int,
    synthetic: bool,
    cases: list[Any] | None = None,
) -> dict[str, Any]:
    """The systems to run: ``extra`` (synthetic reference systems), the named baselines and matcher systems.

    Matcher systems are built only when a name outside the baselines is asked for (or ``all``); unknown
    names raise :class:`UnknownSystemError` listing every valid one.
    """
    fixed = [*BASELINES, *extra]
    matcher: dict[str, Any] = {}
    if "all" in requested or any(n not in fixed for n in requested):
        from evaluation import systems as eval_systems

        matcher = eval_systems.matcher_systems(
            _matcher_corpus(docs, data, synthetic), settings, cases=None if synthetic else cases
        )
    valid = [*fixed, *matcher]
    names = [*BASELINES, *matcher] if "all" in requested else [n for n in requested if n != "all"]
    for strong in STRONG_SYSTEMS:  # every deal report carries the strong baselines and the out-of-fold product
        if strong in matcher and strong not in names:
            names.append(strong)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise UnknownSystemError(unknown, [*valid, "all"])
    chosen: dict[str, Any] = dict(extra)
    chosen.update(make_baselines(docs, [n for n in names if n in BASELINES], seed=seed, doc_tokens=tokens))
    chosen.update({n: matcher[n] for n in names if n in matcher})
    return chosen


def register(app: typer.Typer) -> None:
    """Add ``chainmatch evaluate``."""

    @app.command("evaluate")
    @handle_errors
    @_evaluation_errors
    def evaluate(
        cases: Path | None = typer.Option(None, "--cases", help="Deals file (JSON Lines, deals format)."),
        out: Path = typer.Option(
            ..., "--out", help="Output directory (metrics.json, per_query.json, report.html)."
        ),
        data_dir: Path | None = typer.Option(
            None,
            "--data-dir",
            help="Reference data directory (default: settings.shared_data_dir, ../shared/data).",
        ),
        systems: str = typer.Option(DEFAULT_SYSTEMS, "--systems", help=SYSTEMS_HELP),
        synthetic: bool = typer.Option(
            False,
            "--synthetic",
            help="Use the synthetic benchmark (truth known by construction) and self-check.",
        ),
        baseline: str | None = typer.Option(
            None, "--baseline", help="System every other one is tested against (default: rrf+prior when the "
            "matcher runs on deals, else tfidf).",
        ),
        k_max: int = typer.Option(100, "--k-max", min=1, help="Ranking depth requested from each system."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random baseline, synthetic data and tests."),
        no_cache: bool = typer.Option(
            False, "--no-cache", help="Rebuild the corpus docs instead of reading the cache."
        ),
        plot_ablations: bool = typer.Option(
            False, "--plot-ablations", help="Also draw the ablations (full-*) on the report's recall@K plot."
        ),
    ) -> None:
        """Evaluate rankings on real deals (or the synthetic benchmark); write metrics and an HTML report."""
        settings = get_settings()
        if synthetic == (cases is not None):
            raise typer.BadParameter("give exactly one of --cases FILE or --synthetic")
        requested = _parse_systems(systems)
        if not requested:
            raise typer.BadParameter(f"--systems is empty; expected any of {', '.join(BASELINES)}")
        if baseline in BASELINES and baseline not in requested and "all" not in requested:
            logger.info("adding the baseline %s to the systems", baseline)
            requested.append(baseline)

        tokens: dict[str, list[str]] | None = None
        data = Path(data_dir) if data_dir is not None else settings.shared_data_dir
        if synthetic:
            bench = make_synthetic_benchmark(n_docs=max(240, k_max + 1), seed=seed)
            case_list, docs = bench.cases, bench.docs
        else:
            assert cases is not None
            case_list = load_cases(cases)
            docs, tokens = load_corpus_docs(data, settings, use_cache=not no_cache)

        extra = reference_systems(bench) if synthetic else {}
        chosen = _build_systems(requested, docs, tokens, extra, data, settings, seed, synthetic, case_list)

        if baseline is None:
            baseline = "rrf+prior" if "rrf+prior" in chosen else "tfidf"
        result = _progress_runner(case_list, chosen, k_max=k_max, baseline=baseline, docs=docs, seed=seed)
        result.environment = environment_info(embedder_id=settings.embedder)
        result.protocol = getattr(chosen.get("full-cv"), "protocol", {})
        paths = write_outputs(result, out, plot_ablations=plot_ablations)
        typer.echo(f"environment: {environment_line(result.environment)}")
        typer.echo(
            f"{result.n_cases} cases, {result.n_in_corpus} evaluable, "
            f"{len(result.not_evaluable)} not evaluable (in_corpus false or no stock code)"
        )
        typer.echo(summary_table(result))
        typer.echo(f"wrote {paths['metrics']}, {paths['per_query']}, {paths['report']}")
        if synthetic:
            measured = {n: s.metrics for n, s in result.systems.items()}
            problems = check_against_expected(measured, expected_metrics(bench, k_max=k_max))
            if problems:
                typer.echo("synthetic self-check FAILED:\n  " + "\n  ".join(problems), err=True)
                raise typer.Exit(code=1)
            typer.echo("synthetic self-check passed: oracle = 1, reversed = 0, stepped = closed form")
