"""CLI: `chainmatch train` — fit the learned reranker from labelled deals and CRM feedback, report grouped-CV
metrics against the default scorer, and save the versioned artefact where the service loads it."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from service.cli.common import handle_errors

    @app.command("train")
    @handle_errors
    def train(
        cases: Path | None = typer.Option(None, "--cases", help="Deals file (deals format) with labelled outcomes."),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Reference data (A-share corpus) for --cases."),
        feedback: bool = typer.Option(True, "--feedback/--no-feedback", help="Use CRM lead outcomes from the store."),
        kind: str = typer.Option("logreg", "--kind", help="logreg (transparent) or hgb"),
        folds: int = typer.Option(5, "--folds", min=2, max=20),
        save: bool = typer.Option(True, "--save/--no-save", help="Write the artefact to {data_dir}/reranker."),
    ) -> None:
        """Train the reranker; print grouped cross-validated recall@10 / MRR beside the default scorer's."""
        import numpy as np

        from evaluation.training import (
            case_pools,
            default_scorer_cv,
            feedback_training_set,
            pools_training_set,
        )
        from matcher.ranking.reranker import Reranker, TrainingSet
        from matcher.settings import get_settings

        settings = get_settings()
        ts = TrainingSet()
        baseline = None
        if cases is not None:
            from evaluation.cases import load_cases
            from evaluation.systems import fitted_recommender
            from matcher.store.ashare import load_ashare_corpus

            corpus = load_ashare_corpus(Path(data_dir) if data_dir else settings.shared_data_dir)
            rec = fitted_recommender(corpus, settings)
            pools = case_pools(rec, load_cases(cases), progress=lambda d, t: typer.echo(f"  case {d}/{t}", err=True))
            ts = pools_training_set(pools)
            baseline = default_scorer_cv(pools, rec)
        if feedback:
            from matcher.store.feedback import export_training_events
            from matcher.store.workspace import Workspace

            ts = feedback_training_set(export_training_events(Workspace.open(settings).store), ts)
        X, y, groups, needs = ts.arrays()
        if len(y) == 0 or len(np.unique(y)) < 2:
            typer.echo("错误 error: no labelled rows with both outcomes (give --cases FILE or record lead outcomes)", err=True)
            raise typer.Exit(code=2)
        model = Reranker(kind)
        cv = model.cross_validate(X, y, groups, needs, n_splits=folds)
        model.fit(X, y)
        typer.echo(f"rows {len(y)} (positives {int(y.sum())}), needs {len(set(needs))}, groups {len(set(groups))}")
        typer.echo("| scorer | recall@10 | MRR | needs |\n|---|---|---|---|")
        typer.echo(f"| reranker ({kind}, grouped {int(cv['n_folds'])}-fold CV) | {cv['recall@10']:.3f} | {cv['mrr']:.3f} | {int(cv['n_needs'])} |")
        if baseline:
            typer.echo(f"| default weights (same pools) | {baseline['recall@10']:.3f} | {baseline['mrr']:.3f} | {int(baseline['n_needs'])} |")
        if kind == "logreg":
            from matcher.ranking.scoring import FEATURES

            coefs = ", ".join(f"{f}={c:+.2f}" for f, c in zip(FEATURES, model.model_.coef_[0]))
            typer.echo(f"coefficients: {coefs}")
        if save:
            path = model.save(settings.data_dir / "reranker")
            typer.echo(f"saved reranker {model.version} to {path} (used by the service when present)")


def register_ranker(app: typer.Typer) -> None:
    from service.cli.common import handle_errors

    @app.command("train-ranker")
    @handle_errors
    def train_ranker_cmd(
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Reference data (A-share corpus)."),
        cases: Path | None = typer.Option(
            None, "--cases", help="Deals file: selects the ranker by grouped CV (without it the service never uses it)."
        ),
        queries: int = typer.Option(1200, "--queries", min=50, max=20000, help="Segment hold-out training queries."),
        seed: int = typer.Option(0, "--seed", help="Seed of the hold-out sampling and of LightGBM."),
        save: bool = typer.Option(True, "--save/--no-save", help="Write the artefact to {data_dir}/ranker/<version>."),
    ) -> None:
        """Train the learned ranker on segment hold-out queries (no deal labels); select it on deals out of fold."""
        import json

        from evaluation.ranker_job import build_ranker, write_ranker
        from evaluation.systems import fitted_recommender
        from matcher.settings import get_settings
        from matcher.store.ashare import load_ashare_corpus
        from models.cache import EmbeddingCache

        settings = get_settings()
        corpus = load_ashare_corpus(Path(data_dir) if data_dir else settings.shared_data_dir)
        rec = fitted_recommender(corpus, settings)
        case_list = None
        if cases is not None:
            from evaluation.cases import load_cases

            case_list = load_cases(cases)
        cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
        step = max(1, queries // 10)
        ltr, card = build_ranker(
            rec, case_list, cache, n_queries=queries, seed=seed,
            progress=lambda d, t: typer.echo(f"  hold-out query {d}/{t}", err=True) if d % step == 0 else None,
        )  # fmt: skip
        hold = card["holdout"]
        typer.echo(f"hold-out queries: {hold['queries_asked']} asked, {hold['queries_with_positive']} usable "
                   f"({hold['train_queries']} train / {hold['test_queries']} test, {hold['links']} links)")  # fmt: skip
        if "cv_with_ranker" in card:
            typer.echo("| blend | OOF R@10 | OOF R@50 | OOF MRR |\n|---|---|---|---|")
            for name in ("cv_without_ranker", "cv_with_ranker"):
                m = card[name]["out_of_fold"]
                typer.echo(f"| {name[3:]} | {m['recall@10']:.3f} | {m['recall@50']:.3f} | {m['mrr']:.3f} |")
            sl = card["expansion_slice"]
            typer.echo("expansion slice (held-out firms): " + json.dumps(
                {k: round(v["recall@50"], 3) for k, v in sl.items() if isinstance(v, dict)}, ensure_ascii=False))
        typer.echo(f"used by the service: {'yes, weight ' + str(card['ltr_weight']) if card['beats_default'] else 'no'}")
        if save:
            path = write_ranker(ltr, settings.data_dir / "ranker")
            typer.echo(f"saved ranker {ltr.version} to {path} (model card: {path / 'card.json'})")
