"""The ``chainmatch`` command line (``python -m service.cli`` or the ``chainmatch`` console script).

``root`` holds the typer app and registers one module per command group (catalog, recommend, store, index,
evaluate, train, mapping, doctor, server, bench_*); ``common`` has the shared error handling.
"""

from __future__ import annotations

from service.cli.root import app

__all__ = ["app"]
