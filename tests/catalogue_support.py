"""Test helper: a chain catalogue loaded from YAML texts written into a temporary folder."""

from __future__ import annotations

from pathlib import Path

from matcher.knowledge.catalogue import Catalogue, load_catalogue


def catalogue_from_yaml(root: Path, **chains: str) -> Catalogue:
    """Write each chain text as ``<name>.yaml`` under ``root/chains`` and load the folder."""
    folder = root / "chains"
    folder.mkdir()
    for name, text in chains.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return load_catalogue(folder)
