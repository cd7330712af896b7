"""CLI: `chainmatch bench start` — what a server start and its refreshes cost per firm on the store.

Three paths, each timed in wall and CPU seconds on the same stored firms: a fit from the store (what a start
without a usable snapshot does), the replay of the change feed's newer part onto a recommender fitted on the
older part (what a start from a snapshot does), and refresh-sized applies of the same firms (read, re-map,
re-embed, tokenise, swap: what the server's refresher does for API writes).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

import typer

logger = logging.getLogger(__name__)


def _timed(label: str, firms: int, work: Callable[[], object], rows: list[tuple[str, int, float, float]]):
    gc.collect()  # each path starts from the same collector state
    w0, c0 = time.perf_counter(), time.process_time()
    work()
    rows.append((label, firms, time.perf_counter() - w0, time.process_time() - c0))


def register(app: typer.Typer) -> None:
    from service.cli.common import group, handle_errors

    bench_app = group(app, "bench", "Benchmarks that print markdown tables (not CI gates).")

    @bench_app.command("start")
    @handle_errors
    def bench_start(
        older: float = typer.Option(0.5, "--older", min=0.05, max=0.95, help="Feed share in the snapshot"),
        batch: int = typer.Option(2000, "--batch", min=1, help="Firms per refresh"),
    ) -> None:
        """Fit, start-up replay and refresh applies on the store (CHAINMATCH_DATABASE_URL), per firm."""
        from matcher.ranking.engine import Engine
        from matcher.ranking.restore import replay_feed
        from matcher.settings import get_settings

        eng = Engine.open(get_settings())
        store = eng.ws.store
        feed, cursor = [], 0
        while page := store.changes_since(cursor, limit=10_000):
            feed += page
            cursor = page[-1].seq
        if not feed:
            raise typer.BadParameter("the store's change feed is empty: nothing to replay")
        eng.unfitted_recommender().fit(eng.all_enterprises()[:50])  # imports, jieba's dictionary: untimed
        mid = feed[int(older * (len(feed) - 1))].seq
        newer = {c.enterprise_id: c.tenant for c in feed if c.seq > mid}
        rows: list[tuple[str, int, float, float]] = []
        stored = store.count_enterprises("*")

        def older_fit(skip=frozenset(newer)):
            return eng.unfitted_recommender().fit([e for e in eng.all_enterprises() if e.id not in skip])

        _timed("fit from the store", stored, lambda: older_fit(frozenset()), rows)
        snapshot = [older_fit()]
        replay = lambda: replay_feed(snapshot.pop(), store, mid)  # noqa: E731
        _timed("start-up replay of the newer feed", len(newer), replay, rows)
        eng._recommender = older_fit()
        ids = list(newer.items())

        def applies() -> None:
            for start in range(0, len(ids), batch):
                apply = eng.prepare_refresh(ids[start : start + batch])
                if apply is not None:
                    apply()

        _timed(f"refreshes of {batch:,} firms", len(ids), applies, rows)
        typer.echo(f"\n{stored:,} stored firms, {len(newer):,} changed after the snapshot's feed position\n")
        typer.echo("| path | firms | wall s | CPU s | firms / CPU-s |")
        typer.echo("|---|---:|---:|---:|---:|")
        for label, n, wall, cpu in rows:
            typer.echo(f"| {label} | {n:,} | {wall:.2f} | {cpu:.2f} | {n / cpu:,.0f} |")
