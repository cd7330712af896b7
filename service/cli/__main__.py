"""``python -m service.cli``: run the chainmatch command line."""

from __future__ import annotations

from service.cli.root import app

app()
