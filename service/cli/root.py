"""The ``chainmatch`` command line: the root typer app (the console script), one command per job.

Each concept registers its own commands from a small module of this package (``service/cli/<group>.py``) so
the jobs stay separate; errors the product raises on purpose become a clean message and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from service.cli import (
    bench_load,
    bench_recommend,
    bench_search,
    bench_start,
    catalog,
    doctor,
    evaluate,
    index,
    mapping,
    recommend,
    server,
    signals,
    store,
    train,
)

app = typer.Typer(
    name="chainmatch",
    help="ChainMatch 链式招商智能匹配: diagnose regions' chain gaps and rank enterprises that could fill them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log warnings only."),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        for noisy in ("alembic", "bm25s", "jieba", "sentence_transformers", "httpx", "urllib3", "faiss"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # milvus-lite's embedded server logs "Method not implemented" for calls pymilvus falls back from
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)


def _register() -> None:
    for module in (bench_load, bench_recommend, bench_search, bench_start, catalog, doctor, evaluate, index, mapping,
                   recommend, server, signals, store, train):
        module.register(app)
    train.register_ranker(app)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
