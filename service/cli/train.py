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
