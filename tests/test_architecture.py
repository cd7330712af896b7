"""Architecture checks (docs/architecture.md): import-linter contracts, no import cycles, small modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "evaluation", "matcher", "index", "models")
MAX_LINES = 650


def test_import_linter_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every contract in pyproject's ``[tool.importlinter]`` holds (layers, independence, forbidden imports)."""
    lint = pytest.importorskip("importlinter.cli", reason="import-linter is in the dev extra")
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))
    exit_code = lint.lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    assert exit_code == 0, "an import-linter contract is broken: run `lint-imports` for the details"


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    adj = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in adj:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            if i < len(adj[v]):
                work.append((v, i + 1))
                w = adj[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return found


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or through others, counting function-level imports."""
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (dev extra)")
    sys.path.insert(0, str(REPO))
    try:
        graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    finally:
        sys.path.remove(str(REPO))
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    class Graph:
        modules = {"a", "b", "c"}
        edges = {"a": {"b"}, "b": {"a"}, "c": {"a"}}

        def find_modules_directly_imported_by(self, m: str) -> set[str]:
            return self.edges[m]

    assert _cycles(Graph()) == [["a", "b"]]


def test_no_module_is_too_long() -> None:
    """Modules stay small enough to read in one sitting: at most 650 lines each."""
    long = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                long.append(f"{os.path.relpath(path, REPO)}: {n} lines")
    assert long == [], f"modules over {MAX_LINES} lines: {long}"
