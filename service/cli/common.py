"""Helpers every command module shares: one-line errors with exit code 2, and sub-command groups."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from index.errors import VectorIndexError
from matcher.errors import ChainMatchError

__all__ = ["group", "handle_errors"]

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
