"""CLI: the chain catalogue (`catalog stats`, `catalog show`) and gap diagnosis (`gaps`)."""

from __future__ import annotations

import json

import typer

from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.gap_view import CONCISE_PER_CHAIN, concise, format_gap_map
from matcher.knowledge.gaps import diagnose

catalog_app = typer.Typer(help="The chain catalogue: chains, links, edges.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from service.cli.common import handle_errors

    app.add_typer(catalog_app, name="catalog")

    @catalog_app.command("stats")
    @handle_errors
    def catalog_stats(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Counts of chains, links and edges."""
        stats = default_catalogue().stats()
        if as_json:
            typer.echo(json.dumps(stats, ensure_ascii=False))
        else:
            for k, v in stats.items():
                typer.echo(f"{k}\t{v}")

    @catalog_app.command("list")
    @handle_errors
    def catalog_list() -> None:
        """Every chain with its cluster and link count."""
        cat = default_catalogue()
        for c in sorted(cat.chains.values(), key=lambda c: (c.cluster, c.id)):
            typer.echo(f"{c.id}\t{c.name}\t{c.cluster}\t{len(c.link_ids)} links")

    @catalog_app.command("show")
    @handle_errors
    def catalog_show(chain: str = typer.Argument(..., help="Chain id, name or alias, e.g. aluminium or 铝产业链")) -> None:
        """Print a chain as a tree, upstream to downstream."""
        cat = default_catalogue()
        typer.echo(cat.tree(cat.chain(chain).id))

    @app.command("gaps")
    @handle_errors
    def gaps(
        region: str = typer.Argument(..., help="Region id or name, e.g. 玛纳斯县"),
        chain: str | None = typer.Option(None, "--chain", "-c", help="Only this chain (id, name or alias)."),
        as_json: bool = typer.Option(False, "--json", help="Print the GapMap JSON (the matcher/service contract)."),
        tenant: str | None = typer.Option(None, "--tenant", help="Tenant whose private regions are visible."),
        show_all: bool = typer.Option(
            False, "--all", help="The full list: every gap of every chain, the gaps flagged 不宜引进 (with the reason) "
            "and, as pointer rows (↪ 见 …), the gaps left to a sub-region because their whole evidence sits there.",
        ),
        per_chain: int = typer.Option(
            CONCISE_PER_CHAIN, "--per-chain", min=0, help="Rows per chain in the concise view (0 = every row).",
        ),
    ) -> None:
        """Diagnose a region's chain gaps (缺链 / 短链 / 弱链) with evidence and priority.

        The default view is concise: the top rows of each chain (``--per-chain``; JSON ``trimmed`` counts the rest).
        A sub-region's own gap is not repeated at prefecture or province level: the default view leaves it out and
        says where it went (JSON: ``delegated``); ``--all`` shows it as a pointer row.
        """
        from matcher.store.workspace import Workspace

        ws = Workspace.open()
        book = ws.regions(tenant)
        reg = book.get(region, tenant)
        gm = diagnose(
            reg, ws.catalogue, chain=chain, book=book, include_infeasible=show_all, include_delegated=show_all,
            located=ws.located_for(book, tenant),
        )
        gm = concise(gm, 0 if show_all else per_chain)
        if as_json:
            typer.echo(gm.model_dump_json(indent=2))
        else:
            typer.echo(format_gap_map(gm, ws.catalogue))
