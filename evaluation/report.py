"""Outputs of an evaluation: ``metrics.json``, ``per_query.json`` and a self-contained HTML report (plotly JS
inlined once, readable without network)."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from evaluation.cases import SLICE_DIMENSIONS
from evaluation.results import SLICE_METRICS, EvaluationResult, true_rank

logger = logging.getLogger(__name__)

_CSS = """
body{font-family:-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.good{background:#e5f5e0}.bad{background:#fde0dd}.muted{color:#888}.small{font-size:12px}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
"""
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
SLICE_TITLES = {
    "region": "Region 区域",
    "chain_family": "Chain family 产业链",
    "self_expansion": "链主 self-expansion",
    "confidence": "Label confidence",
}
METRIC_COLUMNS = (
    "recall@10",
    "recall@50",
    "recall@100",
    "ndcg@10",
    "mrr",
    "hit@1",
    "hit@10",
    "coverage@10",
    "diversity@10",
    "ms_per_query",
)


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        if x != x:  # NaN
            return "–"
        return f"{x:.{digits}f}"
    return _e(x)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], raw: bool = False) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(c if raw else f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fig_html(fig: go.Figure, div_id: str, first: bool) -> str:
    return fig.to_html(
        full_html=False,
        include_plotlyjs=True if first else False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


PROMINENT = ("full", "tfidf", "bm25")
"""Systems drawn in colour on the recall@K plot (with the run's baseline); the others are grey."""
GREY = "#b0b0b0"


def is_ablation(name: str) -> bool:
    """``full-dense``, ``full-mmr`` …: the full system with one part taken out."""
    return name.startswith("full-")


def _curve_figure(result: EvaluationResult, plot_ablations: bool = False) -> go.Figure:
    """Recall@K curves: ``full`` and the baselines (tfidf, bm25, the run's baseline) in colour, other
    systems thin and grey, ablations (``full-*``) only with ``plot_ablations`` (dashed)."""
    fig = go.Figure()
    prominent = [n for n in result.systems if n in PROMINENT or n == result.baseline]
    ablations = [n for n in result.systems if is_ablation(n)] if plot_ablations else []
    others = [n for n in result.systems if n not in prominent and not is_ablation(n)]
    styles: list[tuple[str, dict[str, Any]]] = [(n, {"color": GREY, "width": 1}) for n in others]
    styles += [
        (n, {"color": PALETTE[(i + len(prominent)) % len(PALETTE)], "width": 1.5, "dash": "dash"})
        for i, n in enumerate(ablations)
    ]
    styles += [(n, {"color": PALETTE[i % len(PALETTE)], "width": 3}) for i, n in enumerate(prominent)]
    for name, line in styles:  # prominent curves last: drawn on top
        s = result.systems[name]
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(s.curve) + 1)),
                y=s.curve,
                mode="lines",
                name=name,
                line=line,
                opacity=0.7 if line["color"] == GREY else 1.0,
            )
        )
    fig.update_layout(
        title=f"Recall@K (K = 1..{result.k_max}), {result.n_in_corpus} evaluable cases",
        xaxis_title="K",
        yaxis_title="Recall@K",
        yaxis_range=[0, 1.02],
        height=420,
        margin={"t": 50, "b": 40, "l": 50, "r": 20},
    )
    return fig


def _slice_figure(result: EvaluationResult, dim: str) -> go.Figure:
    groups = result.slices[dim]
    labels = [f"{v} (n={g['n']})" for v, g in groups.items()]
    fig = make_subplots(
        rows=1, cols=len(SLICE_METRICS), subplot_titles=list(SLICE_METRICS), shared_yaxes=True
    )
    for si, name in enumerate(result.systems):
        for col, m in enumerate(SLICE_METRICS, start=1):
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=[g["systems"][name][m] for g in groups.values()],
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    marker_color=PALETTE[si % len(PALETTE)],
                ),
                row=1,
                col=col,
            )
    fig.update_layout(
        title=f"By slice: {SLICE_TITLES.get(dim, dim)}",
        barmode="group",
        height=380,
        yaxis_range=[0, 1.02],
        margin={"t": 70, "b": 40, "l": 50, "r": 20},
    )
    return fig


def _metrics_table(result: EvaluationResult) -> str:
    best = {m: max((s.metrics.get(m) or 0.0) for s in result.systems.values()) for m in METRIC_COLUMNS}
    rows = []
    for name, s in result.systems.items():
        cells = [f"<td><b>{_e(name)}</b>{' (baseline)' if name == result.baseline else ''}</td>"]
        for m in METRIC_COLUMNS:
            v = s.metrics.get(m)
            cls = (
                "num good"
                if m not in ("ms_per_query",) and v is not None and v == best[m] and v > 0
                else "num"
            )
            cells.append(f'<td class="{cls}">{_fmt(v, 1 if m == "ms_per_query" else 3)}</td>')
        rows.append(cells)
    return _table(["system", *METRIC_COLUMNS], rows, raw=True)


def _significance_table(result: EvaluationResult) -> str:
    rows = []
    for name, sig in result.significance.items():
        for m, t in sig["tests"].items():
            p = t["p_value"]
            cls = ("good" if t["delta"] > 0 else "bad") if p < 0.05 else ""
            rows.append(
                [
                    f"<td>{_e(name)}</td>",
                    f"<td>{_e(sig['vs'])}</td>",
                    f"<td>{_e(m)}</td>",
                    f'<td class="num">{t["delta"]:+.3f}</td>',
                    f'<td class="num {cls}">{p:.4f}</td>',
                    f'<td class="num">{_fmt(t["t_test_p_value"], 4)}</td>',
                ]
            )
    if not rows:
        return '<p class="muted">Only the baseline was run: nothing to compare.</p>'
    return _table(["system", "vs", "metric", "Δ mean", "p (randomisation)", "p (paired t)"], rows, raw=True)


def _rank_matrix(result: EvaluationResult) -> str:
    names = list(result.systems)
    rows = []
    for c in result.cases:
        truth = ", ".join(result.doc_names.get(d, d) for d in sorted(result.qrels[c.id]))
        cells = [
            f"<td>{_e(c.id)}</td>",
            f"<td>{_e(c.region_province)}</td>",
            f"<td>{_e(c.chain)}</td>",
            f"<td>{_e(c.query.product_link)}</td>",
            f"<td>{_e(truth)}</td>",
        ]
        for n in names:
            r = true_rank(result.qrels[c.id], result.systems[n].runs[c.id])
            cls = "good" if r is not None and r <= 10 else "bad" if r is None else ""
            cells.append(f'<td class="num {cls}">{r if r is not None else f"&gt;{result.k_max}"}</td>')
        rows.append(cells)
    return _table(["case", "province", "chain", "product link", "true firm", *names], rows, raw=True)


def _misses_section(result: EvaluationResult) -> str:
    parts = []
    for name in result.systems:
        rows = [m for m in result.misses if m["system"] == name]
        body = []
        for m in rows:
            top = "<br>".join(
                f"{i}. {_e(t['name'])} <span class='muted'>({t['score']:.3g})</span>"
                + (f" <span class='small'>{_e(t['why'])}</span>" if t["why"] else "")
                for i, t in enumerate(m["top3"], start=1)
            )
            rank = m["rank"] if m["rank"] is not None else f"&gt;{result.k_max}"
            body.append(
                [
                    f"<td>{_e(m['case_id'])}</td>",
                    f"<td>{_e(m['region'])}</td>",
                    f"<td class='small'>{_e(m['query'])}</td>",
                    f"<td>{_e(m['truth_name'])}</td>",
                    f"<td class='num'>{rank}</td>",
                    f"<td class='small'>{top}</td>",
                ]
            )
        table = (
            _table(
                ["case", "region", "query (masked)", "true firm", "rank", "top-3 returned (score, why)"],
                body,
                raw=True,
            )
            if body
            else "<p>No misses.</p>"
        )
        parts.append(
            f"<details{' open' if name == result.baseline else ''}><summary>{_e(name)}: {len(rows)} of "
            f"{result.n_in_corpus} cases missed top {10}</summary>{table}</details>"
        )
    return "".join(parts)


def _environment_section(result: EvaluationResult) -> str:
    env = result.environment
    packages = sorted(env.get("packages", {}).items())
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in packages)
    return (
        f"<p id='environment'>Embedder <b>{_e(env.get('embedder') or '-')}</b>, "
        f"Python {_e(env.get('python'))}, "
        f"{_e(env.get('platform'))}, measured {_e(env.get('measured_at'))}.</p>"
        f"<table class='env'><tr><th>package</th><th>version</th></tr>{rows}</table>"
    )


def _protocol_section(result: EvaluationResult) -> str:
    """Grouped-CV parameters per system and fold, and the expansion slice (segment hold-out queries)."""
    proto = result.protocol or {}
    if not proto:
        return "<p>No grouped-CV systems in this run.</p>"
    rows = []
    for name, rep in proto.items():
        if not isinstance(rep, dict) or "out_of_fold" not in rep:
            continue
        oof = rep["out_of_fold"]
        chosen = ", ".join(f"{k}={v:g}" for k, v in rep.get("final_params", {}).items() if v)
        folds = "; ".join(", ".join(f"{k}={v:g}" for k, v in p.items() if v) or "0" for p in rep.get("fold_params", []))
        rows.append([name, f"{oof['recall@10']:.3f}", f"{oof['recall@50']:.3f}", f"{oof['mrr']:.3f}", folds, chosen])
    html = _table(["system", "OOF R@10", "OOF R@50", "OOF MRR", "chosen per fold", "chosen on all (shipped)"], rows)
    sl = proto.get("holdout-slice")
    if isinstance(sl, dict):
        srows = [[k, f"{v['recall@10']:.3f}", f"{v['recall@50']:.3f}", f"{v['mrr']:.3f}"]
                 for k, v in sl.items() if isinstance(v, dict)]  # fmt: skip
        html += (f"<h3>Expansion slice: {sl.get('queries')} segment hold-out queries of {sl.get('firms')} firms the "
                 "learned ranker never saw</h3>" + _table(["scorer", "R@10", "R@50", "MRR"], srows))  # fmt: skip
    return html


def render_report(result: EvaluationResult, plot_ablations: bool = False) -> str:
    """The whole report as one HTML string (plotly.js inlined in the first figure, no CDN, no CSS link);
    ``plot_ablations`` adds the ablations (``full-*``) to the recall@K plot."""
    figs = [("recall-curve", _curve_figure(result, plot_ablations))]
    figs += [
        (f"slice-{dim}", _slice_figure(result, dim)) for dim in SLICE_DIMENSIONS if result.slices.get(dim)
    ]
    fig_html = {div: _fig_html(f, div, i == 0) for i, (div, f) in enumerate(figs)}
    slices_html = "".join(fig_html[f"slice-{d}"] for d in SLICE_DIMENSIONS if f"slice-{d}" in fig_html)
    not_eval = _table(
        ["case", "enterprise", "reason"],
        [[r["case_id"], r["enterprise"] or "", r["reason"]] for r in result.not_evaluable],
    )
    per_case_pts = 100.0 / result.n_in_corpus if result.n_in_corpus else 0.0
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>ChainMatch offline evaluation</title>
<style>{_CSS}</style></head><body>
<h1>ChainMatch offline evaluation 离线评测</h1>
<p>{result.n_cases} cases, <b>{result.n_in_corpus} evaluable</b> (true firm's listed parent in the corpus),
{len(result.not_evaluable)} not evaluable. Rankings of depth {result.k_max};
baseline <b>{_e(result.baseline)}</b>.
Generated {generated}.</p>
<p class="small muted">With {result.n_in_corpus} cases one case moves a recall figure by
{per_case_pts:.1f} points:
read differences through the significance table. Recall@K: share of cases whose true firm is in the top K.
MRR: mean of 1 / rank of the true firm (0 beyond depth {result.k_max}). nDCG@10 with linear gain.
hit@1: the true
firm ranked first. coverage@10: share of the corpus shown in any top 10. diversity@10: share of
top-10 pairs from different industries (1 − Jaccard over industry), unless doc vectors were given.</p>
<h2>Environment</h2>{_environment_section(result)}
<h2>Metrics</h2>{_metrics_table(result)}
<h2>Protocol: choices made by cross-validation grouped by investing firm</h2>
<p class="small muted">Systems named *-cv and the +prior baselines rank each case with parameters chosen on folds
that do not contain its investing firm (out of fold). "chosen on all" is what the product ships; its in-sample
figure is not a result.</p>{_protocol_section(result)}
<h2>Recall@K</h2>{fig_html["recall-curve"]}
<h2>Significance vs {_e(result.baseline)}</h2>
<p class="small muted">Two-sided paired tests over the same cases. p: sign-flip randomisation clustered by
investing firm (the per-firm mean differences are flipped: cases of one firm are not independent); the per-case
sign-flip and t-test p-values are listed beside it in metrics.json. Green / red: p &lt; 0.05.</p>
{_significance_table(result)}
<h2>Slices</h2>{slices_html}
<h2>Rank of the true firm per case</h2>{_rank_matrix(result)}
<h2>Misses (true firm not in top 10)</h2>{_misses_section(result)}
<h2>Not evaluable</h2>{not_eval if result.not_evaluable else "<p>None.</p>"}
</body></html>
"""


def write_outputs(
    result: EvaluationResult, out_dir: str | Path, plot_ablations: bool = False
) -> dict[str, Path]:
    """Write ``metrics.json``, ``per_query.json`` and the self-contained ``report.html`` into ``out_dir``
    (``plot_ablations``: draw the ablations on the report's recall@K plot too).

    Returns:
        The written paths by kind (``metrics``, ``per_query``, ``report``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "per_query": out / "per_query.json",
        "report": out / "report.html",
    }
    paths["metrics"].write_text(
        json.dumps(result.metrics_json(), ensure_ascii=False, indent=2), encoding="utf-8"
    )
    paths["per_query"].write_text(
        json.dumps(result.per_query_json(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    paths["report"].write_text(render_report(result, plot_ablations=plot_ablations), encoding="utf-8")
    logger.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths
