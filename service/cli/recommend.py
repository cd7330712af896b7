"""CLI: `recommend` (ranked shortlist for a region's gap), `shortlist` (whole region), `fit` (enterprise → regions)."""

from __future__ import annotations

import json

import typer

from matcher.ranking.recommendation import Filters, Recommendation, RecommendRequest
from matcher.ranking.scoring import MIN_MAKER_SHARE


def _progress_echo(done: int, total: int) -> None:
    if done == total or done % 512 == 0:
        typer.echo(f"  embedding profiles {done}/{total}", err=True)


def format_recommendation(r: Recommendation) -> str:
    """A ranked table with reasons, for terminals."""
    head = f"{r.region_name or '-'} · {r.chain_id or '-'}" + (f" · {r.link_id}" if r.link_id else "")
    if r.gap is not None:
        head += f" · {r.gap.type.value}（{r.gap.action}，优先级 {r.gap.priority:.2f}）"
    lines = [head, f"query: {r.query_text}", ""]
    lines.append(f"{'#':>3}  {'score':>6}  {'证据':<6}  {'企业':<24} {'省份':<6} {'股票代码':<10} 理由")
    for c in r.candidates:
        name = ("[虚构示例] " if c.fictional else "") + c.name
        code = (c.stock_code or "-") + ("(退市)" if c.listing_status == "delisted" else "")
        lines.append(
            f"{c.rank:>3}  {c.score:>6.3f}  {c.evidence_strength:<6}  {name[:24]:<24} {(c.province or '-'):<6} "
            f"{code:<10} " + "；".join(c.reasons[:3])
        )
        facts = [f"集团 {c.group}" if c.group else "", f"来源 {'、'.join(c.sources)}" if c.sources else "",
                 f"截至 {c.as_of}" if c.as_of else ""]  # fmt: skip
        if any(facts):
            lines.append(" " * 23 + " · ".join(f for f in facts if f))
    if not r.candidates:
        lines.append("  (no candidate passed the filters)")
    if r.note:
        lines.append(f"\n{r.note}")
    if r.expansions:
        lines.append(f"延伸候选（未见该环节产品占收入 {MIN_MAKER_SHARE:.0%} 以上，依据是上下游或相近业务）:")
        for c in r.expansions:
            why = c.reasons[1] if len(c.reasons) > 1 else ""
            lines.append(f"{c.rank:>3}  {c.score:>6.3f}  {c.name[:24]:<24} {(c.province or '-'):<6}  {why}")
    if r.leads:
        lines.append("线索待核实（仅文本相似，未找到产品或关联依据）:")
        lines += [f"{c.rank:>3}  {c.score:>6.3f}  {c.name[:24]:<24} {(c.province or '-'):<6}" for c in r.leads]
    lines.append(f"\n{len(r.candidates)} candidates, {r.excluded_residents} residents excluded, {r.took_ms:.0f} ms")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    from service.cli.common import handle_errors

    @app.command("recommend")
    @handle_errors
    def recommend(
        region: str = typer.Argument(..., help="Region id or name, e.g. 玛纳斯县"),
        chain: str = typer.Option(..., "--chain", "-c", help="Chain id, name or alias"),
        link: str | None = typer.Option(None, "--link", "-l", help="Gap link id, name or alias"),
        text: str = typer.Option("", "--text", help="Free-text need"),
        k: int = typer.Option(20, "--k", min=1, max=200),
        province: list[str] = typer.Option([], "--province", help="Only firms from these provinces (repeatable)"),
        listed_only: bool = typer.Option(False, "--listed-only"),
        tenant: str | None = typer.Option(None, "--tenant"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Ranked candidates for a region's 补链/延链/强链 need, with reasons."""
        from matcher.ranking.engine import Engine

        engine = Engine.open()
        engine.recommender(progress=_progress_echo)
        req = RecommendRequest(
            region=region, chain=chain, link=link, text=text, k=k, tenant=tenant,
            filters=Filters(provinces=province, listed_only=listed_only),
        )
        r = engine.recommend(req)
        typer.echo(r.model_dump_json(indent=2) if as_json else format_recommendation(r))

    @app.command("shortlist")
    @handle_errors
    def shortlist(
        region: str = typer.Argument(..., help="Region id or name"),
        k: int = typer.Option(5, "--k", min=1, max=200),
        max_gaps: int = typer.Option(10, "--max-gaps", min=1, max=100),
        chain: str | None = typer.Option(None, "--chain", "-c"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Diagnose a region and give a shortlist for each of its top gaps."""
        from matcher.ranking.engine import Engine

        engine = Engine.open()
        engine.recommender(progress=_progress_echo)
        out = engine.recommend_region(region, k=k, max_gaps=max_gaps, chain=chain)
        if as_json:
            typer.echo(json.dumps([r.model_dump(mode="json") for r in out], ensure_ascii=False, indent=2))
        else:
            typer.echo("\n\n".join(format_recommendation(r) for r in out))

    @app.command("fit")
    @handle_errors
    def fit(
        enterprise: str = typer.Argument(..., help="Enterprise id or name"),
        k: int = typer.Option(10, "--k", min=1, max=100),
        tenant: str | None = typer.Option(None, "--tenant"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Regions and parks whose gaps an enterprise fits best (the reverse direction)."""
        from matcher.ranking.engine import Engine

        engine = Engine.open()
        engine.ensure_corpus()
        ent, fits = engine.fit_regions(enterprise, k=k, tenant=tenant)
        if as_json:
            typer.echo(json.dumps({"enterprise": ent.id, "fits": [f.to_dict() for f in fits]}, ensure_ascii=False, indent=2))
            return
        typer.echo(f"{ent.name} ({ent.id}) — 映射环节: {', '.join(m.link_id for m in ent.links[:6]) or '无'}\n")
        for n, f in enumerate(fits, start=1):
            typer.echo(
                f"{n:>2}. {f.score:.3f}  {f.region_name} · {f.gap.chain_name} · {f.gap.link_name}（{f.gap.type.value}）"
            )
            for reason in f.reasons[:3]:
                typer.echo(f"      · {reason}")
