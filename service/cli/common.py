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
        except OSError as exc:  # disk full, read-only file system, I/O errors: stored data is left as it was
            typer.echo(f"错误 error: {_io_message(exc)}", err=True)
            raise typer.Exit(code=2) from None
        except Exception as exc:
            message = _storage_message(exc)
            if message is None:
                raise
            typer.echo(f"错误 error: {message}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def _io_message(exc: OSError) -> str:
    import errno

    what = {
        errno.ENOSPC: "磁盘已满 (no space left on device)",
        errno.EFBIG: "文件超出大小上限 (file too large)",
        errno.EROFS: "文件系统只读 (read-only file system)",
        errno.EDQUOT: "超出磁盘配额 (disk quota exceeded)",
    }.get(exc.errno or 0, "读写失败 (I/O error)")
    where = f": {exc.filename}" if exc.filename else ""
    return f"{what}{where} ({exc.strerror or exc})"


def _storage_message(exc: Exception) -> str | None:
    """One line for a database error the user can act on (disk full, locked, unreachable), else None."""
    from sqlalchemy.exc import OperationalError

    if not isinstance(exc, OperationalError):
        return None
    text = str(exc.orig) if exc.orig is not None else str(exc)
    low = text.lower()
    if "disk is full" in low or "no space left" in low or "could not extend file" in low:
        return f"磁盘已满，数据库写入失败并已回滚 (database disk full; transaction rolled back): {text.strip()}"
    if "disk i/o error" in low:
        return f"磁盘读写失败（磁盘已满或不可写），写入已回滚 (disk I/O error; transaction rolled back): {text.strip()}"
    first = text.strip().splitlines()[0]
    return f"数据库操作失败并已回滚 (database error; transaction rolled back): {first}"


def group(parent: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The sub-command group ``name`` of ``parent`` (created by whichever module registers first)."""
    for info in parent.registered_groups:
        inst = info.typer_instance
        if inst is not None and name in (info.name, getattr(inst.info, "name", None)):
            return inst
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    if name == "bench":
        sub.callback()(_bench_environment)
    parent.add_typer(sub, name=name, help=help_text)
    return sub


def _bench_environment() -> None:
    """Every benchmark's output starts with the versions and embedder it ran with."""
    from evaluation.environment import environment_info, environment_line
    from matcher.settings import get_settings

    typer.echo(f"environment: {environment_line(environment_info(get_settings().embedder))}")
