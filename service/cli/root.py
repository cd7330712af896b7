"""The ``chainmatch`` command line: one typer app, one command per job.

Each concept registers its own commands from a small module (``service/cli_*.py``) so the jobs stay
separate; errors the product raises on purpose become a clean message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from index.errors import VectorIndexError
from matcher.errors import ChainMatchError

app = typer.Typer(
    name="chainmatch",
    help="ChainMatch 链式招商智能匹配: diagnose regions' chain gaps and rank enterprises that could fill them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn ChainMatchError, index errors and bad files into a one-line message on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ChainMatchError as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        except (VectorIndexError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def group(parent: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The sub-command group ``name`` of ``parent`` (created by whichever module registers first)."""
    for info in parent.registered_groups:
        inst = info.typer_instance
        if inst is not None and name in (info.name, getattr(inst.info, "name", None)):
            return inst
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    parent.add_typer(sub, name=name, help=help_text)
    return sub


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
    import importlib
    import pkgutil

    import service

    for mod in sorted(pkgutil.iter_modules(service.__path__), key=lambda m: m.name):
        if mod.name.startswith("cli_"):
            module = importlib.import_module(f"service.{mod.name}")
            module.register(app)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
