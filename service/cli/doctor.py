"""CLI: ``chainmatch doctor [--repair]`` — is the persisted index in step with the store?

Exit codes: 0 no drift (or none left after ``--repair``), 1 drift found (or left after ``--repair``), 2 the
store or the configuration could not be opened.
"""

from __future__ import annotations

import json
import logging

import typer

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to the CLI."""
    from service.cli.common import handle_errors

    @app.command("doctor")
    @handle_errors
    def doctor(
        repair: bool = typer.Option(
            False, "--repair",
            help="Merge duplicate firms, re-embed missing/stale profiles, drop orphans (rebuild if unreadable).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    ) -> None:
        """Check the store for duplicate firms (one firm stored twice: same credit code, stock code, or name and
        province) and against the saved vector + lexical indexes: missing, orphaned and stale ids, embedder
        mismatch, checksum failures. Exits 1 when there are duplicates or drift."""
        from index.errors import VectorIndexError
        from matcher.indexing.doctor import check, expected_embedder_id
        from matcher.indexing.doctor import repair as repair_index
        from matcher.settings import get_settings
        from matcher.store.duplicates import find_duplicates
        from matcher.store.store import Store

        settings = get_settings()
        try:
            expected_embedder_id(settings)
        except ValueError as exc:  # an unknown embedder name in CHAINMATCH_EMBEDDER
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        with Store.from_settings(settings) as store:
            dups = find_duplicates(store)
            merged = _merge(store, dups, as_json) if repair and dups else None
            report = check(store, settings)
            if not repair:
                body = {**report.as_dict(), "duplicates": [g.as_dict() for g in dups]}
                typer.echo(
                    json.dumps(body, ensure_ascii=False, indent=2) if as_json else _format(report.format(), dups)
                )
                raise typer.Exit(code=1 if report.drift or dups else 0)
            if not as_json:
                typer.echo(report.format())
            if not report.drift:
                if as_json:
                    body = {"action": "none", "before": report.as_dict(), "after": report.as_dict(),
                            "merged": merged.as_dict() if merged else None}  # fmt: skip
                    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
                else:
                    typer.echo("nothing to repair")
                raise typer.Exit(code=0)
            try:
                result = repair_index(
                    store, settings, report=report,
                    progress=None if as_json else lambda d, t: typer.echo(f"  repaired {d}/{t} ids (saved)", err=True),
                )  # fmt: skip
            except VectorIndexError as exc:
                typer.echo(f"错误 error: repair failed: {exc}", err=True)
                raise typer.Exit(code=2) from None
        if as_json:
            body = {**result.as_dict(), "merged": merged.as_dict() if merged else None}
            typer.echo(json.dumps(body, ensure_ascii=False, indent=2, default=str))
        else:
            s = result.status
            done = (
                f"{s.embedded} embedded, {s.cached} from cache, {s.removed} removed, {s.seconds:.1f} s"
                if s
                else ""
            )
            typer.echo(f"\nrepair: {result.action} ({done})\n")
            typer.echo(result.after.format())
        raise typer.Exit(code=1 if result.after.drift else 0)


def _format(index_report: str, dups: list) -> str:
    """The index report, then the duplicate firms (a few shown)."""
    if not dups:
        return index_report + "\nOK: no firm is stored twice"
    lines = [index_report, f"DUPLICATES: {len(dups)} firm(s) stored more than once (chainmatch doctor --repair merges)"]
    lines += [f"  - {g.format()}" for g in dups[:20]]
    if len(dups) > 20:
        lines.append(f"  … and {len(dups) - 20} more")
    return "\n".join(lines)


def _merge(store, dups: list, quiet: bool):
    """Merge the duplicate groups with progress on stderr; each group is committed on its own."""
    from matcher.store.duplicates import merge_duplicates

    every = max(1, len(dups) // 20)

    def progress(done: int, total: int) -> None:
        if not quiet and (done % every == 0 or done == total):
            typer.echo(f"  merged {done}/{total} duplicate groups (saved)", err=True)

    outcome = merge_duplicates(store, dups, progress=progress)
    if not quiet:
        typer.echo(f"merged {outcome.groups} duplicate group(s): {len(outcome.removed_ids)} row(s) folded into "
                   f"{len(outcome.kept_ids)}")  # fmt: skip
    return outcome
