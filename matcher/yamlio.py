"""Reading the embedded YAML data (catalogue, regions, aiding pairs, dictionaries) with libyaml when available:
the C loader parses the ~80 data files several times faster than the pure-Python one, on every job's start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["read_yaml"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | Path) -> Any:
    """The parsed content of a UTF-8 YAML file (safe loader: plain data only)."""
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 — a safe loader
